"""The Packet: the unit every input produces and every drain consumes.

Its fields are those of the original logtrain's packet plus the rest of an
RFC5424 header (PROCID, MSGID, STRUCTURED-DATA) and, for a well-formed RFC5424
frame, the frame itself: what the sender wrote is what leaves. ``time`` is kept
as the string the sender wrote, so that relaying a line never parses and
re-formats its timestamp.
"""

from __future__ import annotations

import codecs
import json
import re
from datetime import UTC, datetime

from logtrain.sd import sd_end

# How message bytes that are not UTF-8 (RFC5424 MSG-ANY) live in a str: each
# such byte 0xXX becomes the lone surrogate U+DCXX (PEP 383), so nothing is lost,
# JSON writes it as the escape \\udcXX, and syslog formatting writes the byte back.
MSG_ERRORS = "surrogateescape"


def _encode_error(e: UnicodeError) -> tuple[bytes | str, int]:
    """Encoding a field for the wire: surrogates made by MSG_ERRORS become their
    byte again; any other character UTF-8 cannot carry (a lone surrogate from
    JSON) becomes '?'."""
    if not isinstance(e, UnicodeEncodeError):
        raise e
    s = e.object[e.start:e.end]
    return bytes(ord(c) - 0xDC00 if 0xDC80 <= ord(c) <= 0xDCFF else 63 for c in s), e.end


WIRE_ERRORS = "logtrain.wire"
codecs.register_error(WIRE_ERRORS, _encode_error)


class Packet:
    """One log line. ``procid``, ``msgid`` and ``sd`` (the STRUCTURED-DATA as
    its sender wrote it) are "" for RFC5424's NILVALUE. ``raw`` is the RFC5424
    frame as received when its header is well-formed, else None: syslog drains
    write it back as it is. Whoever changes a field of a packet other than
    ``message`` calls ``changed()`` first, so that the change is formatted. ``message`` is decoded from ``raw``
    (from ``msg_at``) only when something reads it: a relay never does."""

    __slots__ = ("severity", "facility", "hostname", "tag", "time", "_message", "procid",
                 "msgid", "sd", "raw", "msg_at")

    def __init__(
        self,
        severity: int,
        facility: int,
        hostname: str,
        tag: str,
        time: str,
        message: str | None,
        procid: str = "",
        msgid: str = "",
        sd: str = "",
        raw: bytes | None = None,
        msg_at: int = 0,
    ) -> None:
        self.severity = severity
        self.facility = facility
        self.hostname = hostname
        self.tag = tag
        self.time = time
        self._message = message
        self.procid = procid
        self.msgid = msgid
        self.sd = sd
        self.raw = raw
        self.msg_at = msg_at

    @property
    def message(self) -> str:
        m = self._message
        if m is None:
            m = self._message = self.raw[self.msg_at:].decode("utf-8", MSG_ERRORS)
        return m

    @message.setter
    def message(self, value: str) -> None:
        self._message = value
        self.raw = None

    def changed(self) -> None:
        """Drops the frame (the message decoded first): a field is about to
        change, and syslog drains must format the packet from its fields."""
        if self.raw is not None:
            self._message = self.message
            self.raw = None

    def to_dict(self) -> dict:
        """The JSON form: the original's six fields, then procid, msgid and
        structured_data only when the sender gave them."""
        d = {
            "severity": self.severity,
            "facility": self.facility,
            "hostname": self.hostname,
            "tag": self.tag,
            "time": self.time,
            "message": self.message,
        }
        if self.procid:
            d["procid"] = self.procid
        if self.msgid:
            d["msgid"] = self.msgid
        if self.sd:
            d["structured_data"] = self.sd
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Packet) and self.to_dict() == other.to_dict() \
            and self.raw == other.raw

    def __repr__(self) -> str:
        return f"Packet({self.to_dict()!r}, raw={self.raw!r})"


def now_rfc3339() -> str:
    """The current time as RFC3339 with microseconds in UTC, as packets carry it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# Field ranges are checked by the pattern itself: strptime per line cost more
# than the rest of parsing together.
# ASCII digits only: in a str pattern \d would take any script's digits.
_RFC3339 = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:"
    r"(?:[0-5][0-9]|60)(?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_is_rfc3339 = _RFC3339.fullmatch


def is_rfc3339(value: str) -> bool:
    return _is_rfc3339(value) is not None


def packet_from_json(obj: object) -> Packet:
    """Builds a packet from its JSON form; raises ValueError naming the bad field.

    As the original: hostname, tag and message are required strings, severity and
    facility default to 0, time defaults to now. ``procid`` (at most 128) and
    ``msgid`` (at most 32 printable ASCII characters) and ``structured_data``
    (RFC5424 STRUCTURED-DATA text) are optional.
    """
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    out = {}
    for name in ("hostname", "tag", "message"):
        v = obj.get(name)
        if not isinstance(v, str):
            raise ValueError(f"field {name!r} must be a string")
        out[name] = v
    sev = obj.get("severity", 0)
    fac = obj.get("facility", 0)
    if isinstance(sev, bool) or not isinstance(sev, int) or not 0 <= sev <= 7:
        raise ValueError("field 'severity' must be an integer 0-7")
    if isinstance(fac, bool) or not isinstance(fac, int) or not 0 <= fac <= 23:
        raise ValueError("field 'facility' must be an integer 0-23")
    t = obj.get("time")
    if t is None:
        t = now_rfc3339()
    elif not isinstance(t, str) or not is_rfc3339(t):
        raise ValueError("field 'time' must be an RFC3339 timestamp")
    extra = []
    for name, limit in (("procid", 128), ("msgid", 32)):
        v = obj.get(name, "")
        if not isinstance(v, str) or len(v) > limit or not _printable_ascii(v):
            raise ValueError(f"field {name!r} must be at most {limit} printable ASCII characters")
        extra.append(v)
    sd = obj.get("structured_data", "")
    wire = sd.encode("utf-8", "surrogatepass") if isinstance(sd, str) else None
    # whole: a syslog drain writes it between MSGID and MSG as it is
    if wire is None or (wire and sd_end(wire) != len(wire)):
        raise ValueError("field 'structured_data' must be RFC5424 STRUCTURED-DATA")
    if sd == "-":
        sd = ""
    return Packet(sev, fac, out["hostname"], out["tag"], t, out["message"], extra[0], extra[1], sd)


def _printable_ascii(v: str) -> bool:
    return v.isascii() and (not v or (v.isprintable() and " " not in v))
