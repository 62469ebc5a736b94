"""The route table and the fan-out of batches to drains.

Datasources add and remove routes (``source, hostname-or-glob, url``); the table
is their union, so the same route from two datasources lives until both remove
it. A drain exists once per URL: created when a packet is first routed to it,
closed (after flushing) when its last route goes away. ``route`` is called once
per batch; hostname look-ups are cached (least recently used evicted first)
until the table changes. Storage and the glob index are logtrain/routetable.py.

``add_route`` is where the trust policy (logtrain/trust.py) admits a route
(without building its drain's output), and each drain gets a Guard that asks
the router, at every connection, whether a trusted route still names it.

A datasource loading its routes at start says so (``loading``/``loaded``):
meanwhile packets without a route wait, bounded, instead of being dead.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import groupby
from operator import attrgetter

import gevent

from logtrain import routetable
from logtrain.drain import Ack, Drain
from logtrain.outputs import check_url, create_output
from logtrain.packet import Packet
from logtrain.runtime import Runtime
from logtrain.transform import drain_filter, router_pipeline
from logtrain.trust import Guard, Policy, Refused, kind
from logtrain.urls import mask_url

_CACHE_MAX = 8192  # hostnames whose drains are remembered (least recently used go first)
_HOLD_OVERHEAD = 200  # bytes a held packet costs beyond its message
_HOSTNAME = attrgetter("hostname")


MAX_HOSTNAME = 255


def check_hostname(host: object) -> None:
    """The one rule for a route's hostname (or glob); ValueError says why."""
    # isprintable() is False for every whitespace character but the space
    if (not isinstance(host, str) or not host or len(host) > MAX_HOSTNAME
            or not host.isprintable() or " " in host):
        raise ValueError("hostname must be a string of 1-255 printable characters without "
                         "spaces (a glob such as *.example is allowed)")


class Router:
    def __init__(self, rt: Runtime, drain_factory: Callable[[str], Drain] | None = None) -> None:
        self.rt = rt
        self.policy = Policy(rt)
        self._drain_factory = drain_factory or self._new_drain
        # source -> hostname (lower case, or glob) -> url, or {url: times added}
        self.tables: dict[str, dict[str, str | dict[str, int]]] = {}
        self.globs = routetable.GlobIndex(self.tables)  # every source's globs
        self.url_refs: dict[str, int] = {}
        self.trusted_refs: dict[str, int] = {}  # url -> routes from trusted sources
        self.drains: dict[str, Drain] = {}
        self.closing: set[gevent.Greenlet] = set()
        self._cache: dict[str, tuple[Drain, ...]] = {}  # in order of last use
        self._count = 0
        self._held: list[list[Packet]] | None = None  # early lines, while routes load
        self._held_bytes = 0
        self._loading: set[str] = set()
        rt.metrics.gauge("logtrain_routes", lambda: self._count)
        # redaction and per-hostname filters (logtrain/transform/); None: nothing to run
        self.transform = router_pipeline(rt)
        rt.metrics.collectors.append(self._routes_by_source)
        # sees every batch before its fan-out, dead packets included, while a
        # live tail is attached (logtrain/livetail.py); None costs one test per batch
        self.tap: Callable[[list[Packet]], None] | None = None

    # ----------------------------------------------------------------- table

    @property
    def routes(self) -> dict[tuple[str, str, str], int]:
        """(source, hostname, url) -> times added. Built on each call: use
        ``route_count`` for the number."""
        return {(s, h, u): n for s, t in self.tables.items()
                for h, v in t.items() for u, n in routetable.counts(v)}

    def route_count(self) -> int:
        return self._count

    def _routes_by_source(self) -> list[tuple[str, dict, int]]:
        return [("logtrain_datasource_routes", {"source": s},
                 sum(n for v in t.values() for _u, n in routetable.counts(v)))
                for s, t in self.tables.items()]

    def check_route(self, source: str, host: str, url: str) -> None:
        """Raises ValueError (the reason) for a hostname no packet can carry or
        a URL no drain can serve, and trust.Refused (counted and logged) for
        one the policy does not admit from ``source``. Every datasource and
        the routes API check routes here, and only here. Builds nothing: the
        drain's output is made when a packet is first routed to it."""
        check_hostname(host)
        checked = check_url(url, self.rt)
        drain_filter(checked.url, self.rt)  # filter parameters (match=, min_severity=, ...)
        try:
            self.policy.admit(source, checked)
        except Refused as e:
            self.policy.report(kind(source), e.reason, checked.url.safe, str(e))
            raise

    def add_route(self, source: str, host: str, url: str, *, checked: bool = False) -> None:
        """Adds a route; raises ValueError (the reason) for a URL no drain can
        serve or the trust policy does not admit from ``source``. ``checked``:
        the caller has just passed the same route through ``check_route``."""
        if not checked:
            self.check_route(source, host, url)
        if self.policy.trusted(source):
            self.trusted_refs[url] = self.trusted_refs.get(url, 0) + 1
        h = host.lower()
        if h == host:
            h = host  # the datasource's own string, not a copy
        table = self.tables.get(source)
        if table is None:
            table = self.tables[source] = {}
        if routetable.is_glob(h) and not any(h in t for t in self.tables.values()):
            self.globs.add(h)
        routetable.add(table, h, url)
        self.url_refs[url] = self.url_refs.get(url, 0) + 1
        self._count += 1
        self._cache.clear()
        spools = self.rt.spools
        if url not in self.drains and spools is not None and spools.has_data(url):
            # an earlier run left lines in this drain's spool: replay them now
            try:
                d = self.drains[url] = self._drain_factory(url)
            except ValueError as e:  # admitted by Output.check, refused when built
                self._unbuildable(url, e)
            else:
                self.rt.log.info("opened drain", drain=d.name,
                                 reason="spool left by an earlier run")

    def remove_route(self, source: str, host: str, url: str) -> bool:
        h = host.lower()
        table = self.tables.get(source)
        if table is None or not routetable.remove(table, h, url):
            return False
        if not table:
            del self.tables[source]
        if routetable.is_glob(h) and not any(h in t for t in self.tables.values()):
            self.globs.remove(h)
        self._count -= 1
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
        self._cache.clear()
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
        return ",".join(sorted({kind(s) for s, t in self.tables.items()
                                if any(url in routetable.urls(v) for v in t.values())})) or "none"

    # ----------------------------------------------------------------- fan-out

    def _lookup(self, host: str) -> tuple[Drain, ...]:
        h = host.lower()
        found: set[str] = set()
        if not routetable.is_glob(h):  # a hostname that is a glob is only matched by globs
            for table in self.tables.values():
                v = table.get(h)
                if v is not None:
                    found.update(routetable.urls(v))
        if self.globs:
            self.globs.match(h, found)
        drains = []
        for url in sorted(found):
            d = self.drains.get(url)
            if d is None:
                try:
                    d = self._drain_factory(url)
                except ValueError as e:  # admitted by Output.check, refused when built
                    self._unbuildable(url, e)
                    continue
                self.drains[url] = d
                self.rt.log.info("opened drain", drain=d.name)
            drains.append(d)
        cache = self._cache
        if len(cache) >= _CACHE_MAX:
            del cache[next(iter(cache))]  # the least recently used
        cache[host] = t = tuple(drains)
        return t

    def _unbuildable(self, url: str, e: ValueError) -> None:
        self.rt.metrics.inc("logtrain_route_errors_total", source="router")
        held = self.rt.ratelimit.allow(("unbuildable", url))
        if held is not None:
            self.rt.log.warning("drain cannot be built; its packets are dead", error=str(e),
                                endpoint=mask_url(url), failures_since_last_report=held)

    def _cached(self, host: str) -> tuple[Drain, ...]:
        """The drains of ``host``, from the cache (marked as just used) or looked up."""
        cache = self._cache
        drains = cache.pop(host, None)
        if drains is None:
            return self._lookup(host)
        cache[host] = drains
        return drains

    def drains_for(self, hostname: str) -> tuple[Drain, ...]:
        """The drains a packet of ``hostname`` goes to (opened on first use)."""
        return self._cached(hostname)

    def route(self, packets: list[Packet], ack: Ack | None = None) -> list[Drain]:
        """Hands the batch to every drain its hostnames route to; returns the
        drains that are congested, for inputs that can apply backpressure."""
        if self.transform is not None:
            # before the tails too: a redacted secret must not leak through one
            packets = self.transform.apply(packets)
        if self.tap is not None:
            self.tap(packets)
        cached = self._cached
        per_drain: dict[Drain, list[Packet]] = {}
        dead = 0
        unrouted: list[Packet] | None = None
        hosts = set(map(_HOSTNAME, packets))  # in C: a third of a loop in Python
        if len(hosts) <= 1:
            first = hosts.pop() if hosts else ""
            # The common case (one sender per connection): no per-line grouping.
            drains = cached(first)
            if drains:
                for d in drains:
                    per_drain[d] = packets
            else:
                dead = len(packets)
                unrouted = packets
        else:
            # runs of one hostname (a file's lines, a sender's) are taken
            # whole, in C: a loop per packet in Python cost more than the rest
            groups: dict[str, list[Packet]] = {}
            for host, run in groupby(packets, _HOSTNAME):
                g = groups.get(host)
                if g is None:
                    groups[host] = list(run)
                else:
                    g.extend(run)
            for host, pkts in groups.items():
                drains = cached(host)
                if not drains:
                    dead += len(pkts)
                    if unrouted is None:
                        unrouted = []
                    unrouted.extend(pkts)
                    continue
                for d in drains:
                    lst = per_drain.get(d)
                    if lst is None:
                        per_drain[d] = list(pkts)
                    else:
                        lst.extend(pkts)
        if dead and not (self._held is not None and self._hold(unrouted)):
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

    # ----------------------------------------------------------------- start-up

    def loading(self, source: str) -> None:
        """``source`` is loading its routes. Until every source that said so
        has called ``loaded`` (or ROUTES_STARTUP_WAIT seconds pass), lines
        for hostnames without a route wait, up to ROUTES_STARTUP_BUFFER bytes,
        instead of becoming dead packets: inputs listen at once, before a
        large table is in."""
        self._loading.add(source)
        if self._held is None:
            self._held = []
            self._held_bytes = 0
            self._hold_timer = gevent.spawn_later(self.rt.config.routes_startup_wait,
                                                  self._release, "ROUTES_STARTUP_WAIT passed")

    def loaded(self, source: str) -> None:
        """``source`` has loaded its routes (or given up for now)."""
        self._loading.discard(source)
        if not self._loading and self._held is not None:
            self._hold_timer.kill(block=False)
            self._release("routes loaded")

    @property
    def holding(self) -> bool:
        """True while early lines wait for routes to load."""
        return self._held is not None

    def _hold(self, pkts: list[Packet] | None) -> bool:
        if not pkts:
            return False
        size = sum(len(p.raw) if p.raw is not None else len(p.message) for p in pkts)
        size += _HOLD_OVERHEAD * len(pkts)
        m = self.rt.metrics
        if self._held_bytes + size > self.rt.config.routes_startup_buffer:
            m.inc("logtrain_router_held_packets_total", len(pkts), outcome="over_buffer")
            return False  # counted dead by the caller
        self._held.append(list(pkts))
        self._held_bytes += size
        m.inc("logtrain_router_held_packets_total", len(pkts), outcome="held")
        return True

    def _release(self, why: str) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        n = sum(map(len, held))
        if n:  # nothing to say when no line came early
            self.rt.log.info("routing the lines that arrived before the routes were loaded",
                             packets=n, bytes=self._held_bytes, reason=why,
                             still_loading=",".join(sorted(self._loading)))
        self._held_bytes = 0
        if held:
            gevent.spawn(self._route_held, held)

    def _route_held(self, held: list[list[Packet]]) -> None:
        for batch in held:
            self.route(batch)  # what still has no route is dead now, counted
            gevent.sleep(0)

    # ----------------------------------------------------------------- lifecycle

    def close(self, timeout: float) -> None:
        """Flushes and closes every drain, all in parallel, within ``timeout``."""
        drains = list(self.drains.values())
        self.drains.clear()
        self._cache.clear()
        jobs = [gevent.spawn(d.close, timeout) for d in drains] + list(self.closing)
        gevent.joinall(jobs, timeout=timeout + 2)
