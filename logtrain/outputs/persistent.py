"""persistent://KEY: the lines of a finite resource (a pod, a build) kept in
Postgres (PERSISTENT_DATABASE_URL) under KEY, and served back over HTTP at
``GET {PERSISTENT_PATH}{KEY}``.

The original appended to one text value per key (``data = data || $1``), which
rewrites the whole value on every append. Here each write adds one chunk row
holding every line gathered in that second (the drain flushes once a second, one
INSERT per flush, never one per line), and a read concatenates a key's chunks in
order. Chunks are bytea, so any byte a message holds (NUL included) survives.
One writer per drain keeps the chunks of a key in order; every persistent
drain shares one small pool of database connections (DRAIN_MAX_CONNECTIONS).
"""

from __future__ import annotations

import re
from typing import Any

from logtrain import pg
from logtrain.outputs.base import Connection, Output
from logtrain.packet import Packet
from logtrain.runtime import Runtime
from logtrain.syslog import format_rfc5424
from logtrain.urls import DrainURL

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


def key_of(url: DrainURL) -> str:
    """The KEY of persistent://KEY, as written (case kept); ValueError if unusable."""
    rest = url.raw.strip().split("://", 1)[1]
    key = rest.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    if not key:
        raise ValueError("persistent:// needs a key: persistent://KEY")
    if not KEY.fullmatch(key):
        raise ValueError("persistent:// key must be 1-128 characters of letters, digits and "
                         "._:@~- starting with a letter or digit")
    return key


# Every persistent:// drain of a database shares one pool: a node may run
# dozens of builds at once, and a connection per key would use up the
# server's max_connections.
_pools: dict[str, pg.Pool] = {}


def pool(url: str, size: int) -> pg.Pool:
    p = _pools.get(url)
    if p is None:
        p = _pools[url] = pg.Pool(url, size, prepare=ensure_schema)
    return p


class ChunkWriter(Connection):
    """A drain writer's 'connection': the shared pool, and the key it writes."""

    def __init__(self, pool: pg.Pool, key: str) -> None:
        self.pool = pool
        self.key = key
        self.registered = False

    def send(self, items: list[Any]) -> None:
        data = pg.psycopg2().Binary(b"".join(items))

        def write(cur: Any) -> None:
            if not self.registered:
                cur.execute("insert into persistent_keys (key) values (%s) on conflict do nothing",
                            (self.key,))
            cur.execute("insert into persistent_chunks (key, data) values (%s, %s)",
                        (self.key, data))

        try:
            self.pool.run(write)
        except pg.psycopg2().Error as e:
            # for the drain's log: the server's words, never the password
            raise ConnectionError(pg.describe(e, self.pool.url)) from None
        self.registered = True


class PersistentOutput(Output):
    flush_interval = 1.0  # one INSERT a second, as the original's one UPDATE a second
    max_write = 4 << 20
    max_connections = 1  # chunks of a key are written in order

    def __init__(self, url: DrainURL, rt: Runtime) -> None:
        super().__init__(url, rt)
        cfg = rt.config
        if not (cfg.persistent and cfg.persistent_database_url):
            raise ValueError("persistent:// drains need PERSISTENT=true and "
                             "PERSISTENT_DATABASE_URL")
        self.key = key_of(url)
        self.database = cfg.persistent_database_url

    def encode(self, packets: list[Packet]) -> tuple[bytes, int]:
        data = format_rfc5424(packets)
        return data, len(data)

    def connect(self) -> Connection:
        return ChunkWriter(pool(self.database, self.rt.config.drain_max_connections), self.key)


class PersistentReader:
    """Serves ``GET {PERSISTENT_PATH}{KEY}``: every line kept under KEY, in order."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.url = rt.config.persistent_database_url
        self.db = pg.Pool(self.url, prepare=ensure_schema)

    def read(self, key: str) -> bytes | None:
        """The lines under ``key``; None for a key never written."""
        def q(cur: Any) -> bytes | None:
            cur.execute("select 1 from persistent_keys where key = %s", (key,))
            if cur.fetchone() is None:
                return None
            cur.execute("select data from persistent_chunks where key = %s order by seq", (key,))
            return b"".join(bytes(r[0]) for r in cur.fetchall())

        return self.db.run(q)

    def close(self) -> None:
        self.db.close()
