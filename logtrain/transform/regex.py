"""Compiling regular expressions that come from configuration or routes.

Patterns from untrusted routes (Postgres, the API, annotations) must not be
able to stall the agent: Python's ``re`` backtracks, so ``(a+)+$`` against a
long line takes exponential time. Every pattern written by a user is compiled
with google-re2 (linear time in the input, memory bounded per pattern by
``max_mem``); what RE2 cannot run in linear time (backreferences,
look-around) is refused with RE2's reason. google-re2 is imported only when a
pattern is compiled (about 2.9 MiB resident, 0.3 MiB anonymous, measured).
Patterns match the UTF-8 bytes of a message; ``never_nl`` keeps every match
inside one line, so a batch can be searched in one pass joined by newlines.
"""

from __future__ import annotations

from typing import Any

MAX_PATTERN = 2048  # characters of one user pattern
MAX_MEM = 2 << 20  # bytes RE2 may use for one compiled pattern


def compile_user(pattern: str, what: str = "pattern") -> Any:
    """A compiled RE2 pattern over bytes; ValueError with the reason when the
    pattern is empty, too long, not valid or cannot be run in linear time."""
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"{what}: an empty regular expression")
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"{what}: regular expression longer than {MAX_PATTERN} characters")
    import re2  # lazily: only agents with a pattern pay its memory

    opts = re2.Options()
    opts.max_mem = MAX_MEM
    opts.log_errors = False
    opts.never_nl = True
    try:
        return re2.compile(pattern.encode("utf-8", "surrogateescape"), opts)
    except re2.error as e:
        reason = e.args[0] if e.args else str(e)
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(f"{what}: {pattern!r} refused: {reason} (patterns run on RE2: "
                         "linear time, at most 2 MiB each, no backreferences or "
                         "look-around)") from None


def message_bytes(packets: list) -> list[bytes]:
    """The message of each packet as bytes, without decoding the frame of a
    packet that carries one."""
    return [p.raw[p.msg_at:] if p.raw is not None
            else p.message.encode("utf-8", "surrogateescape") for p in packets]
