"""Syslog on the wire: RFC6587 framing, RFC5424/RFC3164 parsing, RFC5424 formatting.

Pure functions and one small streaming state machine. The names the agent uses
(``Framer``, ``parse``, ``parse_batch``, ``format_rfc5424``, ``format_datagrams``)
are served by the compiled ``logtrain._syslog`` (ext/syslog.pyx) when it is
built; the Python versions here (``FramerPy``, ``parse_py``, ...) are the
reference the tests compare it with on arbitrary input.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from logtrain.framing import FrameErrors, FramerPy
from logtrain.packet import MSG_ERRORS, WIRE_ERRORS, Packet, is_rfc3339, now_rfc3339
from logtrain.sd import sd_end

__all__ = ["FrameErrors", "FramerPy", "Framer", "parse", "parse_py", "parse_batch",
           "parse_batch_py", "format_rfc5424", "format_rfc5424_py", "format_datagrams",
           "format_datagrams_py"]

# --------------------------------------------------------------------------- parsing

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"]
    )
}
_TAG = re.compile(rb"([^\s\[\]:]{1,48})(?:\[([^\]\s]*)\])?:? ?")
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
    if frame[end + 1 : end + 3] == b"1 ":
        # A leading zero in PRI is read, but such a frame is not copied as it is.
        return _parse_5424(pri, frame, end + 3, pri_s[0] != 48 or end == 2)
    return _parse_3164(pri, frame[end + 1 :])


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _printable(b: bytes, limit: int) -> bool:
    """A header field RFC5424 allows: 1 to ``limit`` printable ASCII octets."""
    return 0 < len(b) <= limit and all(33 <= c <= 126 for c in b)


def _parse_5424(pri: int, frame: bytes, start: int, copyable: bool) -> Packet:
    parts = frame[start:].split(b" ", 5)
    if len(parts) < 6:
        raise ValueError("RFC5424 header is incomplete")
    ts, host, app, procid, msgid, tail = parts
    if ts == b"-":
        t = now_rfc3339()
    else:
        t = ts.decode("ascii", "replace")
        if not is_rfc3339(t):
            raise ValueError("RFC5424 timestamp is not RFC3339")
    if len(host) > 255 or len(app) > 48:
        raise ValueError("RFC5424 HOSTNAME or APP-NAME too long")
    tail_at = len(frame) - len(tail)
    end = sd_end(tail)
    if end < 0:
        # no STRUCTURED-DATA at all, as Heroku's logplex frames are: the whole
        # tail is the message, and the frame is re-formatted with a NILVALUE SD
        msg_at = tail_at
        sd = b""
        copyable = False
    else:
        msg_at = min(tail_at + end + 1, len(frame))
        sd = b"" if end == 1 and tail[0] == 45 else tail[:end]
    if frame.startswith(_BOM, msg_at):
        msg_at += 3
    copyable = (copyable and _printable(host, 255) and _printable(app, 48)
                and _printable(procid, 128) and _printable(msgid, 32))
    return Packet(
        pri & 7,
        pri >> 3,
        "" if host == b"-" else _text(host),
        "" if app == b"-" else _text(app),
        t,
        None if copyable else frame[msg_at:].decode("utf-8", MSG_ERRORS),
        "" if procid == b"-" else _text(procid),
        "" if msgid == b"-" else _text(msgid),
        sd.decode("utf-8", MSG_ERRORS),
        frame if copyable else None,
        msg_at if copyable else 0,
    )


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
    pid = b""
    if m and (m.group(0).endswith(b": ") or m.group(0).endswith(b":") or b"[" in m.group(0)):
        tag, pid, msg = m.group(1), m.group(2) or b"", rest[m.end() :]
    else:
        tag, msg = b"", rest
    return Packet(pri & 7, pri >> 3, _text(host), _text(tag), t or now_rfc3339(),
                  msg.decode("utf-8", MSG_ERRORS), _text(pid))


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


def _local_rfc3339(month: int, day: int, hh: int, mm: int, ss: int,
                   now: datetime | None = None) -> str:
    """An RFC3164 stamp has neither year nor zone: the zone is the agent's, and
    the year the latest of next, this and last year that does not put the stamp
    more than a day in the future (a sender's clock may run a little ahead).
    So a Dec 31 line received on Jan 1 belongs to the old year, and a Jan 1
    line received on Dec 31 to the new one. Raises ValueError for a date none
    of the three years has (Feb 30, or Feb 29 outside a leap year). The
    result is written in UTC with ``Z``, the one form of every time the agent
    writes itself."""
    now = now or datetime.now().astimezone()
    for year in (now.year + 1, now.year, now.year - 1):
        try:
            d = datetime(year, month, day, hh, mm, ss).astimezone()
        except ValueError:
            continue
        if d - now <= _AHEAD:
            return d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    raise ValueError("RFC3164 date does not exist")


_AHEAD = timedelta(days=1)


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


def _wire(p: Packet, octet: bool) -> bytes:
    """One packet's RFC5424 message: the frame it came in as when it has one
    (trailing line ends cut, and newlines made spaces for newline framing, as
    for any message), else formatted from its fields."""
    raw = p.raw
    if raw is not None:
        line = raw.rstrip(b"\r\n")
        if not octet and b"\n" in line:
            line = line.replace(b"\n", b" ")
        return line
    fac = p.facility if 0 <= p.facility <= 23 else 1
    sev = p.severity if 0 <= p.severity <= 7 else 5
    msg = p.message.rstrip("\r\n")
    if not octet and "\n" in msg:
        msg = msg.replace("\n", " ")
    sd = p.sd or "-"
    if not octet and "\n" in sd:
        sd = sd.replace("\n", " ")
    return (
        f"<{fac * 8 + sev}>1 {p.time or '-'} {_clean(p.hostname, 255)} "
        f"{_clean(p.tag, 48)} {_clean(p.procid, 128)} {_clean(p.msgid, 32)} {sd} {msg}"
    ).encode("utf-8", WIRE_ERRORS)


def format_rfc5424_py(packets: list[Packet], octet: bool = False, max_len: int = 0) -> bytes:
    """Formats a batch into RFC5424 wire bytes, framed for a stream transport:
    newline-terminated (newlines inside a message become spaces) or, with
    ``octet``, RFC6587 octet-counted. ``max_len`` caps each message's bytes."""
    out = []
    for p in packets:
        line = _wire(p, octet)
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
    _syslog._bind(Packet, now_rfc3339, _local_rfc3339)
    from logtrain._framing import Framer  # type: ignore[misc]
    parse = _syslog.parse
    parse_batch = _syslog.parse_batch
    format_rfc5424 = _syslog.format_rfc5424
    format_datagrams = _syslog.format_datagrams
