"""What the sender wrote is what leaves: PROCID, MSGID, STRUCTURED-DATA, PID,
timestamps, BOM and bytes that are not UTF-8, through parse and format (the
compiled versions and their references), the packet JSON and the SD parser."""

from __future__ import annotations

import json
import string
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logtrain import serialize, syslog
from logtrain.packet import Packet, packet_from_json
from logtrain.sd import escape_param_value, parse_sd, parse_sd_py
from logtrain.syslog import (
    Framer,
    format_datagrams,
    format_datagrams_py,
    format_rfc5424,
    format_rfc5424_py,
    parse,
    parse_py,
)

ISSUE_FRAME = (b'<13>1 2026-11-24T00:00:00Z host1 app 1234 ID47 '
               b'[exampleSDID@32473 iut="3" eventSource="App"] hello')


def both_formats(packets: list[Packet], octet: bool = False) -> bytes:
    out = format_rfc5424(packets, octet)
    assert out == format_rfc5424_py(packets, octet)
    return out


@pytest.mark.parametrize("fn", [parse, parse_py])
def test_rfc5424_header_survives_a_relay(fn):
    p = fn(ISSUE_FRAME)
    assert (p.procid, p.msgid, p.sd) == ("1234", "ID47", '[exampleSDID@32473 iut="3" eventSource="App"]')
    assert both_formats([p]) == ISSUE_FRAME + b"\n"
    assert both_formats([p], octet=True) == b"%d %s" % (len(ISSUE_FRAME), ISSUE_FRAME)
    assert format_datagrams([p], 2048) == format_datagrams_py([p], 2048) == [ISSUE_FRAME]


@pytest.mark.parametrize("fn", [parse, parse_py])
def test_rfc3164_pid_becomes_procid(fn):
    p = fn(b"<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed")
    assert (p.tag, p.procid, p.message) == ("su", "123", "'su root' failed")
    line = both_formats([p])
    assert line.split(b" ")[2:6] == [b"mymachine", b"su", b"123", b"-"]
    assert line.endswith(b" - - 'su root' failed\n")


def test_timestamps_leave_as_written():
    for stamp in (b"2026-11-24T01:02:03.123456789+05:30", b"2026-11-24T01:02:03.1-00:00",
                  b"2026-11-24t01:02:03z"):
        frame = b"<13>1 " + stamp + b" h a - - - m"
        assert parse(frame).time == stamp.decode()
        assert both_formats([parse(frame)]) == frame + b"\n"
        # a packet without its frame (its message changed) keeps the stamp too
        p = parse(frame)
        p.message = "changed"
        assert both_formats([p]).split(b" ")[1] == stamp


@pytest.mark.parametrize("msg", [b"\xef\xbb\xbfcaf\xc3\xa9 BOM", b"any \xff\xfe\x00 bytes",
                                 b"\xef\xbb\xbf\xc0\xaf overlong after a BOM"])
def test_bom_and_msg_any_are_byte_identical_on_syslog_and_escaped_in_json(msg):
    frame = b'<14>1 2026-11-24T00:00:00.5Z h a 7 - [x@1 k="v"] ' + msg
    for fn in (parse, parse_py):
        p = fn(frame)
        assert both_formats([p]) == frame + b"\n"
        assert format_datagrams([p], 2048) == [frame]
        body = serialize.packet_json(p)
        assert body == serialize.packet_json_py(p)
        doc = json.loads(body)
        # the BOM is not text; other bytes that are not UTF-8 are \\udcXX escapes
        want = msg.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "surrogateescape")
        assert doc["message"] == want
        if b"\xff" in msg:
            assert b'\\udcff\\udcfe\\u0000' in body
    # the same bytes survive a packet that is formatted (its hostname changed)
    p = parse(frame)
    p.changed()
    p.hostname = "other"
    assert both_formats([p]).endswith(msg.removeprefix(b"\xef\xbb\xbf") + b"\n")


def test_packet_json_carries_the_new_fields_only_when_given():
    p = parse(ISSUE_FRAME)
    doc = json.loads(serialize.packet_json(p))
    assert list(doc) == ["severity", "facility", "hostname", "tag", "time", "message", "procid",
                         "msgid", "structured_data"]
    assert doc["structured_data"] == p.sd and doc["procid"] == "1234"
    plain = json.loads(serialize.packet_json(parse(b"<13>1 2026-11-24T00:00:00Z h a - - - m")))
    assert list(plain) == ["severity", "facility", "hostname", "tag", "time", "message"]
    back = packet_from_json(doc)
    assert back.to_dict() == p.to_dict() and back.raw is None
    assert both_formats([back]) == ISSUE_FRAME + b"\n"


@pytest.mark.parametrize("field,value", [("procid", "a b"), ("procid", "p" * 129), ("msgid", "m" * 33),
                                         ("msgid", 5), ("structured_data", "[x"),
                                         ("structured_data", '[a b="c"] m')])
def test_packet_json_rejects_bad_header_fields(field, value):
    obj = {"hostname": "h", "tag": "t", "message": "m", field: value}
    with pytest.raises(ValueError, match=field):
        packet_from_json(obj)


@pytest.mark.parametrize("frame", [
    b"<013>1 2026-11-24T00:00:00Z h a - - - leading zero",
    b"<13>1 2026-11-24T00:00:00Z h a web.3 - no structured data",
    b"<13>1 2026-11-24T00:00:00Z h\xc3\xa9 a - - - not ASCII",
    b"<13>1 2026-11-24T00:00:00Z h a " + b"p" * 129 + b" - - long procid",
])
def test_frames_that_are_not_rfc5424_are_formatted_not_copied(frame):
    for fn in (parse, parse_py):
        p = fn(frame)
        assert p.raw is None
        again = fn(both_formats([p])[:-1])
        assert again.raw is not None  # what leaves is well-formed
        # (a HOSTNAME that is not ASCII is written with '_' for what RFC5424 forbids)
        assert (again.tag, again.procid[:128], again.message) == (p.tag, p.procid[:128], p.message)


# ----------------------------------------------------------------------------- round trips

names = st.text(alphabet=[c for c in string.printable[:94] if c not in '= ]"'], min_size=1, max_size=32)
values = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
                 max_size=20) | st.sampled_from(
    ["\\", '"', "]", '\\"', "\\]", "a\\b"])
elements = st.tuples(names, st.lists(st.tuples(names, values), max_size=3))
header = st.text(alphabet=string.printable[:94], min_size=1, max_size=128).filter(lambda s: s != "-")


def sd_text(elems: list[tuple[str, list[tuple[str, str]]]]) -> str:
    return "".join("[" + i + "".join(f' {k}="{escape_param_value(v)}"' for k, v in ps) + "]"
                   for i, ps in elems)


def expected_fields(elems) -> dict:
    out: dict = {}
    for i, ps in elems:
        d = out.setdefault(i, {})
        for k, v in ps:
            if k not in d:
                d[k] = v
            elif isinstance(d[k], list):
                d[k].append(v)
            else:
                d[k] = [d[k], v]
    return out


@settings(max_examples=300, deadline=None)
@given(header, header.map(lambda s: s[:32]), st.lists(elements, max_size=3),
       st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
               max_size=80).filter(lambda m: not m.startswith("\ufeff")), st.booleans())
def test_any_header_round_trips_and_is_then_copied_byte_for_byte(procid, msgid, elems, msg, octet):
    sd = sd_text(elems)
    p = Packet(5, 1, "host", "app", "2026-11-24T00:00:00.001+01:00", msg, procid, msgid, sd)
    data = both_formats([p], octet)
    frame = Framer(max_frame=1 << 20).feed(data)[0]
    for fn in (parse, parse_py):
        q = fn(frame)
        assert (q.procid, q.msgid, q.sd, q.message) == (procid, msgid, sd, msg)
        assert q.raw == frame
        assert both_formats([q], octet) == data
        assert parse_sd(q.sd) == parse_sd_py(q.sd) == expected_fields(elems)


any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=60)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.builds(Packet, st.integers(0, 7), st.integers(0, 23), any_text, any_text,
                          st.just("2026-11-24T00:00:00Z"), any_text, any_text, any_text,
                          st.sampled_from(["", "[a]", '[a b="\n"]'])), max_size=6),
       st.booleans(), st.sampled_from([0, 64, 2048]))
def test_compiled_formatter_matches_the_reference_with_every_field(batch, octet, max_len):
    assert format_rfc5424(batch, octet, max_len) == format_rfc5424_py(batch, octet, max_len)
    if max_len:
        assert format_datagrams(batch, max_len) == format_datagrams_py(batch, max_len)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(['[', ']', ' ', '="', '"', '\\', 'a', 'id@1', '=', 'é', '\x00']),
                max_size=20).map("".join))
def test_compiled_sd_parser_matches_the_reference(sd):
    outcome = []
    for fn in (parse_sd, parse_sd_py):
        try:
            outcome.append(fn(sd))
        except ValueError as e:
            outcome.append(str(e))
    assert outcome[0] == outcome[1]


def test_sd_parser_examples():
    assert parse_sd('[exampleSDID@32473 iut="3" eventSource="Appl\\]ication" eventID="1011"]'
                    '[examplePriority@32473 class="high"]') == {
        "exampleSDID@32473": {"iut": "3", "eventSource": "Appl]ication", "eventID": "1011"},
        "examplePriority@32473": {"class": "high"}}
    assert parse_sd('[a x="1" x="2"][a x="3" y="\\\\\\"\\n"]') == {
        "a": {"x": ["1", "2", "3"], "y": '\\"\\n'}}
    assert parse_sd("-") == parse_sd("") == {}
    for bad in ("[", "[a", '[a b="c]', "[a b=c]", "[]", "x", '[a b="c"] '):
        with pytest.raises(ValueError, match="STRUCTURED-DATA"):
            parse_sd(bad)


# ----------------------------------------------------------------------------- RFC3164 year

def test_rfc3164_year_is_the_nearest_across_new_year():
    tz = timezone(timedelta(hours=0))
    jan1 = datetime(2027, 1, 1, 0, 5, tzinfo=tz)
    assert syslog._local_rfc3339(12, 31, 23, 59, 58, jan1).startswith("2026-12-31T23:59:58")
    dec31 = datetime(2026, 12, 31, 23, 59, tzinfo=tz)
    assert syslog._local_rfc3339(1, 1, 0, 0, 1, dec31).startswith("2027-01-01T00:00:01")
    assert syslog._local_rfc3339(6, 1, 0, 0, 0, dec31).startswith("2026-06-01")
    assert syslog._local_rfc3339(2, 29, 0, 0, 0, datetime(2028, 3, 1, tzinfo=tz)).startswith("2028-02-29")
    with pytest.raises(ValueError):
        syslog._local_rfc3339(2, 29, 0, 0, 0, dec31)  # no leap year from 2025 to 2027
