"""Batch serialization (ext/serialize.pyx) against its Python reference, and
JSON that the standard library's parser accepts for every string."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from logtrain import serialize
from logtrain.packet import Packet
from logtrain.syslog import Framer, parse

any_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF,
                                          blacklist_categories=()), max_size=80)
packets = st.builds(Packet, st.integers(0, 7), st.integers(0, 23), any_text, any_text, any_text,
                    any_text)


def same_text(s: str) -> str:
    """What a JSON parser gives back for ``s``: two separate surrogates that form a
    pair come back as the one character they encode."""
    return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def test_the_compiled_module_is_in_use():
    assert serialize.ndjson is not serialize.ndjson_py


@settings(max_examples=2000, deadline=None)
@given(any_text)
def test_json_string_round_trips_every_string(s):
    out = serialize.json_string(s)
    assert out == serialize.json_string_py(s)
    out.encode("utf-8")  # never a lone surrogate in the output
    assert json.loads(out) == same_text(s)


def test_json_escapes():
    s = "\"\\/\b\f\n\r\t\x00\x1f\x7f\u2028é\ud800\U0001F600"
    assert serialize.json_string(s) == (
        '"\\"\\\\/\\b\\f\\n\\r\\t\\u0000\\u001f\x7f\u2028é\\ud800\U0001F600"')


@settings(max_examples=500, deadline=None)
@given(st.lists(packets, max_size=8))
def test_ndjson_matches_the_reference_and_parses_back(batch):
    body = serialize.ndjson(batch)
    assert body == serialize.ndjson_py(batch)
    lines = body.decode("utf-8").split("\n")
    assert lines[-1] == ""
    for p, line in zip(batch, lines, strict=False):
        d = json.loads(line)
        assert list(d) == ["severity", "facility", "hostname", "tag", "time", "message"]
        assert d == {k: same_text(v) if isinstance(v, str) else v for k, v in p.to_dict().items()}
    assert serialize.packet_jsons(batch) == [line.encode() for line in lines[:-1]]


def test_packet_json_is_the_originals_form():
    p = Packet(6, 1, "web-1", "api", "2026-11-24T04:10:31.776901Z", "hello")
    assert serialize.packet_json(p) == p.to_json().encode()


times = st.one_of(any_text, st.from_regex(
    r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,11})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})\Z"))
es_packets = st.builds(Packet, st.integers(0, 7), st.integers(0, 23), any_text, any_text, times,
                       any_text, any_text, any_text, any_text)


@settings(max_examples=300, deadline=None)
@given(st.lists(es_packets, max_size=6), any_text, st.booleans(), st.booleans())
def test_es_bulk_matches_the_reference_and_parses_back(batch, index, daily, by_host):
    args = ("" if by_host else index, "logs-", "-default", daily, "2026.01.02")
    body = serialize.es_bulk(batch, *args)
    assert body == serialize.es_bulk_py(batch, *args)
    lines = body.decode("utf-8").split("\n")
    assert len(lines) == 2 * len(batch) + 1 and lines[-1] == ""
    ids = set()
    for i, p in enumerate(batch):
        action = json.loads(lines[2 * i])
        assert list(action) == ["create"] and list(action["create"]) == ["_index", "_id"]
        name = same_text(args[0] or "logs-" + p.hostname.lower() + "-default")
        if daily:
            name += "-" + (serialize.es_time(p.time) or ("", "2026.01.02"))[1]
        assert action["create"]["_index"] == name
        ids.add(action["create"]["_id"])
        doc = json.loads(lines[2 * i + 1])
        assert doc["@timestamp"] == same_text((serialize.es_time(p.time) or (p.time,))[0])
        assert doc["message"] == same_text(p.message)
        assert (doc["severity"], doc["facility"]) == (p.severity, p.facility)
    assert len(ids) == len(batch)  # a repeated line gets its own id, -1, -2...
    assert serialize.es_bulk(batch, *args) == body  # the same ids every time


@settings(max_examples=2000, deadline=None)
@given(times)
def test_es_time_matches_the_reference(t):
    assert serialize.es_time(t) == serialize.es_time_py(t)


@settings(max_examples=2000, deadline=None)
@given(st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30)),
       st.integers(-23 * 60 - 59, 23 * 60 + 59), st.integers(0, 999999))
def test_es_time_is_utc_with_microseconds(local, offset, micro):
    """Against the standard library's own conversion, for every offset."""
    local = local.replace(microsecond=micro)
    sign, off = ("+" if offset >= 0 else "-"), abs(offset)
    text = local.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{sign}{off // 60:02d}:{off % 60:02d}"
    utc = local - timedelta(minutes=offset)
    assert serialize.es_time(text) == (utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                                       utc.strftime("%Y.%m.%d"))


def test_doc_ids_are_stable_and_differ():
    assert serialize.doc_id("abc") == serialize.doc_id_py("abc") == serialize.doc_id("abc")
    assert serialize.doc_id("abc") != serialize.doc_id("abd")
    assert len(serialize.doc_id("")) == 32


def test_logplex_body_is_read_by_the_framer():
    batch = [Packet(6, 1, "web-1", "app", "2026-11-24T00:00:00Z", f"line {i}\nmore") for i in range(5)]
    body = serialize.logplex(batch)
    assert body == serialize.logplex_py(batch)
    frames = Framer().feed(body)
    assert [parse(f).message for f in frames] == [p.message for p in batch]
