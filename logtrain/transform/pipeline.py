"""What the router runs on every batch before the fan-out: redaction (global,
``REDACT`` and ``REDACT_PATTERNS``, and per hostname glob, ``REDACT_HOSTS``)
and filters per hostname glob (``FILTERS``). Per-drain filters (drain URL
parameters) run in the drain instead.

``pipeline_from(rt)`` is None when nothing is configured: the router then
skips the hook entirely. Hostname look-ups are cached like the router's.
"""

from __future__ import annotations

import fnmatch
import re
from operator import attrgetter
from typing import Any

from logtrain.transform.filters import OPTIONS, Filter
from logtrain.transform.redact import Redactor, check_patterns, parse_selection, redactor_from

_HOSTNAME = attrgetter("hostname")
_CACHE_MAX = 8192


def _globs(entry: dict, where: str) -> re.Pattern:
    hosts = entry.get("hosts")
    if isinstance(hosts, str):
        hosts = [hosts]
    if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) and h
                                                           for h in hosts):
        raise ValueError(f"{where}: 'hosts' must be a hostname glob or a list of them")
    return re.compile("|".join(f"(?:{fnmatch.translate(h.lower())})" for h in hosts))


def check_tables(value: Any, setting: str, keys: tuple[str, ...]) -> list[dict]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(e, dict) for e in value):
        raise ValueError(f"{setting}: expected a list of tables ([[{setting.lower()}]])")
    for i, e in enumerate(value, 1):
        unknown = set(e) - set(keys)
        if unknown:
            raise ValueError(f"{setting} entry {i}: unknown key(s) {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(keys)})")
    return list(value)


def check_filters(value: Any) -> str | None:
    try:
        for i, e in enumerate(check_tables(value, "FILTERS", ("hosts",) + OPTIONS), 1):
            _globs(e, f"entry {i}")
            Filter({k: v for k, v in e.items() if k != "hosts"}, lambda r, n: None,
                   f"entry {i}")
    except ValueError as e:
        return str(e)
    return None


def check_redact_hosts(value: Any) -> str | None:
    try:
        for i, e in enumerate(check_tables(value, "REDACT_HOSTS",
                                           ("hosts", "redact", "patterns")), 1):
            _globs(e, f"entry {i}")
            parse_selection(str(e.get("redact", "")))
            check_patterns(e.get("patterns", {}), f"entry {i} patterns")
    except ValueError as e:
        return str(e)
    return None


class Pipeline:
    """Global redaction, then per-hostname rules (redaction, then filters)."""

    def __init__(self, rt: Any, global_redactor: Redactor | None,
                 rules: list[tuple[re.Pattern, Any]]) -> None:
        self.rt = rt
        self.redactor = global_redactor
        self.rules = rules  # (hostname globs, Redactor or Filter), in order
        self._cache: dict[str, tuple] = {}

    def _for(self, host: str) -> tuple:
        stages = self._cache.get(host)
        if stages is None:
            h = host.lower()
            stages = tuple(stage for pattern, stage in self.rules if pattern.match(h))
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[host] = stages
        return stages

    def apply(self, packets: list) -> list:
        if self.redactor is not None:
            packets = self.redactor.apply(packets)
        if not self.rules or not packets:
            return packets
        hosts = set(map(_HOSTNAME, packets))
        if len(hosts) == 1:
            for stage in self._for(hosts.pop()):
                packets = stage.apply(packets)
            return packets
        groups: dict[str, list] = {}
        for p in packets:
            g = groups.get(p.hostname)
            if g is None:
                groups[p.hostname] = [p]
            else:
                g.append(p)
        out = []
        for host, pkts in groups.items():
            for stage in self._for(host):
                pkts = stage.apply(pkts)
            out += pkts
        return out


def pipeline_from(rt: Any) -> Pipeline | None:
    """The router's pipeline for this configuration; None when it has nothing to do."""
    cfg = rt.config
    global_redactor = redactor_from(cfg.redact, dict(cfg.redact_patterns or {}), rt)
    rules: list[tuple[re.Pattern, Any]] = []
    for i, e in enumerate(cfg.redact_hosts, 1):
        r = redactor_from(str(e.get("redact", "")), dict(e.get("patterns", {})), rt,
                          hosts=_label(e))
        if r is not None:
            rules.append((_globs(e, f"REDACT_HOSTS entry {i}"), r))
    metrics = rt.metrics
    for i, e in enumerate(cfg.filters, 1):
        label = _label(e)

        def count(reason: str, n: int, label: str = label) -> None:
            metrics.inc("logtrain_filtered_total", n, hosts=label, reason=reason)

        f = Filter({k: v for k, v in e.items() if k != "hosts"}, count, f"FILTERS entry {i}")
        if f.active:
            rules.append((_globs(e, f"FILTERS entry {i}"), f))
    if global_redactor is None and not rules:
        return None
    return Pipeline(rt, global_redactor, rules)


def _label(entry: dict) -> str:
    h = entry.get("hosts")
    return ",".join(h) if isinstance(h, list) else str(h)
