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
from collections.abc import Iterator

import gevent

from logtrain import routetable
from logtrain.router import Router
from logtrain.runtime import Runtime
from logtrain.urls import mask_url

SOURCE = "file"  # the trust policy's name for this datasource
SLICE = 500  # routes checked or applied between two yields to the other greenlets


_SYNTAX = "expected 'HOSTNAME-OR-GLOB DRAIN-URL' (two fields separated by spaces)"


def _fields(line: str) -> tuple[str, str] | str | None:
    """A line's (host, url), the reason it is not one, or None (blank, comment)."""
    fields = line.split()
    if not fields or fields[0].startswith("#"):
        return None
    if len(fields) > 2 and fields[2].startswith("#"):
        fields = fields[:2]  # a trailing comment
    if len(fields) != 2:
        return _SYNTAX
    return fields[0], fields[1]


def parse_routes(text: str) -> tuple[list[tuple[int, str, str]], list[tuple[int, str]]]:
    """Routes as (line number, host, url), and errors as (line number, reason).
    Only the syntax is checked here; URLs are checked by ``check_routes``."""
    routes, errors = [], []
    for n, line in enumerate(text.splitlines(), 1):
        f = _fields(line)
        if isinstance(f, tuple):
            routes.append((n, *f))
        elif f is not None:
            errors.append((n, f))
    return routes, errors


def read_routes(path: str, router: Router) -> Iterator[tuple[int, str, str] | str]:
    """The routes of the file, read line by line (a large file is never held
    whole) and fully validated through ``router`` (hostnames, drain URLs, the
    trust policy; refusals counted and logged), as (line number, host, url),
    and its errors as 'PATH:LINE: reason' strings. Raises OSError or
    UnicodeDecodeError when the file cannot be read; yields to the other
    greenlets every SLICE lines."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if n % SLICE == 0:
                gevent.sleep(0)  # a large file must not hold up inputs or /health
            fields = _fields(line)
            if fields is None:
                continue
            if isinstance(fields, str):
                yield f"{path}:{n}: {fields}"
                continue
            host, url = fields
            try:
                router.check_route(SOURCE, host, url)
            except ValueError as e:
                yield f"{path}:{n}: route {host} -> {mask_url(url)}: {e}"
                continue
            yield n, host, url


def _unreadable(path: str, e: OSError | UnicodeDecodeError) -> str:
    return f"{path}: {getattr(e, 'strerror', None) or e}"


def check_routes(path: str, router: Router) -> tuple[list[tuple[int, str, str]], list[str]]:
    """Reads and fully validates a routes file (see read_routes): its routes,
    and its errors as 'PATH:LINE: reason' strings."""
    good: list[tuple[int, str, str]] = []
    msgs: list[str] = []
    try:
        for item in read_routes(path, router):
            (msgs if isinstance(item, str) else good).append(item)
    except (OSError, UnicodeDecodeError) as e:
        return [], [_unreadable(path, e)]
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
        wanted: dict[str, str | dict[str, int]] = {}  # as the router stores them: compact
        errors: list[str] = []
        try:
            for item in read_routes(self.path, self.router):
                if isinstance(item, str):
                    errors.append(item)
                else:
                    routetable.add(wanted, item[1], item[2])
        except (OSError, UnicodeDecodeError) as e:
            self.rt.metrics.inc("logtrain_route_errors_total", source="file")
            return [_unreadable(self.path, e)]  # gone or unreadable: keep what is in effect
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
