"""Transformations of log lines between inputs and drains: filters, redaction,
multiline joining and structured (JSON) logs.

Each module has one job and a small interface, and each is built only when the
configuration (or a drain URL) asks for it, so a drain with no transformation
pays nothing: the hooks in the router, the drain and the file follower test
one attribute for None.

* ``filters``: keep or drop packets by severity, message regex, tag
  (``Filter.apply(packets) -> kept``; per drain from URL parameters, per
  hostname glob from the TOML file).
* ``redact``: built-in and operator patterns replaced by a marker before any
  drain sees a line (``Redactor.apply(packets)``).
* ``pipeline``: what the router runs on every batch (global and per-hostname
  redaction and filters).
* ``multiline``: joins continuation lines of container logs into one packet
  (a stage between a file's parser and the router, with offsets for
  checkpoints).
* ``structured``: JSON lines: severity (and optionally message) from the
  usual keys, and ``es_fields`` for the Elasticsearch drain.
* ``regex``: the one way to compile a pattern: google-re2 (linear time) for
  what routes and operators write.
"""

from __future__ import annotations

from typing import Any

# the drain URL parameters that ask for a filter (logtrain/transform/filters.py)
FILTER_OPTIONS = ("min_severity", "max_severity", "match", "exclude", "tag")


def drain_filter(url: Any, rt: Any) -> Any:
    """The Filter a drain URL asks for, or None; the modules (and RE2) load
    only for a URL that has filter parameters. ValueError names a bad one."""
    if not any(k in url.query for k in FILTER_OPTIONS):
        return None
    from logtrain.transform.filters import drain_filter as make

    return make(url, rt)


def router_pipeline(rt: Any) -> Any:
    """What the router runs per batch (redaction, per-hostname filters), or
    None when the configuration asks for neither (nothing is loaded)."""
    c = rt.config
    if not (c.redact or c.redact_patterns or c.redact_hosts or c.filters):
        return None
    from logtrain.transform.pipeline import pipeline_from

    return pipeline_from(rt)
