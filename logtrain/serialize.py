"""Batch serialization: packet JSON, NDJSON, Elasticsearch bulk and logplex
bodies.

The names the drains use are served by the compiled ``logtrain._serialize``
(ext/serialize.pyx) when it is built; the ``_py`` versions here are the
reference the tests compare it with. The standard library's json.dumps leaves
a lone surrogate in its output, which then cannot be encoded as UTF-8; here it
becomes a ``\\uDXXX`` escape, which every JSON parser accepts. That is also how
a message's bytes that are not UTF-8 (RFC5424 MSG-ANY) leave: byte 0xXX is the
escape ``\\udcXX`` (see logtrain.packet.MSG_ERRORS).
"""

from __future__ import annotations

import json
import re

from logtrain.packet import Packet
from logtrain.syslog import format_rfc5424, format_rfc5424_py

_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(m: re.Match) -> str:
    return f"\\u{ord(m.group()):04x}"


def json_string_py(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)
    return _SURROGATE.sub(_escape_surrogate, out) if _SURROGATE.search(out) else out


def _packet_py(p: Packet) -> str:
    out = (f'{{"severity":{int(p.severity)},"facility":{int(p.facility)},'
           f'"hostname":{json_string_py(p.hostname)},"tag":{json_string_py(p.tag)},'
           f'"time":{json_string_py(p.time)},"message":{json_string_py(p.message)}')
    # the optional fields only when the sender gave them: the original's six
    # fields stay exactly as they were for its consumers
    if p.procid:
        out += ',"procid":' + json_string_py(p.procid)
    if p.msgid:
        out += ',"msgid":' + json_string_py(p.msgid)
    if p.sd:
        out += ',"structured_data":' + json_string_py(p.sd)
    return out + "}"


def packet_json_py(p: Packet) -> bytes:
    return _packet_py(p).encode("utf-8")


def packet_jsons_py(packets: list[Packet]) -> list[bytes]:
    return [packet_json_py(p) for p in packets]


def ndjson_py(packets: list[Packet]) -> bytes:
    return "".join(_packet_py(p) + "\n" for p in packets).encode("utf-8")


# --- Elasticsearch bulk bodies

_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
                   r"(?:\.([0-9]{1,9}))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))")
_M64 = (1 << 64) - 1


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
    algorithm; the compiled version does the same integer arithmetic)."""
    y -= m <= 2
    era = y // 400  # floor division, in C too (Cython keeps Python semantics)
    yoe = y - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


def es_time_py(t: str) -> tuple[str, str] | None:
    """A packet's RFC3339 time as ``@timestamp`` (UTC, six fraction digits)
    and the day of daily indices (``YYYY.MM.DD``); None when it is not RFC3339
    with fields in range (the caller keeps it as written, with today's index)."""
    m = _TIME.fullmatch(t)
    if m is None:
        return None
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59 and s <= 60):
        return None
    frac = ((m.group(7) or "") + "000000")[:6]
    if m.group(8):
        oh, om = int(m.group(9)), int(m.group(10))
        if oh > 23 or om > 59:
            return None
        off = (oh * 3600 + om * 60) * (1 if m.group(8) == "+" else -1)
        if off:
            total = _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - off
            days, rest = divmod(total, 86400)
            y, mo, d = _civil_from_days(days)
            h, mi, s = rest // 3600, rest // 60 % 60, rest % 60
            if not 0 <= y <= 9999:
                return None
    return (f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}.{frac}Z",
            f"{y:04d}.{mo:02d}.{d:02d}")


def _fmix(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _M64
    return h ^ (h >> 33)


def doc_id_py(doc: str) -> str:
    """The document id, 32 hex digits: two 64-bit multiply-xorshift hashes of
    the document's code points, taken eight at a time (little-endian) when
    they are all below 256, one at a time otherwise, each finished with
    MurmurHash3's fmix64. Not cryptographic: a stable name for a line."""
    h1, h2 = 0xCBF29CE484222325, 0x84222325CBF29CE4

    def mix(w: int) -> None:
        nonlocal h1, h2
        h1 = ((h1 ^ w) * 0x100000001B3) & _M64
        h1 ^= h1 >> 29
        h2 = ((h2 ^ w) * 0x9E3779B97F4A7C15) & _M64
        h2 ^= h2 >> 31

    if all(ord(c) < 256 for c in doc):
        b = doc.encode("latin-1")
        full = len(b) - len(b) % 8
        for i in range(0, full, 8):
            mix(int.from_bytes(b[i:i + 8], "little"))
        mix(int.from_bytes(b[full:], "little"))
    else:
        for c in doc:
            mix(ord(c))
    n = len(doc)
    h1 = _fmix(h1 ^ n)
    h2 = _fmix(h2 ^ ((n * 0x9E3779B97F4A7C15) & _M64))
    return f"{h1:016x}{h2:016x}"


def es_bulk_py(packets: list[Packet], index: str, prefix: str = "", suffix: str = "",
               daily: bool = False, today: str = "") -> bytes:
    """An Elasticsearch _bulk body of ``create`` actions, one per packet.

    The index is ``index``, or when empty ``prefix + hostname (lower case) +
    suffix``, then ``-YYYY.MM.DD`` of the document's UTC day with ``daily``
    (``today`` for a time that is not RFC3339). ``_id`` is a hash of the
    document line, which holds the time and every field, so the same line
    sent again (a retried request, a file re-read after a restart) is the
    same document; a repeat of a line within the batch gets ``-N`` appended."""
    out = []
    seen: dict[str, int] = {}  # by the id's first half, as the compiled version
    for p in packets:
        parsed = es_time_py(p.time)
        ts, day = parsed if parsed is not None else (p.time, today)
        doc = (f'{{"@timestamp":{json_string_py(ts)},"hostname":{json_string_py(p.hostname)},'
               f'"tag":{json_string_py(p.tag)},"message":{json_string_py(p.message)},'
               f'"severity":{int(p.severity)},"facility":{int(p.facility)}')
        if p.procid:
            doc += ',"procid":' + json_string_py(p.procid)
        if p.msgid:
            doc += ',"msgid":' + json_string_py(p.msgid)
        if p.sd:
            doc += ',"structured_data":' + json_string_py(p.sd)
        doc += "}"
        name = index or prefix + p.hostname.lower() + suffix
        if daily:
            name += "-" + day
        ident = doc_id_py(doc)
        n = seen.get(ident[:16], 0)
        seen[ident[:16]] = n + 1
        if n:
            ident += f"-{n}"
        out.append(f'{{"create":{{"_index":{json_string_py(name)},"_id":"{ident}"}}}}\n{doc}\n')
    return "".join(out).encode("utf-8")


def logplex_py(packets: list[Packet]) -> bytes:
    """An ``application/logplex-1`` body: RFC6587 octet-counted RFC5424 frames."""
    return format_rfc5424_py(packets, octet=True)


def logplex(packets: list[Packet]) -> bytes:
    return format_rfc5424(packets, octet=True)


try:  # the compiled versions, when setup.py has built them
    from logtrain._serialize import (
        doc_id,
        es_bulk,
        es_time,
        json_string,
        ndjson,
        packet_json,
        packet_jsons,
    )
except ImportError:  # pragma: no cover - running from a source tree without a build
    json_string = json_string_py
    packet_json = packet_json_py
    packet_jsons = packet_jsons_py
    ndjson = ndjson_py
    es_bulk = es_bulk_py
    es_time = es_time_py
    doc_id = doc_id_py
