"""Framing, parsing and formatting of syslog: examples and properties."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logtrain.packet import Packet
from logtrain.syslog import (
    Framer,
    format_datagrams,
    format_datagrams_py,
    format_rfc5424,
    format_rfc5424_py,
    parse,
)


def feed_all(framer: Framer, chunks: list[bytes]) -> list[bytes]:
    out = []
    for c in chunks:
        out += framer.feed(c)
    return out + framer.finish()


# ----------------------------------------------------------------------------- framing

def test_framing_detected_per_frame():
    data = b"<1>a\n6 <2>b\nc\r\n<3>d\r\n5 <4>ee<5>f\n"
    assert feed_all(Framer(), [data]) == [b"<1>a", b"<2>b\nc", b"<3>d", b"<4>ee", b"<5>f"]


def test_last_newline_frame_without_newline_is_kept_at_eof():
    assert feed_all(Framer(), [b"<1>a\n<2>b"]) == [b"<1>a", b"<2>b"]


def test_oversized_and_impossible_counts_keep_later_frames():
    f = Framer(max_frame=100)
    data = (b"<1>" + b"x" * 500 + b"\n<1>after-long-line\n"
            + b"150 " + b"y" * 150 + b"12 <1>after-oct"
            + b"999999999 junk junk\n<1>after-bad-count\n"
            + b"1234567890123 <1>x\n<1>after-ten-digits\n")
    frames = feed_all(f, [data])
    assert frames == [b"<1>after-long-line", b"<1>after-oct", b"<1>after-bad-count",
                      b"<1>after-ten-digits"]
    assert f.errors.take() == {"oversized": 2, "bad_length": 2}


def test_resync_on_the_next_octet_frame():
    f = Framer(max_frame=100)
    frames = feed_all(f, [b"999999999 garbage 6 <1>abc"])
    assert frames == [b"<1>abc"] and f.errors.take() == {"bad_length": 1}


def test_truncated_octet_frame_at_eof():
    f = Framer()
    assert feed_all(f, [b"<1>a\n", b"20 <1>short"]) == [b"<1>a"]
    assert f.errors.take() == {"truncated": 1}


frame_bodies = st.binary(min_size=1, max_size=60).filter(lambda b: b"\n" not in b).map(
    lambda b: b"<13>" + b)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(frame_bodies, st.booleans()), min_size=1, max_size=20), st.data())
def test_same_frames_for_every_split_of_the_stream(frames, data):
    stream = b"".join((b"%d %s" % (len(b), b)) if octet else b + b"\n" for b, octet in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    # newline framing drops the CR of a CRLF
    expected = [b[:-1] if not octet and b.endswith(b"\r") else b for b, octet in frames]
    assert feed_all(Framer(), chunks) == expected
    assert feed_all(Framer(), [stream[i:i + 1] for i in range(len(stream))]) == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.integers(1, 64))
def test_framer_survives_any_bytes(junk, step):
    f = Framer(max_frame=200)
    for i in range(0, len(junk), step):
        f.feed(junk[i:i + step])
    f.finish()
    for frame in feed_all(Framer(max_frame=200), [junk]):
        try:
            parse(frame)
        except ValueError:
            pass


# ----------------------------------------------------------------------------- parsing

def test_parse_rfc5424():
    p = parse(b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 '
              b'[exampleSDID@32473 iut="3" eventSource="Appl\\]ication"][x@1 a="b"] \xef\xbb\xbfAn app event')
    assert (p.facility, p.severity, p.hostname, p.tag, p.time, p.message) == (
        20, 5, "mymachine.example.com", "evntslog", "2003-10-11T22:14:15.003Z", "An app event")


def test_parse_rfc5424_nil_values_and_no_msg():
    p = parse(b"<13>1 - - - - - -")
    assert (p.hostname, p.tag, p.message) == ("", "", "")
    assert p.time.endswith("Z")  # now


def test_parse_rfc3164_forms():
    p = parse(b"<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed")
    assert (p.facility, p.severity, p.hostname, p.tag, p.message) == (4, 2, "mymachine", "su",
                                                                      "'su root' failed")
    assert p.time[5:19] == "10-11T22:14:15"
    p = parse(b"<13>Nov  4 01:02:03 host app: single-digit day")
    assert (p.hostname, p.tag, p.message) == ("host", "app", "single-digit day")
    assert p.time[5:10] == "11-04"
    p = parse(b"<13>Nov 24 01:02:03 app[7]: no hostname")
    assert (p.hostname, p.tag, p.message) == ("", "app", "no hostname")
    p = parse(b"<13>2026-11-24T01:02:03Z host tag: rfc3339 stamp")
    assert (p.time, p.hostname, p.tag, p.message) == ("2026-11-24T01:02:03Z", "host", "tag", "rfc3339 stamp")
    assert parse(b"<13>no timestamp at all").message == "no timestamp at all"


def test_parse_rfc5424_without_structured_data_as_heroku_sends_it():
    p = parse(b"<40>1 2012-11-30T06:45:29+00:00 host app web.3 - State changed from starting to up")
    assert (p.hostname, p.tag, p.message) == ("host", "app", "State changed from starting to up")
    assert parse(b"<13>1 - h a - - [sd]x").message == "[sd]x"  # SD must be followed by SP
    assert parse(b"<13>1 - h a - - [unterminated x").message == "[unterminated x"
    assert parse(b"<13>1 - h a - - -dash").message == "-dash"
    assert parse(b"<13>1 - h a - - [x@1 a=\"]\"] m").message == "m"


@pytest.mark.parametrize("frame", [b"", b"13>1 - - - - - - x", b"<>1 - - - - - - x", b"<1a>x",
                                   b"<192>1 - - - - - - x", b"<13>1 - - -", b"<13>1 2026-13-01T00:00:00Z h a - - - x",
                                   b"\x00\xff"])
def test_parse_rejects(frame):
    with pytest.raises(ValueError):
        parse(frame)


# ----------------------------------------------------------------------------- formatting

printable = st.text(alphabet=string.ascii_letters + string.digits + ".-_:@", min_size=1,
                    max_size=60).filter(lambda s: s != "-")  # "-" alone is RFC5424's NILVALUE
times = st.sampled_from(["2026-11-24T00:00:00Z", "2026-11-24T01:02:03.123456+05:30", "1999-12-31T23:59:60Z"])
any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=200)  # surrogates too
packets = st.builds(Packet, st.integers(0, 7), st.integers(0, 23), printable, printable, times,
                    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"),
                            max_size=200).filter(lambda m: not m.startswith("\ufeff")))  # a BOM is dropped


@settings(max_examples=300, deadline=None)
@given(st.lists(packets, min_size=1, max_size=10), st.booleans())
def test_format_then_parse_gives_back_the_packets(batch, octet):
    tags = [p.tag[:48] for p in batch]
    for fmt in (format_rfc5424, format_rfc5424_py):
        data = fmt(batch, octet)
        frames = feed_all(Framer(max_frame=1 << 20), [data])
        got = [parse(f) for f in frames]
        for p, q, tag in zip(batch, got, tags, strict=True):
            assert (q.severity, q.facility, q.hostname, q.tag, q.time) == (
                p.severity, p.facility, p.hostname, tag, p.time)
            assert q.message == p.message


@settings(max_examples=300, deadline=None)
@given(st.lists(st.builds(Packet, st.integers(-3, 30), st.integers(-3, 30), any_text, any_text,
                          st.sampled_from(["", "2026-11-24T00:00:00Z"]), any_text), max_size=8),
       st.booleans(), st.sampled_from([0, 64, 100, 2048]))
def test_compiled_formatter_matches_the_reference(batch, octet, max_len):
    assert format_rfc5424(batch, octet, max_len) == format_rfc5424_py(batch, octet, max_len)
    if max_len:
        assert format_datagrams(batch, max_len) == format_datagrams_py(batch, max_len)


def test_format_details():
    p = Packet(6, 1, "host name\x00", "a" * 60 + "\u00e9", "", "line one\nline two\r\n")
    assert format_rfc5424([p]) == (b"<14>1 - host_name_ " + b"a" * 48 + b" - - - line one line two\n")
    assert format_rfc5424([p], octet=True).endswith(b"- - - line one\nline two")
    cut = format_datagrams([Packet(6, 1, "h", "t", "-", "\u00e9" * 100)], 64)[0]
    assert len(cut) <= 64 and cut.decode("utf-8")
    assert format_rfc5424([Packet(99, 99, "", "", "", "")]) == b"<13>1 - - - - - - \n"
