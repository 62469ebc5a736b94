"""The configuration checks of the transformation settings (settings.py runs
them at start and in check-config): each returns what is wrong, or None."""

from __future__ import annotations

from typing import Any

from logtrain.transform.pipeline import check_filters, check_redact_hosts
from logtrain.transform.redact import check_patterns, parse_selection

__all__ = ["check_filters", "check_redact_hosts", "check_redact", "check_redact_patterns",
           "check_multiline"]


def check_redact(value: str) -> str | None:
    try:
        parse_selection(value)
    except ValueError as e:
        return str(e)
    return None


def check_redact_patterns(value: Any) -> str | None:
    if value == ():
        return None
    try:
        check_patterns(value, "REDACT_PATTERNS")
    except ValueError as e:
        return str(e)
    return None


def check_multiline(value: Any) -> str | None:
    from logtrain.transform.multiline import check_rules

    try:
        check_rules(value)
    except ValueError as e:
        return str(e)
    return None
