"""Routes from the Postgres ``drains`` table (POSTGRES=true, DATABASE_URL).

Other systems (Akkeris' controller) write the table; the agent loads every row
at start, then LISTENs on ``drains.insert``, ``drains.update`` and
``drains.delete``, whose triggers carry the row as JSON. The schema is the
original logtrain's, so databases it set up keep working, except that a new
table takes its UUIDs from gen_random_uuid() (PostgreSQL 13+), which needs no
extension and no superuser.

Rows are kept by their ``drain`` id, so a notification that repeats what a
reload already applied changes nothing. When the connection is lost the routes
in effect stay in effect; the agent reconnects with backoff and then reloads
every row and reconciles, because notifications sent while it was away are
gone.
"""

from __future__ import annotations

import json
import random
from typing import Any

import gevent
from gevent.socket import wait_read

from logtrain import pg
from logtrain.router import Router
from logtrain.runtime import Runtime
from logtrain.trust import Refused
from logtrain.urls import mask_dsn, mask_url

CHANNELS = ("drains.insert", "drains.update", "drains.delete")
KEEPALIVE = 30.0  # seconds of silence before the LISTEN connection is checked
SLICE = 100  # rows applied between two yields to the other greenlets (inputs, /health)

# NOTIFY payloads are limited to 8000 bytes; a row with a long endpoint (a ?ca=
# certificate) is announced by its id alone and read back by the agent.
SCHEMA = """
create table if not exists drains (
    drain uuid primary key default gen_random_uuid(),
    hostname text not null,
    endpoint text not null,
    created timestamptz default now(),
    updated timestamptz default now()
);

create or replace function notify_drains_insert() returns trigger as $fn$
declare
    body text := row_to_json(NEW)::text;
begin
    if octet_length(body) > 7900 then
        body := json_build_object('drain', NEW.drain)::text;
    end if;
    perform pg_notify('drains.insert', body);
    return NEW;
end;
$fn$ language plpgsql;

create or replace function notify_drains_update() returns trigger as $fn$
declare
    body text := json_build_object('old', row_to_json(OLD), 'new', row_to_json(NEW))::text;
begin
    if octet_length(body) > 7900 then
        body := json_build_object('old', json_build_object('drain', OLD.drain),
                                  'new', json_build_object('drain', NEW.drain))::text;
    end if;
    perform pg_notify('drains.update', body);
    return NEW;
end;
$fn$ language plpgsql;

create or replace function notify_drains_delete() returns trigger as $fn$
begin
    perform pg_notify('drains.delete', json_build_object('drain', OLD.drain,
        'hostname', OLD.hostname, 'endpoint', left(OLD.endpoint, 7000))::text);
    return OLD;
end;
$fn$ language plpgsql;
"""

TRIGGERS = ("notify_drains_insert", "notify_drains_update", "notify_drains_delete")


def ensure_schema(cur: Any) -> bool:
    """Creates the table, trigger functions and triggers that are missing;
    returns True when it had to create anything. A database that already has
    them (the original's included) is left exactly as it is."""
    cur.execute(
        "select to_regclass('drains') is not null, "
        "(select count(*) from pg_trigger where not tgisinternal and tgname = any(%s) "
        " and tgrelid = to_regclass('drains'))",
        (list(TRIGGERS),),
    )
    table, triggers = cur.fetchone()
    if table and triggers == len(TRIGGERS):
        return False
    cur.execute("begin")
    try:
        # Every agent of a DaemonSet starts at once: one creates, the others wait.
        cur.execute("select pg_advisory_xact_lock(hashtext('logtrain drains schema'))")
        cur.execute(SCHEMA)
        for name in TRIGGERS:
            cur.execute(
                "select 1 from pg_trigger where not tgisinternal and tgname = %s "
                "and tgrelid = 'drains'::regclass", (name,))
            if cur.fetchone() is None:
                event = name.rsplit("_", 1)[1]
                cur.execute(f"create trigger {name} after {event} on drains "
                            f"for each row execute procedure {name}()")
        cur.execute("commit")
    except BaseException:
        cur.execute("rollback")
        raise
    return True


def _key(drain: str) -> int | str:
    """A row's id as the agent keeps it: a UUID as its 128-bit number (44
    bytes instead of 85 for its text, for each of thousands of rows), any
    other id as it is."""
    if len(drain) == 36:
        try:
            k = int(drain.replace("-", ""), 16)
        except ValueError:
            return drain
        if _id(k) == drain:
            return k
    return drain


def _id(key: int | str) -> str:
    """The id's text (a UUID in its canonical form) from ``_key``'s key."""
    if isinstance(key, str):
        return key
    h = f"{key:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class PostgresRoutes:
    source = "postgres"

    def __init__(self, rt: Runtime, router: Router, url: str) -> None:
        self.rt = rt
        self.router = router
        self.url = url
        self.safe_url = mask_dsn(url)
        # drain id (see _key) -> (hostname, endpoint)
        self.rows: dict[int | str, tuple[str, str]] = {}
        self.invalid: dict[int | str, str] = {}  # drain id -> why its route is not in effect
        self.conn: Any = None
        self.connected = False
        self.failures = 0
        m = rt.metrics
        m.gauge("logtrain_datasource_connected", lambda: 1 if self.connected else 0,
                source=self.source)

    def describe(self) -> str:
        return f"postgres {self.safe_url}"

    # ----------------------------------------------------------------- lifecycle

    def load(self, timeout: float = 10.0) -> str | None:
        """Connects and loads every route now; returns the error instead of
        raising, because the agent runs on (and retries) without the database."""
        try:
            with gevent.Timeout(timeout):
                rows = self._connect()
        except BaseException as e:
            if not pg.is_connection_error(e) and not isinstance(e, pg.psycopg2().Error):
                raise
            self._disconnected()
            return pg.describe(e, self.url)
        # outside the timeout: a large table takes its time, in slices that yield
        try:
            self._reconcile(rows)
            return None
        except BaseException as e:
            if not pg.is_connection_error(e) and not isinstance(e, pg.psycopg2().Error):
                raise
            self._disconnected()
            return pg.describe(e, self.url)

    def start(self) -> None:
        self.rt.tasks.spawn(self.source, self._run)

    def stop(self) -> None:
        self.rt.tasks.stop(self.source)
        self._disconnected()

    def _disconnected(self) -> None:
        self.connected = False
        pg.close_quietly(self.conn)
        self.conn = None

    def _run(self) -> None:
        rt = self.rt
        pgmod = pg.psycopg2()
        while True:
            try:
                if self.conn is None:
                    self._connect_and_load()
                    if self.failures:
                        rt.log.info("postgres datasource reconnected; routes reloaded",
                                    database=self.safe_url, routes=len(self.rows),
                                    failed_attempts=self.failures)
                        self.failures = 0
                self._listen()
            except gevent.GreenletExit:
                raise
            except (pgmod.Error, OSError, gevent.Timeout) as e:
                self._disconnected()
                self.failures += 1
                rt.metrics.inc("logtrain_datasource_errors_total", source=self.source)
                delay = min(rt.config.datasource_backoff_max, 0.25 * 2 ** min(self.failures, 16))
                delay *= random.uniform(0.5, 1.0)
                if self.failures == 1 or rt.ratelimit.allow(("pg-down", self.url)) is not None:
                    rt.log.warning("postgres datasource disconnected; routes in effect are kept",
                                   database=self.safe_url, error=pg.describe(e, self.url),
                                   routes=len(self.rows), retry_in=round(delay, 2))
                gevent.sleep(delay)

    def _connect_and_load(self) -> None:
        self._reconcile(self._connect())

    def _connect(self) -> dict[int | str, tuple[str, str]]:
        """Connects, LISTENs and reads every row."""
        conn = pg.connect(self.url)
        try:
            with conn.cursor() as cur:
                if ensure_schema(cur):
                    self.rt.log.info("created the drains table and its triggers",
                                     database=self.safe_url)
                # LISTEN before reading, so no change falls between the two; a
                # change seen twice is applied once (rows are keyed by id).
                for ch in CHANNELS:
                    cur.execute(f'listen "{ch}"')
                cur.execute("select drain::text, hostname, endpoint from drains")
                rows = {}
                for i, (d, h, e) in enumerate(cur):  # one row object at a time
                    rows[_key(d)] = (h, e)
                    if i % 1000 == 999:
                        gevent.sleep(0)
        except BaseException:
            conn.close()
            raise
        self.conn = conn
        self.connected = True
        return rows

    def _listen(self) -> None:
        conn = self.conn
        while True:
            try:
                wait_read(conn.fileno(), timeout=KEEPALIVE)
            except TimeoutError:
                with conn.cursor() as cur:  # raises if the connection is gone
                    cur.execute("select 1")
                continue
            conn.poll()
            # A storm (10,000 inserts in one transaction) arrives at once:
            # apply it in slices, yielding between them.
            while conn.notifies:
                batch = conn.notifies[:SLICE]
                del conn.notifies[:SLICE]
                for n in batch:
                    self._notified(n.channel, n.payload)
                gevent.sleep(0)

    # ----------------------------------------------------------------- changes

    def _notified(self, channel: str, payload: str) -> None:
        try:
            body = json.loads(payload)
            if channel == "drains.update":
                old, new = body["old"], body["new"]
                if str(old["drain"]) != str(new["drain"]):
                    self.apply(str(old["drain"]), None)
                self.apply(str(new["drain"]), self._row(new))
            elif channel == "drains.insert":
                self.apply(str(body["drain"]), self._row(body))
            elif channel == "drains.delete":
                self.apply(str(body["drain"]), None)
        except (ValueError, KeyError, TypeError) as e:
            self.rt.metrics.inc("logtrain_route_errors_total", source=self.source)
            self.rt.log.warning("unreadable notification from postgres", channel=channel,
                                error=str(e))

    def _row(self, body: dict) -> tuple[str, str] | None:
        """The (hostname, endpoint) of a notified row; read from the table when
        the notification carried only the id (an oversized row)."""
        if isinstance(body.get("hostname"), str) and isinstance(body.get("endpoint"), str):
            return body["hostname"], body["endpoint"]
        with self.conn.cursor() as cur:
            cur.execute("select hostname, endpoint from drains where drain = %s", (body["drain"],))
            row = cur.fetchone()
        return (row[0], row[1]) if row else None

    def _reconcile(self, rows: dict[int | str, tuple[str, str]]) -> None:
        """Makes the routes in effect those of ``rows``, in slices that yield."""
        before = len(self.rows)
        gone = [d for d in list(self.rows) + list(self.invalid) if d not in rows]
        for i, d in enumerate(gone):
            self.apply(d, None)
            if i % SLICE == SLICE - 1:
                gevent.sleep(0)
        for i, (d, row) in enumerate(rows.items()):
            self.apply(d, row)
            if i % SLICE == SLICE - 1:
                gevent.sleep(0)
        self.rt.log.info("postgres routes loaded", database=self.safe_url, routes=len(self.rows),
                         invalid=len(self.invalid), previously=before)

    def apply(self, drain: str | int, row: tuple[str, str] | None) -> None:
        """Makes the route of row ``drain`` be ``row`` (None: no route)."""
        drain = _key(drain) if isinstance(drain, str) else drain
        old = self.rows.get(drain)
        if old is not None and old == row:
            return
        if old is not None:
            del self.rows[drain]
            self.router.remove_route(self.source, *old)
        self.invalid.pop(drain, None)
        if row is None:
            return
        host, endpoint = row
        try:
            self.router.add_route(self.source, host, endpoint)
        except Refused as e:  # the router counted and logged it
            self.invalid[drain] = str(e)
            return
        except ValueError as e:
            self.invalid[drain] = str(e)
            self.rt.metrics.inc("logtrain_route_errors_total", source=self.source)
            self.rt.log.warning("skipped route from postgres", drain=_id(drain), hostname=host,
                                endpoint=mask_url(endpoint), error=str(e))
            return
        self.rows[drain] = row

    # ----------------------------------------------------------------- routes API

    def listing(self) -> list[dict]:
        out = [{"id": _id(d), "hostname": h, "endpoint": mask_url(e), "source": self.source}
               for d, (h, e) in self.rows.items()]
        out += [{"id": _id(d), "source": self.source, "error": why}
                for d, why in self.invalid.items()]
        return out
