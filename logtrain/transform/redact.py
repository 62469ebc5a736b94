"""Redaction: secrets in messages replaced by a marker before any drain sees them.

Built-in patterns, by name (``REDACT=default`` selects all but ``email``; or a
comma-separated list of names):

* ``url_password``: the password of ``scheme://user:PASSWORD@host``;
* ``bearer_token``: ``Bearer TOKEN`` (an Authorization header's value);
* ``api_key``: the value of ``api_key=``, ``apikey:``, ``x-api-key:``,
  ``access_token=``, ``secret_key=``, ``client_secret=``, ``password=`` and
  the like (key=value, key: value, JSON "key": "value");
* ``aws_access_key``: AWS access key ids (``AKIA...``, ``ASIA...``);
* ``card_number``: 13 to 19 digits, with or without spaces or dashes, that
  pass the Luhn check;
* ``email``: e-mail addresses (not in ``default``).

Operator patterns (``REDACT_PATTERNS``: name -> regular expression) are
replaced whole. Each match becomes ``[REDACTED:NAME]`` and is counted per
pattern (``logtrain_redactions_total``).

Cost: all the patterns are one RE2 alternation without capture groups (RE2
runs it as a DFA), searched over the whole batch joined by newlines
(``never_nl``: no match spans two lines), resuming after each message with a
match. A batch with no secret (the usual case) costs that one search and
touches no packet; only the packets a match falls in are rewritten, with the
built-in patterns again (Python's re: they are bounded) and each operator
pattern (RE2). Rewritten packets lose their frame: syslog drains format them.

"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from itertools import accumulate
from typing import Any

from logtrain.transform.regex import compile_user, message_bytes

# name -> (pattern, keep): ``keep`` groups (named NAME_k) stay as they were
BUILTIN: dict[str, str] = {
    "url_password": r"(?P<url_password_k>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:@/]*:)[^\s@/]+@",
    "bearer_token": r"(?P<bearer_token_k>\b(?i:bearer)\s+)[A-Za-z0-9._~+/-]{8,}=*",
    "api_key": (r"(?P<api_key_k>\b(?i:x-api-key|api[_-]?key|apikey|api[_-]?token|access[_-]?token"
                r"|auth[_-]?token|secret[_-]?key|client[_-]?secret|private[_-]?key|passwd"
                r"|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;]{4,}"),
    "aws_access_key": r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}\b",
    "card_number": r"\b[0-9](?:[ -]?[0-9]){12,18}\b",
    "email": r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b",
}
DEFAULT = ("url_password", "bearer_token", "api_key", "aws_access_key", "card_number")
_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def luhn(digits: bytes) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = c - 48
        if i & 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def parse_selection(value: str) -> tuple[str, ...]:
    """``REDACT``: "" (off), ``default``, or names (``default`` may be among them)."""
    names: list[str] = []
    for n in (x.strip().lower() for x in value.split(",")):
        if not n:
            continue
        if n == "default":
            names += [d for d in DEFAULT if d not in names]
        elif n in BUILTIN:
            if n not in names:
                names.append(n)
        else:
            raise ValueError(f"unknown redaction pattern {n!r} (known: default, "
                             f"{', '.join(BUILTIN)})")
    return tuple(names)


def check_patterns(patterns: Any, where: str) -> dict[str, str]:
    """Operator patterns: a table of name -> regular expression."""
    if not isinstance(patterns, dict):
        raise ValueError(f"{where}: expected a table of name = \"regular expression\"")
    for name, pat in patterns.items():
        if not name or set(name) - _NAME_OK or name in BUILTIN:
            raise ValueError(f"{where}: pattern name {name!r} must be lower-case letters, "
                             "digits and _ and not a built-in name")
        if not isinstance(pat, str):
            raise ValueError(f"{where}: pattern {name!r} must be a string")
        compile_user(pat, f"{where}.{name}")  # refused here, with the reason
    return dict(patterns)


class Redactor:
    """Replaces what the selected patterns match; ``count(name, n)`` is told
    how many matches of each pattern were replaced in a batch."""

    def __init__(self, builtins: tuple[str, ...], custom: dict[str, str],
                 count: Callable[[str, int], None]) -> None:
        if not builtins and not custom:
            raise ValueError("no redaction pattern selected")
        # Finding the lines to rewrite: every pattern in one RE2 alternation
        # without capture groups, which RE2 runs as a DFA (4x faster here
        # than with groups to fill in).
        plain = [re.sub(r"\(\?P<\w+>", "(?:", BUILTIN[n]) for n in builtins]
        plain += list(custom.values())
        self.detect = compile_user("|".join(f"(?:{p})" for p in plain), "redaction")
        # Rewriting the few lines found: the built-in patterns (written here,
        # bounded) with Python's re, whose sub costs microseconds where the
        # RE2 wrapper's costs a hundred; the operator's with RE2, one by one.
        self.builtin = (re.compile("|".join(f"(?P<{n}>{BUILTIN[n]})" for n in builtins)
                                   .encode()) if builtins else None)
        self.names = list(builtins)
        self.custom = [(n, compile_user(p, f"redaction {n}"),
                        b"[REDACTED:" + n.encode() + b"]") for n, p in custom.items()]
        self.count = count

    def apply(self, packets: list) -> list:
        """Rewrites, in place, the messages of the packets with a match."""
        if not packets:
            return packets
        msgs = message_bytes(packets)
        joined = b"\n".join(msgs)
        search = self.detect.search
        m = search(joined)
        if m is None:
            return packets
        hit = []
        if joined.count(b"\n") == len(msgs) - 1:
            # one line per message: its index is the newlines before the match
            i = pos = 0
            while m is not None:
                i += joined.count(b"\n", pos, m.start())
                hit.append(i)
                pos = joined.find(b"\n", m.end()) + 1  # never_nl: the match is in the line
                if not pos:
                    break
                i += 1
                m = search(joined, pos)
        else:  # multiline packets: where each message starts
            starts = list(accumulate((len(x) + 1 for x in msgs), initial=0))
            while m is not None:
                i = bisect_right(starts, m.start()) - 1
                hit.append(i)
                m = search(joined, starts[i + 1])
        counts: dict[str, int] = {}
        replace = self._replacer(counts)
        for i in hit:
            old = new = msgs[i]
            if self.builtin is not None:
                new = self.builtin.sub(replace, new)
            for name, pattern, marker in self.custom:
                new, n = pattern.subn(marker, new)
                if n:
                    counts[name] = counts.get(name, 0) + n
            if new != old:
                packets[i].message = new.decode("utf-8", "surrogateescape")
        for name, n in counts.items():
            self.count(name, n)
        return packets

    def _replacer(self, counts: dict[str, int]) -> Callable[[Any], bytes]:
        def replace(m: Any) -> bytes:
            name = m.lastgroup
            text = m.group(name)
            if name == "card_number":
                digits = text.replace(b" ", b"").replace(b"-", b"")
                if not 13 <= len(digits) <= 19 or not luhn(digits):
                    return text
            counts[name] = counts.get(name, 0) + 1
            keep = m.group(name + "_k") if name in _KEEPS else b""
            marker = b"[REDACTED:" + name.encode() + b"]"
            if name == "url_password":
                return keep + marker + b"@"
            return keep + marker

        return replace


_KEEPS = frozenset(("url_password", "bearer_token", "api_key"))


def redactor_from(selection: str, custom: dict[str, str], rt: Any, **labels: str) -> Redactor | None:
    """The Redactor a configuration asks for, or None when it selects nothing."""
    builtins = parse_selection(selection)
    if not builtins and not custom:
        return None
    metrics = rt.metrics

    def count(name: str, n: int) -> None:
        metrics.inc("logtrain_redactions_total", n, pattern=name, **labels)

    return Redactor(builtins, custom, count)
