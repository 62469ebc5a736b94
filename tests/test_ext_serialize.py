"""Batch serialization (ext/serialize.pyx) against its Python reference, and
JSON that the standard library's parser accepts for every string."""

from __future__ import annotations

import json

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


@settings(max_examples=300, deadline=None)
@given(st.lists(packets, max_size=6), any_text)
def test_es_bulk_matches_the_reference_and_parses_back(batch, index):
    body = serialize.es_bulk(batch, index)
    assert body == serialize.es_bulk_py(batch, index)
    lines = body.decode("utf-8").split("\n")
    assert len(lines) == 2 * len(batch) + 1 and lines[-1] == ""
    for i, p in enumerate(batch):
        assert json.loads(lines[2 * i]) == {"index": {"_index": same_text(index)}}
        doc = json.loads(lines[2 * i + 1])
        assert doc["@timestamp"] == same_text(p.time)
        assert doc["message"] == same_text(p.message)
        assert (doc["severity"], doc["facility"]) == (p.severity, p.facility)


def test_logplex_body_is_read_by_the_framer():
    batch = [Packet(6, 1, "web-1", "app", "2026-11-24T00:00:00Z", f"line {i}\nmore") for i in range(5)]
    body = serialize.logplex(batch)
    assert body == serialize.logplex_py(batch)
    frames = Framer().feed(body)
    assert [parse(f).message for f in frames] == [p.message for p in batch]
