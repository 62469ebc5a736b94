"""Structured logs: container lines that are JSON objects.

``Structured.apply`` runs once per batch of a container log (the Kubernetes
input, STRUCTURED_LOGS=true): one pass of bytes.find over the batch's
frames joined finds the messages that start with ``{``; only those are
parsed (the json module's C scanner). From an object:

* severity from ``level``, ``severity``, ``levelname`` or ``lvl``: a syslog or
  common logger name (trace/debug 7, info 6, notice 5, warn/warning 4,
  error/err 3, crit/critical/fatal 2, alert 1, emerg/panic 0, any case) or a
  number (0-7 as syslog; 10-60 as pino/bunyan: 10 trace ... 60 fatal);
* with STRUCTURED_MESSAGE=extract, the message from ``msg``, ``message`` or
  ``event`` (structlog);
  by default (``keep``) every drain gets the line as it was.

For the Elasticsearch drain, ``es_fields(packet, key)`` (one packet) and
``es_fields_batch(packets, key)`` (a batch) give the fields a JSON line adds
to the document the drain builds (``@timestamp``, hostname, tag, message,
severity, ...): the object under ``key`` (STRUCTURED_FIELDS_KEY), or, with an
empty key, its fields merged at the top level, less those the document has of
its own (the packet's fields win a clash). A line that is not a JSON object
adds nothing ({}).
"""

from __future__ import annotations

import json
from itertools import accumulate
from operator import attrgetter
from typing import Any

from logtrain.transform.regex import message_bytes

LEVEL_KEYS = ("level", "severity", "levelname", "lvl")
MESSAGE_KEYS = ("msg", "message", "event")  # event: structlog
LEVELS = {
    "trace": 7, "debug": 7, "dbg": 7, "info": 6, "information": 6, "informational": 6,
    "notice": 5, "warn": 4, "warning": 4, "error": 3, "err": 3, "crit": 2, "critical": 2,
    "fatal": 2, "alert": 1, "emerg": 0, "emergency": 0, "panic": 0,
}


def severity_of(obj: dict) -> int | None:
    """The syslog severity an object's level key names, or None."""
    for k in LEVEL_KEYS:
        v = obj.get(k)
        if v is None:
            continue
        if isinstance(v, str):
            s = LEVELS.get(v.strip().lower())
            if s is not None:
                return s
            if v.strip().isdigit():
                v = int(v.strip())
        if isinstance(v, int) and not isinstance(v, bool):
            if 0 <= v <= 7:
                return v
            if 10 <= v <= 60:  # pino / bunyan
                return {10: 7, 20: 7, 30: 6, 40: 4, 50: 3, 60: 2}.get(v // 10 * 10)
    return None


_RAW = attrgetter("raw")


def _objects(packets: list) -> list[tuple[int, dict]]:
    """(index, object) of the packets whose message is a JSON object. The
    frames of the batch (a container line's packet carries one) are joined
    and searched for ``- - - {`` (the empty PROCID, MSGID and SD a container
    line's frame has, then the message) with bytes.find, at memchr speed;
    only the messages found go through json.loads. Packets without a frame
    are searched by their messages joined, ``{`` at a line start."""
    try:
        joined = b"\n".join(map(_RAW, packets))
    except TypeError:  # a packet without a frame
        return _objects_of(message_bytes(packets))
    find = joined.find
    at = find(b" - - - {")
    if at < 0:
        return []
    if joined.count(b"\n") != len(packets) - 1:  # a frame holding a newline
        return _objects_of(message_bytes(packets))
    out = []
    i = prev = 0
    count = joined.count
    while at >= 0:
        i += count(b"\n", prev, at)  # the frame ``at`` is in: newlines before it
        p = packets[i]
        line_end = find(b"\n", at)
        start = line_end - len(p.raw) if line_end >= 0 else len(joined) - len(p.raw)
        if at + 7 == start + p.msg_at:
            obj = _load(p.raw[p.msg_at:])
            if obj is not None:
                out.append((i, obj))
        if line_end < 0:
            break
        prev = line_end
        at = find(b" - - - {", line_end)
    return out


def _objects_of(msgs: list[bytes]) -> list[tuple[int, dict]]:
    joined = b"\n".join(msgs)
    find = joined.find
    at = 0 if joined[:1] == b"{" else find(b"\n{") + 1
    if at <= 0 and joined[:1] != b"{":
        return []
    first = {s: i for i, s in enumerate(accumulate((len(m) + 1 for m in msgs), initial=0))}
    out = []
    while True:
        i = first.get(at)  # None: a later line of a joined multiline message
        if i is not None:
            obj = _load(msgs[i])
            if obj is not None:
                out.append((i, obj))
        at = find(b"\n{", at) + 1
        if at <= 0:
            return out


_decode = json.JSONDecoder().decode  # json.loads on bytes first guesses the encoding


def _load(msg: bytes) -> dict | None:
    try:
        obj = _decode(msg.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


class Structured:
    """Severity (and optionally message) from JSON lines, per batch."""

    def __init__(self, extract_message: bool, count: Any = None) -> None:
        self.extract = extract_message
        self.count = count  # count(n): JSON lines seen in a batch

    def apply(self, packets: list) -> list:
        found = _objects(packets)
        if not found:
            return packets
        for i, obj in found:
            p = packets[i]
            sev = severity_of(obj)
            if sev is not None and sev != p.severity:
                raw = p.raw
                if raw is not None and raw[:1] == b"<" and not self.extract:
                    # only PRI changes: the frame is rewritten there and kept,
                    # so syslog drains still copy it (formatting cost 3x more)
                    end = raw.index(b">")
                    head = b"<%d" % (p.facility * 8 + sev)
                    p.raw = head + raw[end:]
                    p.msg_at += len(head) - end
                else:
                    p.changed()
                p.severity = sev
            if self.extract:
                msg = next((obj[k] for k in MESSAGE_KEYS if isinstance(obj.get(k), str)), None)
                if msg is not None:
                    p.message = msg
        if self.count is not None:
            self.count(len(found))
        return packets


# the fields the Elasticsearch drain's document has of its own (logtrain.serialize.es_bulk)
ES_OWN = frozenset(("@timestamp", "hostname", "tag", "message", "severity", "facility",
                    "procid", "msgid", "structured_data"))


def _extra(obj: dict | None, key: str) -> dict:
    if not obj:
        return {}
    if key:
        return {key: obj}
    return {k: v for k, v in obj.items() if k not in ES_OWN}


def es_fields(packet: Any, key: str = "") -> dict:
    """The fields a JSON line adds to its Elasticsearch document: the object
    under ``key`` (STRUCTURED_FIELDS_KEY), or, when ``key`` is empty, its
    fields merged at the top level less those the document has of its own
    (ES_OWN: the packet's fields win). {} for a line that is not a JSON
    object. The drain adds them to the document it builds for the packet."""
    found = _objects([packet])
    return _extra(found[0][1] if found else None, key)


def es_fields_batch(packets: list, key: str = "") -> list[dict]:
    """``es_fields`` of each packet of a batch, with one detection pass."""
    objs = dict(_objects(packets))
    return [_extra(objs.get(i), key) for i in range(len(packets))]
