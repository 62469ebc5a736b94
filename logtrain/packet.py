"""The Packet: the unit every input produces and every drain consumes.

Its fields are those of the original logtrain's packet. ``time`` is kept as the
RFC3339 string it will be written as, so that relaying a line never parses and
re-formats its timestamp.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime


class Packet:
    __slots__ = ("severity", "facility", "hostname", "tag", "time", "message")

    def __init__(
        self,
        severity: int,
        facility: int,
        hostname: str,
        tag: str,
        time: str,
        message: str,
    ) -> None:
        self.severity = severity
        self.facility = facility
        self.hostname = hostname
        self.tag = tag
        self.time = time
        self.message = message

    def to_dict(self) -> dict:
        return {
            "severity": self.severity,
            "facility": self.facility,
            "hostname": self.hostname,
            "tag": self.tag,
            "time": self.time,
            "message": self.message,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Packet) and all(
            getattr(self, f) == getattr(other, f) for f in self.__slots__
        )

    def __repr__(self) -> str:
        return f"Packet({self.to_dict()!r})"


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
    facility default to 0, time defaults to now.
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
    return Packet(sev, fac, out["hostname"], out["tag"], t, out["message"])
