"""Filters: keep or drop packets by severity, a regular expression on the
message, and tag.

One ``Filter`` is built from options (drain URL parameters, or a ``[[filters]]``
table of the TOML file): ``min_severity`` / ``max_severity`` (a syslog
severity name or number; ``min_severity=warning`` keeps warning and more
severe, that is numbers 0-4), ``match`` (keep only messages the expression
finds something in), ``exclude`` (drop those), ``tag`` (keep only these tags:
comma-separated, globs allowed). Expressions run on RE2 (logtrain/transform/
regex.py): a route's pattern cannot stall the agent. ``apply`` runs once per
batch and counts what it drops per reason.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from operator import attrgetter
from typing import Any

from logtrain.transform import FILTER_OPTIONS
from logtrain.transform.regex import compile_user, message_bytes

SEVERITIES = {
    "emerg": 0, "emergency": 0, "panic": 0, "alert": 1, "crit": 2, "critical": 2,
    "err": 3, "error": 3, "warning": 4, "warn": 4, "notice": 5, "info": 6,
    "informational": 6, "debug": 7,
}
OPTIONS = FILTER_OPTIONS
_SEVERITY = attrgetter("severity")
_TAG = attrgetter("tag")


def parse_severity(value: Any, what: str) -> int:
    """A syslog severity from its name or number; ValueError names what is wrong."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 7:
        return value
    if isinstance(value, str):
        v = value.strip().lower()
        if v.isdigit() and int(v) <= 7:
            return int(v)
        if v in SEVERITIES:
            return SEVERITIES[v]
    raise ValueError(f"{what}={value!r}: expected a syslog severity name (emerg, alert, crit, "
                     "err, warning, notice, info, debug) or a number 0-7")


class Filter:
    """Decides per batch which packets to keep. ``count(reason, n)`` is called
    with what each condition dropped."""

    __slots__ = ("min_sev", "max_sev", "match", "exclude", "tags", "count", "describe")

    def __init__(self, options: dict[str, Any], count: Callable[[str, int], None],
                 where: str = "filter") -> None:
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise ValueError(f"{where}: unknown filter option(s) {', '.join(sorted(unknown))}")
        self.count = count
        self.min_sev = self.max_sev = None
        if options.get("min_severity") not in (None, ""):
            self.min_sev = parse_severity(options["min_severity"], "min_severity")
        if options.get("max_severity") not in (None, ""):
            self.max_sev = parse_severity(options["max_severity"], "max_severity")
        if self.min_sev is not None and self.max_sev is not None and self.max_sev > self.min_sev:
            raise ValueError(f"{where}: max_severity is more severe than min_severity: "
                             "no line could pass")
        self.match = self.exclude = None
        for name in ("match", "exclude"):
            v = options.get(name)
            if v not in (None, ""):
                setattr(self, name, compile_user(v, name))
        self.tags = None
        tag = options.get("tag")
        if tag not in (None, ""):
            if not isinstance(tag, str):
                raise ValueError(f"{where}: tag must be a string")
            globs = [t.strip() for t in tag.split(",") if t.strip()]
            self.tags = re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs))
        self.describe = ", ".join(f"{k}={options[k]}" for k in OPTIONS if options.get(k))

    @property
    def active(self) -> bool:
        return any(x is not None for x in (self.min_sev, self.max_sev, self.match,
                                           self.exclude, self.tags))

    def apply(self, packets: list) -> list:
        """The packets that pass, in order (the same list when all do)."""
        n = len(packets)
        if self.min_sev is not None or self.max_sev is not None:
            lo = 0 if self.max_sev is None else self.max_sev
            hi = 7 if self.min_sev is None else self.min_sev
            sevs = list(map(_SEVERITY, packets))
            if min(sevs, default=lo) < lo or max(sevs, default=hi) > hi:
                kept = [p for p, s in zip(packets, sevs, strict=True) if lo <= s <= hi]
                low = sum(1 for s in sevs if s > hi)
                if low:
                    self.count("min_severity", low)
                if n - len(kept) - low:
                    self.count("max_severity", n - len(kept) - low)
                packets = kept
        if self.tags is not None and packets:
            ok = self.tags.fullmatch
            kept = [p for p in packets if ok(p.tag)]
            if len(kept) != len(packets):
                self.count("tag", len(packets) - len(kept))
                packets = kept
        if self.match is not None and packets:
            search = self.match.search
            kept = [p for p, m in zip(packets, message_bytes(packets), strict=True) if search(m)]
            if len(kept) != len(packets):
                self.count("match", len(packets) - len(kept))
                packets = kept
        if self.exclude is not None and packets:
            search = self.exclude.search
            kept = [p for p, m in zip(packets, message_bytes(packets), strict=True)
                    if not search(m)]
            if len(kept) != len(packets):
                self.count("exclude", len(packets) - len(kept))
                packets = kept
        return packets


def options_of_url(query: dict[str, str]) -> dict[str, str]:
    """The filter options among a drain URL's query parameters."""
    return {k: v for k, v in query.items() if k in OPTIONS}


def drain_filter(url: Any, rt: Any) -> Filter | None:
    """The filter a drain URL's parameters ask for (None: none, nothing to pay);
    ValueError names a bad parameter."""
    options = options_of_url(url.query)
    if not options:
        return None
    name = url.safe
    metrics = rt.metrics

    def count(reason: str, n: int) -> None:
        metrics.inc("logtrain_filtered_total", n, drain=name, reason=reason)

    f = Filter(options, count, f"drain {name}")
    return f if f.active else None
