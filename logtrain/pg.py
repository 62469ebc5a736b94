"""PostgreSQL through psycopg2, cooperating with gevent.

psycopg2 is imported here and only here, when a Postgres feature is enabled
(its wheel bundles libpq and OpenSSL: about 5 MB of resident memory). A wait
callback turns every blocking libpq call into a gevent wait on the socket, so a
slow or unreachable database never blocks the agent's other work. The callback
is the dozen lines psycopg2's documentation describes; a package for it would
cost more than it saves.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import gevent
from gevent.lock import BoundedSemaphore
from gevent.socket import wait_read, wait_write

from logtrain.urls import dsn_secrets, scrub

_pg: Any = None


def psycopg2() -> Any:
    """The psycopg2 module, imported and made cooperative on first use."""
    global _pg
    if _pg is None:
        import psycopg2 as pg
        import psycopg2.extensions

        psycopg2.extensions.set_wait_callback(_wait)
        _pg = pg
    return _pg


def _wait(conn: Any, timeout: float | None = None) -> None:
    ext = _pg.extensions
    while True:
        state = conn.poll()
        if state == ext.POLL_OK:
            return
        if state == ext.POLL_READ:
            wait_read(conn.fileno(), timeout)
        elif state == ext.POLL_WRITE:
            wait_write(conn.fileno(), timeout)
        else:
            raise _pg.OperationalError(f"unexpected state from poll: {state!r}")


def connect(url: str, timeout: float = 5.0, autocommit: bool = True) -> Any:
    """A connection to ``url`` (a postgres:// URL or a libpq DSN); raises
    psycopg2.Error, or TimeoutError after ``timeout`` seconds."""
    pg = psycopg2()
    with gevent.Timeout(timeout + 1, TimeoutError("connecting to postgres timed out")):
        conn = pg.connect(
            url,
            connect_timeout=max(1, int(timeout)),
            application_name="logtrain",
            # a dead peer (a cut cable, a killed VM) is noticed in about a minute
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
        )
    conn.autocommit = autocommit
    return conn


_PASSWORD_IN_TEXT = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'?|\S+)", re.I)


def describe(err: BaseException, url: str = "") -> str:
    """A one-line reason for a log line or a response, with no credentials:
    libpq quotes pieces of a malformed connection string in its messages."""
    if isinstance(err, gevent.Timeout):
        text = "timed out"
    else:
        text = " ".join(str(err).split()) or type(err).__name__
    if url:
        masked, secrets = dsn_secrets(url)
        text = scrub(text.replace(url, masked), secrets)
    return _PASSWORD_IN_TEXT.sub(r"\1****", text)[:500]


def is_connection_error(err: BaseException) -> bool:
    """True for errors that mean the connection is gone (reconnect and retry),
    rather than a problem with the statement."""
    if isinstance(err, (OSError, gevent.Timeout)):
        return True
    pg = psycopg2()
    return isinstance(err, (pg.OperationalError, pg.InterfaceError))


class Pool:
    """At most ``size`` connections to one database, opened when needed and
    kept while they work.

    ``run(fn)`` calls ``fn(cursor)`` on one of them. A connection found dead
    on reuse (the database restarted) is reopened and the call tried once
    more, so a restart costs a caller nothing once the database is back;
    ``prepare(cursor)`` runs once on every new connection.
    """

    def __init__(self, url: str, size: int = 1, timeout: float = 5.0,
                 prepare: Callable[[Any], None] | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self.prepare = prepare
        self.lock = BoundedSemaphore(size)
        self.idle: list[Any] = []

    def run(self, fn: Callable[[Any], Any]) -> Any:
        with self.lock:
            for attempt in (1, 2):
                conn = self.idle.pop() if self.idle else None
                reused = conn is not None and not conn.closed
                ready = reused
                try:
                    if not reused:
                        conn = connect(self.url, self.timeout)
                        if self.prepare is not None:
                            with conn.cursor() as cur:
                                self.prepare(cur)
                        ready = True
                    with gevent.Timeout(self.timeout * 6, TimeoutError("postgres query timed out")):
                        with conn.cursor() as cur:
                            result = fn(cur)
                except BaseException as e:
                    if ready and isinstance(e, Exception) and not is_connection_error(e):
                        self.idle.append(conn)  # the statement failed, not the connection
                        raise
                    close_quietly(conn)
                    # Only a connection found dead on reuse is retried: a statement
                    # that timed out may have run, and must not run twice.
                    if (attempt == 2 or not reused or isinstance(e, TimeoutError)
                            or not is_connection_error(e)):
                        raise
                    continue
                self.idle.append(conn)
                return result

    def close(self) -> None:
        for conn in self.idle:
            close_quietly(conn)
        self.idle.clear()


def close_quietly(conn: Any) -> None:
    """Closes a connection that may already be broken."""
    if conn is not None:
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass
