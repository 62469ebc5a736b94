"""The route table and the fan-out of batches to drains.

Datasources add and remove routes (``source, hostname-or-glob, url``); the table
is their union, so the same route from two datasources lives until both remove
it. A drain exists once per URL: created when a packet is first routed to it,
closed (after flushing) when its last route goes away. ``route`` is called once
per batch; hostname look-ups are cached until the table changes.

``add_route`` is where the trust policy (logtrain/trust.py) admits a route, and
each drain gets a Guard that asks the router, at every connection, whether a
trusted route still names it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from operator import attrgetter

import gevent

from logtrain.drain import Ack, Drain
from logtrain.outputs import create_output
from logtrain.packet import Packet
from logtrain.runtime import Runtime
from logtrain.transform import drain_filter, router_pipeline
from logtrain.trust import Guard, Policy, Refused, kind

_GLOB_CHARS = frozenset("*?[")
_CACHE_MAX = 8192
_HOSTNAME = attrgetter("hostname")


MAX_HOSTNAME = 255


def check_hostname(host: object) -> None:
    """The one rule for a route's hostname (or glob); ValueError says why."""
    if (not isinstance(host, str) or not host or len(host) > MAX_HOSTNAME
            or any(c.isspace() or not c.isprintable() for c in host)):
        raise ValueError("hostname must be a string of 1-255 printable characters without "
                         "spaces (a glob such as *.example is allowed)")


class Router:
    def __init__(self, rt: Runtime, drain_factory: Callable[[str], Drain] | None = None) -> None:
        self.rt = rt
        self.policy = Policy(rt)
        self._drain_factory = drain_factory or self._new_drain
        self.routes: dict[tuple[str, str, str], int] = {}  # (source, host, url) -> how many times added
        self.exact: dict[str, dict[str, int]] = {}  # host -> url -> routes
        self.globs: dict[str, dict[str, int]] = {}  # pattern -> url -> routes
        self._glob_list: list[tuple[re.Pattern, tuple[str, ...]]] = []
        self.url_refs: dict[str, int] = {}
        self.trusted_refs: dict[str, int] = {}  # url -> routes from trusted sources
        self.drains: dict[str, Drain] = {}
        self.closing: set[gevent.Greenlet] = set()
        self._cache: dict[str, tuple[Drain, ...]] = {}
        # redaction and per-hostname filters (logtrain/transform/); None: nothing to run
        self.transform = router_pipeline(rt)
        rt.metrics.gauge("logtrain_routes", lambda: len(self.routes))
        rt.metrics.collectors.append(self._routes_by_source)

    # ----------------------------------------------------------------- table

    def _routes_by_source(self) -> list[tuple[str, dict, int]]:
        per: dict[str, int] = {}
        for (source, _h, _u), n in self.routes.items():
            per[source] = per.get(source, 0) + n
        return [("logtrain_datasource_routes", {"source": k}, v) for k, v in per.items()]

    def check_route(self, source: str, host: str, url: str) -> None:
        """Raises ValueError (the reason) for a hostname no packet can carry or
        a URL no drain can serve, and trust.Refused (counted and logged) for
        one the policy does not admit from ``source``. Every datasource and
        the routes API check routes here, and only here."""
        check_hostname(host)
        output = create_output(url, self.rt)  # validates scheme and options; cheap, no I/O
        drain_filter(output.url, self.rt)  # filter parameters (match=, min_severity=, ...)
        try:
            self.policy.admit(source, output)
        except Refused as e:
            self.policy.report(kind(source), e.reason, output.url.safe, str(e))
            raise

    def add_route(self, source: str, host: str, url: str) -> None:
        """Adds a route; raises ValueError (the reason) for a URL no drain can
        serve or the trust policy does not admit from ``source``."""
        self.check_route(source, host, url)
        if self.policy.trusted(source):
            self.trusted_refs[url] = self.trusted_refs.get(url, 0) + 1
        key = (source, host.lower(), url)
        self.routes[key] = self.routes.get(key, 0) + 1
        table = self.globs if _GLOB_CHARS & set(host) else self.exact
        urls = table.setdefault(host.lower(), {})
        urls[url] = urls.get(url, 0) + 1
        self.url_refs[url] = self.url_refs.get(url, 0) + 1
        self._changed(table is self.globs)
        spools = self.rt.spools
        if url not in self.drains and spools is not None and spools.has_data(url):
            # an earlier run left lines in this drain's spool: replay them now
            d = self.drains[url] = self._drain_factory(url)
            self.rt.log.info("opened drain", drain=d.name, reason="spool left by an earlier run")

    def remove_route(self, source: str, host: str, url: str) -> bool:
        key = (source, host.lower(), url)
        n = self.routes.get(key)
        if not n:
            return False
        if n == 1:
            del self.routes[key]
        else:
            self.routes[key] = n - 1
        table = self.globs if _GLOB_CHARS & set(host) else self.exact
        urls = table[host.lower()]
        urls[url] -= 1
        if not urls[url]:
            del urls[url]
            if not urls:
                del table[host.lower()]
        if self.policy.trusted(source):
            self.trusted_refs[url] -= 1
            if not self.trusted_refs[url]:
                del self.trusted_refs[url]
                if url in self.url_refs and self.url_refs[url] > 1:
                    # Untrusted routes still name it: its open connections were
                    # checked as trusted, so the drain starts over, checked anew.
                    self._close_drain(url, "no trusted route names it any more")
        self.url_refs[url] -= 1
        if not self.url_refs[url]:
            del self.url_refs[url]
            self._close_drain(url, "no route uses it any more")
        self._changed(table is self.globs)
        return True

    def _close_drain(self, url: str, why: str) -> None:
        drain = self.drains.pop(url, None)
        if drain is not None:
            self.rt.log.info("closing drain: " + why, drain=drain.name)
            g = gevent.spawn(drain.close, self.rt.config.shutdown_timeout)
            self.closing.add(g)
            g.link(self.closing.discard)
        self._cache.clear()

    def _new_drain(self, url: str) -> Drain:
        output = create_output(url, self.rt)
        output.guard = Guard(self.policy, output.url.safe,
                             lambda: url in self.trusted_refs,
                             lambda: self._sources(url))
        return Drain(output, self.rt)

    def _sources(self, url: str) -> str:
        """The datasource kinds naming ``url`` (for a refusal's metric label)."""
        return ",".join(sorted({kind(s) for s, _, u in self.routes if u == url})) or "none"

    def _changed(self, globs: bool) -> None:
        if globs:
            self._glob_list = [
                (re.compile(fnmatch.translate(p)), tuple(urls)) for p, urls in self.globs.items()
            ]
        self._cache.clear()

    # ----------------------------------------------------------------- fan-out

    def _lookup(self, host: str) -> tuple[Drain, ...]:
        h = host.lower()
        urls = set(self.exact.get(h, ()))
        for pattern, purls in self._glob_list:
            if pattern.match(h):
                urls.update(purls)
        drains = []
        for url in sorted(urls):
            d = self.drains.get(url)
            if d is None:
                d = self.drains[url] = self._drain_factory(url)
                self.rt.log.info("opened drain", drain=d.name)
            drains.append(d)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[host] = t = tuple(drains)
        return t

    def drains_for(self, hostname: str) -> tuple[Drain, ...]:
        """The drains a packet of ``hostname`` goes to (opened on first use)."""
        drains = self._cache.get(hostname)
        return self._lookup(hostname) if drains is None else drains

    def route(self, packets: list[Packet], ack: Ack | None = None) -> list[Drain]:
        """Hands the batch to every drain its hostnames route to; returns the
        drains that are congested, for inputs that can apply backpressure."""
        if self.transform is not None:
            packets = self.transform.apply(packets)
        cache = self._cache
        per_drain: dict[Drain, list[Packet]] = {}
        dead = 0
        hosts = set(map(_HOSTNAME, packets))  # in C: a third of a loop in Python
        if len(hosts) <= 1:
            first = hosts.pop() if hosts else ""
            # The common case (one sender per connection): no per-line grouping.
            drains = cache.get(first)
            if drains is None:
                drains = self._lookup(first)
            if drains:
                for d in drains:
                    per_drain[d] = packets
            else:
                dead = len(packets)
        else:
            groups: dict[str, list[Packet]] = {}
            for p in packets:
                g = groups.get(p.hostname)
                if g is None:
                    groups[p.hostname] = [p]
                else:
                    g.append(p)
            for host, pkts in groups.items():
                drains = cache.get(host)
                if drains is None:
                    drains = self._lookup(host)
                if not drains:
                    dead += len(pkts)
                    continue
                for d in drains:
                    lst = per_drain.get(d)
                    if lst is None:
                        per_drain[d] = list(pkts)
                    else:
                        lst.extend(pkts)
        if dead:
            self._dead(dead, packets)
        congested = []
        for d, pkts in per_drain.items():
            d.put(pkts, ack)
            if d.congested:
                congested.append(d)
        if ack is not None:
            ack.done()
        return congested

    def _dead(self, n: int, packets: list[Packet]) -> None:
        self.rt.metrics.inc("logtrain_dead_packets_total", n)
        held = self.rt.ratelimit.allow("dead-packets")
        if held is not None:
            example = next((p.hostname for p in packets if not self._cache.get(p.hostname)), "")
            self.rt.log.warning("no route for packets: dropped", packets=n, hostname=example,
                                dead_batches_since_last_report=held)

    # ----------------------------------------------------------------- lifecycle

    def close(self, timeout: float) -> None:
        """Flushes and closes every drain, all in parallel, within ``timeout``."""
        drains = list(self.drains.values())
        self.drains.clear()
        self._cache.clear()
        jobs = [gevent.spawn(d.close, timeout) for d in drains] + list(self.closing)
        gevent.joinall(jobs, timeout=timeout + 2)
