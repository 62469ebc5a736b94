"""Tailing building blocks: inotify, line splitting of read chunks, and
container log lines (Docker json-file and CRI) parsed into packets in batches.

The names the file inputs use are served by the compiled ``logtrain._tail``
(ext/tail.pyx): ``Inotify`` (the Linux system calls, no Python inotify
package), ``LineSplitter``, ``CRIParser`` and ``DockerParser``. The ``Py``
classes here are the reference the tests compare them with.

Both container formats split long lines: CRI marks a piece ``P`` (partial) and
the last one ``F``; Docker's json-file leaves the trailing newline off every
piece but the last. The parsers join the pieces of each stream (stdout and
stderr separately) into one packet, up to ``max_join`` bytes; a joined line
that grows beyond it is emitted as it is and the rest follows as new packets.
"""

from __future__ import annotations

import json

from logtrain.packet import Packet, is_rfc3339
from logtrain.syslog import format_rfc5424

SEVERITY = {b"stdout": 6, b"stderr": 3}  # info, err
FACILITY = 1  # user
MAX_JOIN = 1 << 20


class LineSplitterPy:
    """Splits read chunks into lines, carrying a partial last line over.

    Lines longer than ``max_line`` are cut into ``max_line`` pieces (``cuts``
    counts the cuts), never dropped; the carried partial line never holds more
    than ``max_line`` bytes.
    """

    __slots__ = ("max_line", "buf", "cuts")

    def __init__(self, max_line: int = 65536) -> None:
        self.max_line = max_line
        self.buf = b""
        self.cuts = 0

    @property
    def pending(self) -> int:
        return len(self.buf)

    def feed(self, chunk: bytes) -> list[bytes]:
        m = self.max_line
        buf = self.buf + chunk if self.buf else chunk
        parts = buf.split(b"\n")
        rest = parts.pop()
        out = []
        for line in parts:
            while len(line) > m:
                out.append(line[:m])
                line = line[m:]
                self.cuts += 1
            out.append(line)
        while len(rest) > m:
            out.append(rest[:m])
            rest = rest[m:]
            self.cuts += 1
        self.buf = rest
        return out

    def flush(self) -> bytes | None:
        """The partial last line (at rotation or end of file), if any."""
        rest, self.buf = self.buf, b""
        return rest or None


def frame_head(hostname: str, tag: str, severity: int, facility: int) -> tuple[bytes, bytes]:
    """The RFC5424 frame of a container line around its time and message,
    ``(b"<PRI>1 ", b" HOST TAG - - - ")``, exactly as syslog drains format
    a packet: a line's packet carries its frame, and a relay writes it as is."""
    line = format_rfc5424([Packet(severity, facility, hostname, tag, "@", "")])
    at = line.index(b"@")
    return line[:at], line[at + 1:-1]


class _JoinerPy:
    """Joins the pieces of a stream's long line; shared by both formats."""

    def __init__(self, hostname: str, tag: str, max_join: int = MAX_JOIN) -> None:
        self.hostname = hostname
        self.tag = tag
        self.max_join = max_join
        self.splits = 0  # joined lines emitted at max_join, the rest to follow
        self.objects = 0  # lines whose message starts with '{' (JSON, maybe)
        self.partial: dict[bytes, tuple[str, list[bytes], int]] = {}
        self.stdout_severity = SEVERITY[b"stdout"]  # AKKERIS: 0, as the original sends lines
        self.stderr_severity = SEVERITY[b"stderr"]
        self.facility = FACILITY

    def _packet(self, stream: bytes, t: str, msg: bytes) -> Packet:
        sev = self.stdout_severity if stream == b"stdout" else self.stderr_severity
        head, mid = frame_head(self.hostname, self.tag, sev, self.facility)
        if msg[:1] == b"{":
            self.objects += 1
        raw = head + t.encode("ascii") + mid + msg
        return Packet(sev, self.facility, self.hostname, self.tag, t, None,
                      raw=raw, msg_at=len(raw) - len(msg))

    def flush(self) -> list[Packet]:
        """The pieces of joined lines whose end never came (the file ended:
        rotated, or gone), each as the packet it would have been."""
        out = [self._packet(stream, t0, b"".join(pieces))
               for stream, (t0, pieces, _) in self.partial.items()]
        self.partial.clear()
        return out

    def _piece(self, out: list[Packet], stream: bytes, t: str, msg: bytes, last: bool) -> None:
        held = self.partial.pop(stream, None)
        if held is not None:
            t0, pieces, size = held
            pieces.append(msg)
            size += len(msg)
        else:
            t0, pieces, size = t, [msg], len(msg)
        if not last and size >= self.max_join:
            self.splits += 1
        if last or size >= self.max_join:
            out.append(self._packet(stream, t0, b"".join(pieces)))
        else:
            self.partial[stream] = (t0, pieces, size)


class CRIParserPy(_JoinerPy):
    """``TIMESTAMP STREAM P|F MESSAGE`` lines (the CRI log format) into packets."""

    def parse_batch(self, lines: list[bytes]) -> tuple[list[Packet], int]:
        out: list[Packet] = []
        bad = 0
        for line in lines:
            fields = line.split(b" ", 3)
            if len(fields) < 3:
                bad += 1
                continue
            ts, stream, tags = fields[0], fields[1], fields[2]
            msg = fields[3] if len(fields) == 4 else b""
            if stream not in SEVERITY or tags[:1] not in (b"P", b"F"):
                bad += 1
                continue
            t = ts.decode("ascii", "replace")
            if not is_rfc3339(t):
                bad += 1
                continue
            self._piece(out, stream, t, msg, tags[:1] == b"F")
        return out, bad


class DockerParserPy(_JoinerPy):
    """Docker json-file lines ``{"log":"...\\n","stream":"stdout","time":"..."}``."""

    def parse_batch(self, lines: list[bytes]) -> tuple[list[Packet], int]:
        out: list[Packet] = []
        bad = 0
        for line in lines:
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):  # RecursionError: [[[[... nested deep
                bad += 1
                continue
            if not isinstance(obj, dict):
                bad += 1
                continue
            log, stream, t = obj.get("log"), obj.get("stream"), obj.get("time")
            if not (isinstance(log, str) and isinstance(stream, str) and isinstance(t, str)):
                bad += 1
                continue
            sb = stream.encode("utf-8", "replace")
            if sb not in SEVERITY or not is_rfc3339(t):
                bad += 1
                continue
            last = log.endswith("\n")
            msg = (log[:-1] if last else log).encode("utf-8", "surrogatepass")
            # a lone surrogate (a \udXXX escape UTF-8 cannot carry) becomes U+FFFD
            msg = msg.decode("utf-8", "replace").encode("utf-8")
            self._piece(out, sb, t, msg, last)
        return out, bad


try:  # the compiled versions, when setup.py has built them
    from logtrain import _tail
except ImportError:  # pragma: no cover - running from a source tree without a build
    LineSplitter = LineSplitterPy
    CRIParser = CRIParserPy
    DockerParser = DockerParserPy
else:
    _tail._bind(Packet, frame_head)
    Inotify = _tail.Inotify
    LineSplitter = _tail.LineSplitter  # type: ignore[misc]
    CRIParser = _tail.CRIParser  # type: ignore[misc]
    DockerParser = _tail.DockerParser  # type: ignore[misc]
