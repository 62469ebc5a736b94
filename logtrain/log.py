"""The agent's own log: one logfmt line per event on stderr, filtered by level.

Written by hand rather than with the logging package: a line is a dict of
fields, and the only features needed are a level filter and rate limiting.

Every time the agent writes, here and in packets it stamps itself, is UTC in
one form: RFC3339 ending in ``Z`` (never ``+00:00``).
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
HELD_SUFFIX = "since_last_report"  # fields counting events a RateLimit held back


def _value(v: Any) -> str:
    s = str(v)
    if s and all(c.isalnum() or c in "-._/:@*+,[]" for c in s):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class Log:
    def __init__(self, level: str = "info", stream: TextIO | None = None) -> None:
        self.threshold = LEVELS[level.lower()]
        self.stream = stream or sys.stderr

    def log(self, level: str, msg: str, **fields: Any) -> None:
        """One line. A ``*_since_last_report`` field (what a RateLimit held
        back) is left out while it is 0: on a first report it says nothing."""
        if LEVELS[level] < self.threshold:
            return
        ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        parts = [f"time={ts}", f"level={level}", f"msg={_value(msg)}"]
        parts.extend(f"{k}={_value(v)}" for k, v in fields.items()
                     if not (v == 0 and k.endswith(HELD_SUFFIX)))
        try:
            self.stream.write(" ".join(parts) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed stderr must not take the agent down

    def debug(self, msg: str, **fields: Any) -> None:
        self.log("debug", msg, **fields)

    def info(self, msg: str, **fields: Any) -> None:
        self.log("info", msg, **fields)

    def warning(self, msg: str, **fields: Any) -> None:
        self.log("warning", msg, **fields)

    def error(self, msg: str, **fields: Any) -> None:
        self.log("error", msg, **fields)


class RateLimit:
    """Allows one event per key per interval and counts the ones it held back,
    so that a flood of the same failure is one log line with a count."""

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self._last: dict[Any, float] = {}
        self._held: dict[Any, int] = {}

    def allow(self, key: Any) -> int | None:
        """None to stay silent; otherwise how many events were held back since
        the last one allowed."""
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._held.pop(key, 0)

    def forget(self, key: Any) -> None:
        self._last.pop(key, None)
        self._held.pop(key, None)
