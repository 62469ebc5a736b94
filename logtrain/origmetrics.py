"""The original logtrain's Prometheus series, under its names, so that a
Grafana dashboard made for it keeps working.

The Go agent kept five histograms and, every five minutes, observed in them
what each drain did in that period (then reset its counters):

* ``logtrain_connections{syslog=DRAIN}``: open connections (buckets 0, 5 .. 45)
* ``logtrain_pressure{syslog=DRAIN}``: how full the drain's buffer is, 0..1 (0, 0.1 .. 0.9)
* ``logtrain_packets_sent{syslog=DRAIN}``: packets sent in the period (0, 100 .. 9900)
* ``logtrain_errors{syslog=DRAIN}``: packets that could not be sent (same buckets)
* ``logtrain_deadpackets``: packets without a route in the period (same buckets)

Here the same observations are made every METRICS_ORIGINAL_INTERVAL seconds
from this agent's own counters (sent, dropped, dead), and rendered as
Prometheus histograms (``_bucket``, ``_sum``, ``_count``). The ``syslog``
label is the drain's masked URL: no credentials.
"""

from __future__ import annotations

from typing import Any

import gevent

from logtrain.metrics import _labels

HELP = {
    "logtrain_connections": "Amount of outbound connections (the original's series).",
    "logtrain_pressure": "The share of a drain's buffer that is full (the original's series).",
    "logtrain_packets_sent": "Packets sent by a drain in each period (the original's series).",
    "logtrain_errors": "Packets a drain could not send in each period (the original's series).",
    "logtrain_deadpackets": "Packets received with no route in each period (the original's series).",
}


def _linear(start: float, width: float, n: int) -> list[float]:
    return [round(start + i * width, 6) for i in range(n)]


BUCKETS = {
    "logtrain_connections": _linear(0, 5, 10),
    "logtrain_pressure": _linear(0, 0.1, 10),
    "logtrain_packets_sent": _linear(0, 100, 100),
    "logtrain_errors": _linear(0, 100, 100),
    "logtrain_deadpackets": _linear(0, 100, 100),
}


class Histogram:
    __slots__ = ("counts", "sum", "count")

    def __init__(self, n: int) -> None:
        self.counts = [0] * n
        self.sum = 0.0
        self.count = 0


class OriginalMetrics:
    def __init__(self, rt: Any, router: Any) -> None:
        self.rt = rt
        self.router = router
        self.hists: dict[tuple[str, str], Histogram] = {}
        self.last: dict[tuple[str, str], float] = {}

    def run(self) -> None:
        while True:
            gevent.sleep(self.rt.config.metrics_original_interval)
            self.observe()

    def _delta(self, name: str, label: str, now: float) -> float:
        before = self.last.get((name, label), 0.0)
        self.last[(name, label)] = now
        return max(0.0, now - before)

    def observe(self) -> None:
        """One period's observations (the Go agent's prometheusMetricsLoop)."""
        m = self.rt.metrics
        for d in list(self.router.drains.values()):
            n = d.name
            self._add("logtrain_connections", n, d.connections)
            self._add("logtrain_pressure", n, (d.buffered + d.inflight) / max(1, d.cap))
            self._add("logtrain_packets_sent", n,
                      self._delta("sent", n, m.get("logtrain_drain_sent_total", drain=n)))
            self._add("logtrain_errors", n,
                      self._delta("errors", n, m.total("logtrain_drain_dropped_total", drain=n)))
        self._add("logtrain_deadpackets", "",
                  self._delta("dead", "", m.get("logtrain_dead_packets_total")))

    def _add(self, name: str, label: str, v: float) -> None:
        bounds = BUCKETS[name]
        h = self.hists.get((name, label))
        if h is None:
            h = self.hists[(name, label)] = Histogram(len(bounds))
        for i, b in enumerate(bounds):
            if v <= b:
                h.counts[i] += 1
        h.sum += v
        h.count += 1

    def render(self) -> str:
        out = []
        for name in BUCKETS:
            rows = sorted((label, h) for (n, label), h in self.hists.items() if n == name)
            if not rows:
                continue
            out.append(f"# HELP {name} {HELP[name]}")
            out.append(f"# TYPE {name} histogram")
            for label, h in rows:
                base = (("syslog", label),) if name != "logtrain_deadpackets" else ()
                for b, c in zip(BUCKETS[name], h.counts, strict=True):
                    out.append(f"{name}_bucket{_labels(base + (('le', f'{b:g}'),))} {c}")
                out.append(f"{name}_bucket{_labels(base + (('le', '+Inf'),))} {h.count}")
                out.append(f"{name}_sum{_labels(base)} {h.sum:g}")
                out.append(f"{name}_count{_labels(base)} {h.count}")
        return "\n".join(out)
