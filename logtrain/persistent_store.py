"""The persistent store: the Postgres tables that persistent://KEY drains
append to and ``GET {PERSISTENT_PATH}{KEY}`` reads from.

The original appended to one text value per key (``data = data || $1``), which
rewrites the whole value on every append. Here each write adds one chunk row
holding every line gathered in that second, and a read concatenates a key's
chunks in order. Chunks are bytea, so any byte a message holds (NUL included)
survives.

One ``PersistentStore`` per agent (created only with PERSISTENT=true, closed
at shutdown) owns the connections: every persistent:// drain shares one small
pool (DRAIN_MAX_CONNECTIONS; a node may run dozens of builds at once, and a
connection per key would use up the server's max_connections), and reads
have their own connection, so a slow read never holds up writes.
"""

from __future__ import annotations

import re
from typing import Any

from logtrain import pg

KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@~-]{0,127}")

SCHEMA = """
create table if not exists persistent_keys (
    key varchar(128) primary key,
    created timestamptz not null default now()
);
create table if not exists persistent_chunks (
    seq bigserial primary key,
    key varchar(128) not null references persistent_keys (key) on delete cascade,
    data bytea not null,
    created timestamptz not null default now()
);
create index if not exists persistent_chunks_key_seq on persistent_chunks (key, seq);
"""


def ensure_schema(cur: Any) -> None:
    """Creates the tables when they are missing (run on each new connection)."""
    cur.execute("select to_regclass('persistent_chunks') is not null")
    if cur.fetchone()[0]:
        return
    cur.execute("begin")
    try:
        cur.execute("select pg_advisory_xact_lock(hashtext('logtrain persistent schema'))")
        cur.execute(SCHEMA)
        cur.execute("commit")
    except BaseException:
        cur.execute("rollback")
        raise


class PersistentStore:
    def __init__(self, url: str, writers: int) -> None:
        self.url = url
        self.writers = pg.Pool(url, writers, prepare=ensure_schema)
        self.readers = pg.Pool(url, prepare=ensure_schema)

    def append(self, key: str, data: bytes, register: bool) -> None:
        """Adds one chunk to ``key`` (registering the key first when asked);
        raises ConnectionError with the server's words, never the password."""
        chunk = pg.psycopg2().Binary(data)

        def write(cur: Any) -> None:
            if register:
                cur.execute("insert into persistent_keys (key) values (%s) on conflict do nothing",
                            (key,))
            cur.execute("insert into persistent_chunks (key, data) values (%s, %s)", (key, chunk))

        try:
            self.writers.run(write)
        except pg.psycopg2().Error as e:
            raise ConnectionError(pg.describe(e, self.url)) from None

    def read(self, key: str) -> bytes | None:
        """The lines under ``key``; None for a key never written."""
        def q(cur: Any) -> bytes | None:
            cur.execute("select 1 from persistent_keys where key = %s", (key,))
            if cur.fetchone() is None:
                return None
            cur.execute("select data from persistent_chunks where key = %s order by seq", (key,))
            return b"".join(bytes(r[0]) for r in cur.fetchall())

        return self.readers.run(q)

    def close(self) -> None:
        self.writers.close()
        self.readers.close()
