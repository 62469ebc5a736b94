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
from collections import Counter

import gevent

from logtrain.router import Router
from logtrain.runtime import Runtime
from logtrain.urls import mask_url

Route = tuple[str, str]
SOURCE = "file"  # the trust policy's name for this datasource


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
    numbered = [(n, f"{path}:{n}: {reason}") for n, reason in errors]
    good = []
    for n, host, url in routes:
        try:
            router.check_route(SOURCE, host, url)
        except ValueError as e:
            numbered.append((n, f"{path}:{n}: route {host} -> {mask_url(url)}: {e}"))
            continue
        good.append((n, host, url))
    numbered.sort(key=lambda e: e[0])  # in file order, whichever check found the error
    return good, [msg for _, msg in numbered]


class StaticRoutes:
    def __init__(self, rt: Runtime, router: Router, path: str) -> None:
        self.rt = rt
        self.router = router
        self.path = path
        self.source = "file:" + path
        self.current: Counter[Route] = Counter()
        self.stamp: tuple | None = None

    def describe(self) -> str:
        return f"routes file {self.path}"

    def load(self) -> list[str]:
        """Applies the file now; returns the errors of the lines it skipped."""
        self.stamp = self._stamp()
        routes, errors = check_routes(self.path, self.router)
        if self.stamp is None and not routes:
            return errors  # the file is gone: keep what is in effect
        wanted = Counter((host, url) for _, host, url in routes)
        removed = self.current - wanted
        added = wanted - self.current
        for (host, url), k in removed.items():
            for _ in range(k):
                self.router.remove_route(self.source, host, url)
        for (host, url), k in added.items():
            for _ in range(k):
                self.router.add_route(self.source, host, url)
        self.current = wanted
        if errors:
            self.rt.metrics.inc("logtrain_route_errors_total", len(errors), source="file")
        return errors

    def start(self) -> None:
        self.rt.tasks.spawn(self.source, self._watch)

    def listing(self) -> list[dict]:
        """The routes in effect, for GET /routes (read-only: edit the file)."""
        return [{"hostname": h, "endpoint": mask_url(u), "source": "file"}
                for (h, u), k in sorted(self.current.items()) for _ in range(k)]

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
            before = self.current.copy()
            errors = self.load()
            for e in errors:
                log.warning("skipped route", error=e)
            log.info("routes file reloaded", path=self.path, routes=sum(self.current.values()),
                     added=sum((self.current - before).values()),
                     removed=sum((before - self.current).values()), errors=len(errors))
