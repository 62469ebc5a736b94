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


def es_bulk_py(packets: list[Packet], index: str) -> bytes:
    action = '{"index":{"_index":' + json_string_py(index) + "}}\n"
    return "".join(
        action
        + f'{{"@timestamp":{json_string_py(p.time)},"severity":{int(p.severity)},'
        f'"facility":{int(p.facility)},"hostname":{json_string_py(p.hostname)},'
        f'"tag":{json_string_py(p.tag)},"message":{json_string_py(p.message)}}}\n'
        for p in packets
    ).encode("utf-8")


def logplex_py(packets: list[Packet]) -> bytes:
    """An ``application/logplex-1`` body: RFC6587 octet-counted RFC5424 frames."""
    return format_rfc5424_py(packets, octet=True)


def logplex(packets: list[Packet]) -> bytes:
    return format_rfc5424(packets, octet=True)


try:  # the compiled versions, when setup.py has built them
    from logtrain._serialize import es_bulk, json_string, ndjson, packet_json, packet_jsons
except ImportError:  # pragma: no cover - running from a source tree without a build
    json_string = json_string_py
    packet_json = packet_json_py
    packet_jsons = packet_jsons_py
    ndjson = ndjson_py
    es_bulk = es_bulk_py
