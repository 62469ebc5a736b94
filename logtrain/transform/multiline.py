"""Multiline joining: a stack trace and other continuation lines of a
container (or server) log become one packet.

A ``Joiner`` sits between a file's parser and the router (logtrain/follow.py).
Each line either starts a group or continues the pending one of its stream
(stdout and stderr apart). Modes (``[[multiline]]`` in the TOML file, per file
glob, or the pod annotation ``logtrain.akkeris.io/multiline``):

* ``java``: lines starting with white space (``\\tat ...``, ``\\t... 3 more``),
  ``Caused by:``, ``Suppressed:`` and an exception class line
  (``java.lang.IllegalStateException: ...``) continue the line before;
* ``python``: ``Traceback (most recent call last):``, indented lines, the
  exception line closing a traceback, and the lines chaining tracebacks
  (``During handling of the above exception ...``) continue;
* ``go``: a panic or ``runtime/debug.Stack()``: blank lines, ``goroutine N
  [...]:``, frames ``pkg.func(...)`` and their indented file lines, ``created
  by``;
* ``nodejs``: indented ``at ...`` frames, blank lines and the ``^`` under an
  uncaught error's source line;
* ``start = "REGEX"`` (annotation ``start:REGEX``): a line matching it starts
  a group, any other line continues.

A group is sent when a line starts the next one, when it reaches
MULTILINE_MAX_LINES or MULTILINE_MAX_BYTES, or MULTILINE_TIMEOUT seconds after
its last line. Checkpoints: ``pending_start`` is the file offset of the first
line of the oldest pending group, and the follower commits no further than
that, so a restart reads a group whole, never half of it twice.

The joined packet keeps the first line's time, severity and names; its
message is the lines joined by ``\\n`` (syslog drains with newline framing
write them as spaces; ``framing=octet`` and JSON drains keep them).
"""

from __future__ import annotations

import fnmatch
import re
import time
from itertools import accumulate
from typing import Any

from logtrain.packet import Packet
from logtrain.transform.regex import compile_user, message_bytes

ANNOTATION = "logtrain.akkeris.io/multiline"

# continuation lines per stateless mode (trusted patterns written here: stdlib re)
_CONTINUE = {
    "java": re.compile(rb"[ \t]|Caused by: |Suppressed: |(?:[a-zA-Z_$][\w$]*\.)+[\w$]*"
                       rb"(?:Exception|Error|Throwable)(?::|$)"),
    "go": re.compile(rb"[ \t]|$|goroutine \d+ \[|created by |\[signal |"
                     rb"[\w./*()\[\]-]+\(.*\)$"),
    "nodejs": re.compile(rb"$|[ \t]+(?:at |\.\.\. \d+ more|\[cause\]|[}\]^])"),
}
_PY_TRACEBACK = re.compile(rb"Traceback \(most recent call last\):|During handling of the above "
                           rb"exception|The above exception was the direct cause")
_PY_EXCEPTION = re.compile(rb"[A-Za-z_][\w.]*(?::|$)")
MODES = ("java", "python", "go", "nodejs")


def parse_spec(value: str, where: str) -> tuple[str, Any]:
    """A mode name, or ``start:REGEX``; ValueError says what is wrong."""
    v = value.strip()
    if v.lower() in MODES:
        return v.lower(), None
    if v.startswith("start:"):
        return "start", compile_user(v[6:], f"{where} start")
    raise ValueError(f"{where}: {value!r} is not a multiline mode ({', '.join(MODES)}, "
                     "or start:REGEX)")


def check_rules(value: Any) -> list[tuple[re.Pattern, tuple[str, Any]]]:
    """``MULTILINE``: [[multiline]] tables of ``files`` (a glob) and ``mode``
    or ``start``."""
    if not isinstance(value, (list, tuple)):
        raise ValueError("MULTILINE: expected a list of tables ([[multiline]])")
    rules = []
    for i, e in enumerate(value, 1):
        where = f"MULTILINE entry {i}"
        if not isinstance(e, dict) or set(e) - {"files", "mode", "start"}:
            raise ValueError(f"{where}: expected files and mode (or start)")
        files = e.get("files")
        if not isinstance(files, str) or not files:
            raise ValueError(f"{where}: 'files' must be a file glob")
        if ("mode" in e) == ("start" in e):
            raise ValueError(f"{where}: give either mode ({', '.join(MODES)}) or start")
        spec = (parse_spec(str(e["mode"]), where) if "mode" in e
                else ("start", compile_user(str(e["start"]), f"{where} start")))
        rules.append((re.compile(fnmatch.translate(files)), spec))
    return rules


class Joiner:
    """Groups one file's packets; see the module's docstring."""

    def __init__(self, spec: tuple[str, Any], timeout: float, max_bytes: int,
                 max_lines: int) -> None:
        self.mode, pattern = spec
        self.starts = pattern.search if self.mode == "start" else None
        self.cont = _CONTINUE[self.mode].match if self.mode in _CONTINUE else None
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_lines = max_lines
        # stream (severity) -> [first packet, [messages], bytes, start offset or None, last time,
        #                       python state]
        self.groups: dict[int, list] = {}
        self.limited = 0  # groups sent at a size limit

    @property
    def pending(self) -> bool:
        return bool(self.groups)

    def pending_start(self) -> int | None:
        """The offset of the oldest pending group's first line (None: unknown)."""
        starts = [g[3] for g in self.groups.values()]
        return None if None in starts else min(starts)

    def due(self, now: float) -> bool:
        return any(now - g[4] >= self.timeout for g in self.groups.values())

    def reset(self) -> None:
        self.groups.clear()

    def flush(self) -> list[Packet]:
        out = [_joined(g) for g in self.groups.values()]
        self.groups.clear()
        return out

    def feed(self, packets: list[Packet], lines: list[bytes] | None, base: int) -> list[Packet]:
        """The complete groups among the pending ones and ``packets``. ``lines``
        are the file lines the packets were parsed from, one per packet, when
        that holds (else None), and ``base`` the offset of the first."""
        if lines is not None:
            offsets = list(accumulate((len(x) + 1 for x in lines), initial=base))
        out: list[Packet] = []
        groups = self.groups
        now = time.monotonic()
        cont, starts, python = self.cont, self.starts, self.mode == "python"
        max_bytes, max_lines = self.max_bytes, self.max_lines
        for i, (p, msg) in enumerate(zip(packets, message_bytes(packets), strict=True)):
            key = p.severity
            g = groups.get(key)
            if g is not None:
                if cont is not None:
                    joins = cont(msg) is not None
                elif starts is not None:
                    joins = starts(msg) is None
                else:
                    joins = _python_continues(g, msg)
                if joins and (g[2] + len(msg) + 1 > max_bytes or len(g[1]) >= max_lines):
                    self.limited += 1
                    joins = False
                if joins:
                    g[1].append(msg)
                    g[2] += len(msg) + 1
                    g[4] = now
                    continue
                out.append(_joined(g))
            groups[key] = [p, [msg], len(msg), offsets[i] if lines is not None else None, now,
                           _python_start(msg) if python else 0]
        return out


def _python_start(msg: bytes) -> int:
    # 0: a plain line; 1: inside a traceback; 2: its exception line was seen
    return 1 if _PY_TRACEBACK.match(msg) else 0


def _python_continues(g: list, msg: bytes) -> bool:
    state = g[5]
    if _PY_TRACEBACK.match(msg):
        g[5] = 1
        return True
    if msg[:1] in (b" ", b"\t"):
        return True
    if state == 1:
        if not msg:
            return True
        if _PY_EXCEPTION.match(msg):
            g[5] = 2
            return True
        return False
    return state == 2 and not msg


def _joined(g: list) -> Packet:
    first, msgs = g[0], g[1]
    if len(msgs) == 1:
        return first
    p = Packet(first.severity, first.facility, first.hostname, first.tag, first.time,
               b"\n".join(msgs).decode("utf-8", "surrogateescape"), first.procid, first.msgid,
               first.sd)
    return p


class Rules:
    """Which files are joined how: the TOML rules by file glob, else a spec
    the input gives (a pod's annotation)."""

    def __init__(self, rt: Any) -> None:
        cfg = rt.config
        self.rules = check_rules(cfg.multiline)
        self.timeout = cfg.multiline_timeout
        self.max_bytes = cfg.multiline_max_bytes
        self.max_lines = cfg.multiline_max_lines

    def joiner(self, path: str, annotation: str | None = None) -> Joiner | None:
        """A Joiner for ``path`` (None: lines pass as they are); ValueError
        for an annotation that names no mode."""
        spec = next((s for pattern, s in self.rules if pattern.match(path)), None)
        if spec is None and annotation:
            spec = parse_spec(annotation, ANNOTATION)
        if spec is None:
            return None
        return Joiner(spec, self.timeout, self.max_bytes, self.max_lines)
