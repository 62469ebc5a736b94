"""The routes API's writes to the Postgres drains table (the original
logtrain's schema): insert and delete rows. The Postgres datasource reads the
same table and listens for its changes; the two share nothing but the table,
so each has its own connections (a size-1 pool here).
"""

from __future__ import annotations

from typing import Any

from logtrain import pg


class DrainsTable:
    def __init__(self, url: str) -> None:
        self.url = url
        self.pool = pg.Pool(url)

    def insert(self, hostname: str, endpoint: str) -> str:
        """Adds a row (the caller validated it); returns its id."""
        def q(cur: Any) -> str:
            cur.execute("insert into drains (drain, hostname, endpoint, created, updated) "
                        "values (gen_random_uuid(), %s, %s, now(), now()) returning drain::text",
                        (hostname, endpoint))
            return cur.fetchone()[0]

        return self.pool.run(q)

    def delete(self, drain: str) -> bool:
        """Removes row ``drain``; False when there is no such row."""
        def q(cur: Any) -> bool:
            cur.execute("delete from drains where drain = %s returning drain", (drain,))
            return cur.fetchone() is not None

        return self.pool.run(q)

    def close(self) -> None:
        self.pool.close()
