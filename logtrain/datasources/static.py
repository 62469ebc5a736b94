"""The static routes file (ROUTES_FILE): ``HOSTNAME-OR-GLOB  DRAIN-URL`` per line,
blank lines and ``#`` comments ignored, several lines may share a hostname.

The file is checked every ROUTES_RELOAD_INTERVAL seconds (inode, size and
modification time, so editors that replace the file and Kubernetes ConfigMap
symlink swaps are seen); a change is applied as a difference, so unchanged
routes and their drains are untouched. A bad line is reported with its line
number and skipped; the other lines still load. A file that disappears keeps
the routes in effect until it is back.
"""

from __future__ import annotations

import os

import gevent

from logtrain import routetable
from logtrain.router import Router
from logtrain.runtime import Runtime
from logtrain.urls import mask_url

SOURCE = "file"  # the trust policy's name for this datasource
SLICE = 500  # routes checked or applied between two yields to the other greenlets


def parse_routes(text: str) -> tuple[list[tuple[int, str, str]], list[tuple[int, str]]]:
    """Routes as (line number, host, url), and errors as (line number, reason).
    Only the syntax is checked here; URLs are checked by ``check_routes``."""
    routes, errors = [], []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) > 2 and fields[2].startswith("#"):
            fields = fields[:2]  # a trailing comment
        if len(fields) != 2:
            errors.append((n, "expected 'HOSTNAME-OR-GLOB DRAIN-URL' (two fields separated by spaces)"))
            continue
        routes.append((n, fields[0], fields[1]))
    return routes, errors


def check_routes(path: str, router: Router) -> tuple[list[tuple[int, str, str]], list[str]]:
    """Reads and fully validates a routes file through ``router`` (hostnames,
    drain URLs, the trust policy; refusals counted and logged); errors are
    'PATH:LINE: reason' strings."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        return [], [f"{path}: {getattr(e, 'strerror', None) or e}"]
    routes, errors = parse_routes(text)
    msgs = [f"{path}:{n}: {reason}" for n, reason in errors]
    good = []
    for i, (n, host, url) in enumerate(routes):
        if i % SLICE == SLICE - 1:
            gevent.sleep(0)  # a large file must not hold up inputs or /health
        try:
            router.check_route(SOURCE, host, url)
        except ValueError as e:
            msgs.append(f"{path}:{n}: route {host} -> {mask_url(url)}: {e}")
            continue
        good.append((n, host, url))
    return good, msgs


class StaticRoutes:
    def __init__(self, rt: Runtime, router: Router, path: str) -> None:
        self.rt = rt
        self.router = router
        self.path = path
        self.source = "file:" + path
        # the routes in effect: hostname -> url, or {url: lines naming it}
        self.current: dict[str, str | dict[str, int]] = {}
        self.changes = (0, 0)  # routes added and removed by the last load
        self.stamp: tuple | None = None

    def describe(self) -> str:
        return f"routes file {self.path}"

    def load(self) -> list[str]:
        """Applies the file now; returns the errors of the lines it skipped."""
        self.stamp = self._stamp()
        routes, errors = check_routes(self.path, self.router)
        if self.stamp is None and not routes:
            return errors  # the file is gone: keep what is in effect
        wanted: dict[str, str | dict[str, int]] = {}  # as the router stores them: compact
        for _, host, url in routes:
            routetable.add(wanted, host, url)
        del routes
        current = self.current
        changes = [0, 0]  # added, removed

        def step() -> None:
            if (changes[0] + changes[1]) % SLICE == 0:
                gevent.sleep(0)  # a large change must not hold up inputs or /health

        for host, v in list(current.items()):
            for url, k in routetable.counts(v):
                for _ in range(k - routetable.count(wanted, host, url)):
                    self.router.remove_route(self.source, host, url)
                    routetable.remove(current, host, url)
                    changes[1] += 1
                    step()
        for host, v in wanted.items():
            for url, k in routetable.counts(v):
                for _ in range(k - routetable.count(current, host, url)):
                    self.router.add_route(self.source, host, url, checked=True)
                    routetable.add(current, host, url)
                    changes[0] += 1
                    step()
        self.changes = (changes[0], changes[1])
        if errors:
            self.rt.metrics.inc("logtrain_route_errors_total", len(errors), source="file")
        return errors

    def route_count(self) -> int:
        return sum(k for v in self.current.values() for _, k in routetable.counts(v))

    def start(self) -> None:
        self.rt.tasks.spawn(self.source, self._watch)

    def listing(self) -> list[dict]:
        """The routes in effect, for GET /routes (read-only: edit the file)."""
        return [{"hostname": h, "endpoint": mask_url(u), "source": "file"}
                for h, v in sorted(self.current.items()) for u, k in sorted(routetable.counts(v))
                for _ in range(k)]

    def stop(self) -> None:
        self.rt.tasks.stop(self.source)

    def _stamp(self) -> tuple | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _watch(self) -> None:
        log = self.rt.log
        while True:
            gevent.sleep(self.rt.config.routes_reload_interval)
            stamp = self._stamp()
            if stamp == self.stamp:
                continue
            if stamp is None:
                log.warning("routes file is gone; keeping the routes in effect", path=self.path)
                self.stamp = None
                continue
            errors = self.load()
            for e in errors:
                log.warning("skipped route", error=e)
            log.info("routes file reloaded", path=self.path, routes=self.route_count(),
                     added=self.changes[0], removed=self.changes[1], errors=len(errors))
