"""Syslog on the wire: RFC6587 framing, RFC5424/RFC3164 parsing, RFC5424 formatting.

Pure functions and one small streaming state machine. The names the agent uses
(``Framer``, ``parse``, ``parse_batch``, ``format_rfc5424``, ``format_datagrams``)
are served by the compiled ``logtrain._syslog`` (ext/syslog.pyx) when it is
built; the Python versions here (``FramerPy``, ``parse_py``, ...) are the
reference the tests compare it with on arbitrary input.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from logtrain.packet import Packet, is_rfc3339, now_rfc3339

# --------------------------------------------------------------------------- framing


class FrameErrors:
    """Counts of frames a Framer threw away, by reason."""

    __slots__ = ("oversized", "bad_length", "truncated")

    def __init__(self) -> None:
        self.oversized = 0
        self.bad_length = 0
        self.truncated = 0

    def take(self) -> dict[str, int]:
        """Returns the non-zero counts and resets them."""
        out = {k: getattr(self, k) for k in self.__slots__ if getattr(self, k)}
        self.oversized = self.bad_length = self.truncated = 0
        return out


# Where a stream can plausibly start a new frame after garbage: a newline, or an
# octet count followed by a PRI.
_RESYNC = re.compile(rb"\n|(?<![0-9])[1-9][0-9]{0,8} <[0-9]{1,3}>")
_MAX_DIGITS = 9


class FramerPy:
    """Splits a byte stream into syslog frames, across arbitrary read boundaries.

    The framing is detected per frame (RFC6587): a frame that starts with a digit
    is octet-counted (``LEN SP MSG``), anything else runs to the next newline.
    Frames longer than ``max_frame`` are discarded and counted; an octet count
    that cannot be right (more than 9 digits or over ``hard_limit``) is counted
    and the stream resynchronised at the next plausible frame start, so one bad
    frame never costs the connection's other frames.
    """

    __slots__ = ("max_frame", "hard_limit", "buf", "skip", "resync", "ctx", "drop_line", "errors")

    def __init__(self, max_frame: int = 65536, hard_limit: int | None = None) -> None:
        self.max_frame = max_frame
        self.hard_limit = hard_limit or max(16 * max_frame, 1 << 20)
        self.buf = b""
        self.skip = 0  # bytes still to discard of an oversized octet-counted frame
        self.resync = False  # discarding up to the next plausible frame start
        self.ctx = 0  # leading bytes of buf kept only as look-behind for the resync search
        self.drop_line = False  # discarding an over-long line up to its newline
        self.errors = FrameErrors()

    def feed(self, data: bytes) -> list[bytes]:
        buf = self.buf + data if self.buf else data
        n = len(buf)
        pos = 0
        frames: list[bytes] = []
        max_frame = self.max_frame
        while pos < n:
            if self.skip:
                take = min(self.skip, n - pos)
                pos += take
                self.skip -= take
                continue
            if self.drop_line:
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    pos = n
                    break
                pos = nl + 1
                self.drop_line = False
                continue
            if self.resync:
                start = pos + self.ctx
                self.ctx = 0
                m = _RESYNC.search(buf, start) if start < n else None
                if m is None:
                    # Keep a short tail (a count split across reads must still be
                    # seen) and one byte before it for the look-behind.
                    start = max(start, n - 15)
                    pos, self.ctx = (start - 1, 1) if start > 0 else (0, 0)
                    break
                pos = m.end() if m.group() == b"\n" else m.start()
                self.resync = False
                continue
            c = buf[pos]
            if c == 10 or c == 13 or c == 32 or c == 0:
                pos += 1  # stray separators between frames
                continue
            if 48 <= c <= 57:
                sp = buf.find(b" ", pos, pos + _MAX_DIGITS + 2)
                if sp < 0:
                    if n - pos > _MAX_DIGITS + 1:
                        self.errors.bad_length += 1
                        self.resync = True
                        pos += 1
                        continue
                    break  # the count is not complete yet
                digits = buf[pos:sp]
                if digits.isdigit():
                    length = int(digits)
                    start = sp + 1
                    if length == 0 or length > self.hard_limit:
                        self.errors.bad_length += 1
                        self.resync = True
                        pos = start
                        continue
                    if length > max_frame:
                        self.errors.oversized += 1
                        self.skip = length
                        pos = start
                        continue
                    if n - start < length:
                        break  # wait for the rest of the frame
                    frames.append(buf[start : start + length])
                    pos = start + length
                    continue
                # digits then something else: not a count, so newline framing
            nl = buf.find(b"\n", pos)
            if nl < 0:
                if n - pos > max_frame:
                    # Too long already: drop the line up to its newline, wherever
                    # the reads happen to cut it.
                    self.errors.oversized += 1
                    self.drop_line = True
                    pos = n
                break
            if nl - pos > max_frame:
                self.errors.oversized += 1
            else:
                end = nl - 1 if nl > pos and buf[nl - 1] == 13 else nl
                frames.append(buf[pos:end])
            pos = nl + 1
        if self.resync and not self.ctx and 0 < pos == n:
            pos, self.ctx = n - 1, 1  # the look-behind byte for the next read
        self.buf = buf[pos:] if pos < n else b""
        return frames

    def finish(self) -> list[bytes]:
        """At end of stream: a last newline-framed frame without its newline is
        still a frame; a partial octet-counted frame is counted as truncated."""
        buf, self.buf = self.buf, b""
        if self.skip:
            self.skip = 0
            return []
        if self.resync or self.drop_line or not buf.strip():
            return []
        if buf[:1].isdigit() and buf.split(b" ", 1)[0].isdigit():
            self.errors.truncated += 1
            return []
        return [buf.rstrip(b"\r")]


# --------------------------------------------------------------------------- parsing

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"]
    )
}
_TAG = re.compile(rb"([^\s\[\]:]{1,48})(?:\[[^\]\s]*\])?:? ?")
_BOM = b"\xef\xbb\xbf"


def parse_py(frame: bytes) -> Packet:
    """Parses one RFC5424 or RFC3164 frame; raises ValueError with the reason."""
    if len(frame) < 3 or frame[0] != 60:  # '<'
        raise ValueError("no <PRI> at the start of the frame")
    end = frame.find(b">", 1, 5)
    if end < 2:
        raise ValueError("malformed <PRI>")
    pri_s = frame[1:end]
    if not pri_s.isdigit():
        raise ValueError("malformed <PRI>")
    pri = int(pri_s)
    if pri > 191:
        raise ValueError("PRI out of range")
    rest = frame[end + 1 :]
    if rest[:2] == b"1 ":
        return _parse_5424(pri, rest[2:])
    return _parse_3164(pri, rest)


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _parse_5424(pri: int, rest: bytes) -> Packet:
    parts = rest.split(b" ", 5)
    if len(parts) < 6:
        raise ValueError("RFC5424 header is incomplete")
    ts, host, app, _procid, _msgid, tail = parts
    if ts == b"-":
        t = now_rfc3339()
    else:
        t = ts.decode("ascii", "replace")
        if not is_rfc3339(t):
            raise ValueError("RFC5424 timestamp is not RFC3339")
    if len(host) > 255 or len(app) > 48:
        raise ValueError("RFC5424 HOSTNAME or APP-NAME too long")
    sd_end = _sd_end(tail)
    if sd_end < 0:
        msg = tail  # no STRUCTURED-DATA at all, as Heroku's logplex frames are
    else:
        msg = tail[sd_end + 1 :] if len(tail) > sd_end else b""
    if msg.startswith(_BOM):
        msg = msg[3:]
    return Packet(
        pri & 7,
        pri >> 3,
        "" if host == b"-" else _text(host),
        "" if app == b"-" else _text(app),
        t,
        _text(msg),
    )


def _sd_end(tail: bytes) -> int:
    """Index just past STRUCTURED-DATA at the start of ``tail``, or -1 when the
    tail does not start with a well-formed one. Senders that leave the field
    out (Heroku's logplex: ``... web.3 - State changed``) or start the message
    with something else are read leniently: the whole tail is the message."""
    n = len(tail)
    if tail[:1] == b"-":
        return 1 if n == 1 or tail[1] == 32 else -1
    if tail[:1] != b"[":
        return -1
    i = 0
    in_quotes = False
    while i < n:
        c = tail[i]
        if in_quotes:
            if c == 92:  # backslash escapes the next octet inside a PARAM-VALUE
                i += 2
                continue
            if c == 34:
                in_quotes = False
        elif c == 34:
            in_quotes = True
        elif c == 93:  # ']'
            if i + 1 < n and tail[i + 1] == 91:  # another SD-ELEMENT follows
                i += 1
                continue
            return i + 1 if i + 1 == n or tail[i + 1] == 32 else -1
        i += 1
    return -1


def _parse_3164(pri: int, rest: bytes) -> Packet:
    t, rest = _take_3164_time(rest)
    host = b""
    sp = rest.find(b" ")
    if t is not None and sp > 0:
        token = rest[:sp]
        # A token ending in ':' or holding '[' is the TAG: the sender left out HOSTNAME.
        if not token.endswith(b":") and b"[" not in token:
            host, rest = token, rest[sp + 1 :]
    m = _TAG.match(rest)
    if m and (m.group(0).endswith(b": ") or m.group(0).endswith(b":") or b"[" in m.group(0)):
        tag, msg = m.group(1), rest[m.end() :]
    else:
        tag, msg = b"", rest
    return Packet(pri & 7, pri >> 3, _text(host), _text(tag), t or now_rfc3339(), _text(msg))


def _take_3164_time(rest: bytes) -> tuple[str | None, bytes]:
    """Reads ``Mmm dd hh:mm:ss `` (or an RFC3339 stamp) at the start of ``rest``."""
    month = _MONTHS.get(rest[:3])
    if month and len(rest) >= 16 and rest[3] == 32 and rest[15:16] in (b" ", b""):
        try:
            day = int(rest[4:6])
            hh, mm, ss = int(rest[7:9]), int(rest[10:12]), int(rest[13:15])
            return _local_rfc3339(month, day, hh, mm, ss), rest[16:]
        except ValueError:
            return None, rest
    sp = rest.find(b" ")
    if sp > 0 and rest[:1].isdigit():
        cand = rest[:sp].decode("ascii", "replace")
        if is_rfc3339(cand):
            return cand, rest[sp + 1 :]
    return None, rest


def _local_rfc3339(month: int, day: int, hh: int, mm: int, ss: int) -> str:
    """RFC3164 stamps carry neither year nor zone: take the agent's, and last
    year's for a stamp more than a day in the future (December lines read in January)."""
    now = datetime.now()
    d = datetime(now.year, month, day, hh, mm, ss)
    if d - now > timedelta(days=1):
        d = d.replace(year=now.year - 1)
    return d.astimezone().isoformat()


# --------------------------------------------------------------------------- formatting

_PRINTABLE = frozenset(range(33, 127))


def _clean(value: str, limit: int) -> str:
    """A header field as RFC5424 allows it: printable ASCII without spaces, at
    most ``limit`` characters, ``-`` when empty."""
    if not value:
        return "-"
    if value.isascii() and value.isprintable() and " " not in value:
        return value[:limit]
    return "".join(c if ord(c) in _PRINTABLE else "_" for c in value[:limit])


def _truncate_utf8(b: bytes, limit: int) -> bytes:
    if len(b) <= limit:
        return b
    b = b[:limit]
    # Step back over a cut multi-byte sequence.
    i = len(b) - 1
    while i >= 0 and (b[i] & 0xC0) == 0x80:
        i -= 1
    if i >= 0 and b[i] >= 0xC0:
        need = 2 if b[i] < 0xE0 else 3 if b[i] < 0xF0 else 4
        if len(b) - i < need:
            b = b[:i]
    return b


def format_rfc5424_py(packets: list[Packet], octet: bool = False, max_len: int = 0) -> bytes:
    """Formats a batch into RFC5424 wire bytes, framed for a stream transport:
    newline-terminated (newlines inside a message become spaces) or, with
    ``octet``, RFC6587 octet-counted. ``max_len`` caps each message's bytes."""
    out = []
    for p in packets:
        fac = p.facility if 0 <= p.facility <= 23 else 1
        sev = p.severity if 0 <= p.severity <= 7 else 5
        msg = p.message.rstrip("\r\n")
        if not octet and "\n" in msg:
            msg = msg.replace("\n", " ")
        line = (
            f"<{fac * 8 + sev}>1 {p.time or '-'} {_clean(p.hostname, 255)} "
            f"{_clean(p.tag, 48)} - - - {msg}"
        ).encode("utf-8", "replace")
        if max_len and len(line) > max_len:
            line = _truncate_utf8(line, max_len)
        if octet:
            out.append(b"%d %s" % (len(line), line))
        else:
            out.append(line + b"\n")
    return b"".join(out)


def format_datagrams_py(packets: list[Packet], max_len: int) -> list[bytes]:
    """One unframed RFC5424 message per datagram, each at most ``max_len`` bytes."""
    out = []
    for p in packets:
        line = format_rfc5424_py([p], octet=True, max_len=max_len)
        out.append(line[line.index(b" ") + 1 :])
    return out


def parse_batch_py(frames: list[bytes]) -> tuple[list[Packet], int, str]:
    """Parses a batch: (packets, number of malformed frames, the last reason)."""
    packets = []
    bad = 0
    reason = ""
    for f in frames:
        try:
            packets.append(parse_py(f))
        except ValueError as e:
            bad += 1
            reason = str(e)
    return packets, bad, reason


try:  # the compiled versions, when setup.py has built them
    from logtrain import _syslog
except ImportError:  # pragma: no cover - running from a source tree without a build
    Framer = FramerPy
    parse = parse_py
    parse_batch = parse_batch_py
    format_rfc5424 = format_rfc5424_py
    format_datagrams = format_datagrams_py
else:
    _syslog._bind(Packet, FrameErrors, now_rfc3339, _local_rfc3339)
    Framer = _syslog.Framer  # type: ignore[misc]
    parse = _syslog.parse
    parse_batch = _syslog.parse_batch
    format_rfc5424 = _syslog.format_rfc5424
    format_datagrams = _syslog.format_datagrams
