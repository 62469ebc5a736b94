"""persistent://KEY: the lines of a finite resource (a pod, a build) kept in
Postgres (PERSISTENT_DATABASE_URL) under KEY, and served back over HTTP at
``GET {PERSISTENT_PATH}{KEY}`` (see logtrain/persistent_store.py).

The drain flushes once a second: one chunk row per flush, never one per line.
One writer per drain keeps the chunks of a key in order.
"""

from __future__ import annotations

from typing import Any

from logtrain.outputs.base import Connection, Output
from logtrain.packet import Packet
from logtrain.persistent_store import KEY, PersistentStore
from logtrain.runtime import Runtime
from logtrain.syslog import format_rfc5424
from logtrain.urls import DrainURL


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


class ChunkWriter(Connection):
    """A drain writer's 'connection': the agent's store, and the key it writes."""

    def __init__(self, store: PersistentStore, key: str) -> None:
        self.store = store
        self.key = key
        self.registered = False

    def send(self, items: list[Any]) -> None:
        self.store.append(self.key, b"".join(items), not self.registered)
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

    def encode(self, packets: list[Packet]) -> tuple[bytes, int]:
        data = format_rfc5424(packets)
        return data, len(data)

    def connect(self) -> Connection:
        store = self.rt.persistent
        if store is None:  # only an agent with PERSISTENT=true opens drains
            raise ConnectionError("no persistent store in this process")
        return ChunkWriter(store, self.key)
