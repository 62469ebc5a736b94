"""The compiled syslog module (ext/syslog.pyx) against its Python reference:
same frames, same errors, same packets, same bytes, for arbitrary input."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logtrain import _syslog, syslog
from logtrain.packet import Packet, is_rfc3339
from logtrain.syslog import (
    Framer,
    FramerPy,
    parse,
    parse_batch,
    parse_batch_py,
    parse_py,
)

FIXED_NOW = "2026-11-24T12:00:00.000000Z"


@pytest.fixture
def fixed_now(monkeypatch):
    """Both versions take 'now' for a NILVALUE timestamp: make it the same."""
    real = syslog.now_rfc3339
    monkeypatch.setattr(syslog, "now_rfc3339", lambda: FIXED_NOW)
    _syslog._bind(Packet, lambda: FIXED_NOW, syslog._local_rfc3339)
    yield
    _syslog._bind(Packet, real, syslog._local_rfc3339)


def test_the_compiled_module_is_in_use():
    assert Framer is not FramerPy and parse is not parse_py


# Pieces a hostile or merely sloppy stream is made of.
tokens = st.one_of(
    st.sampled_from([b"\n", b"\r\n", b" ", b"<13>", b"<13>1 ", b"999999999 ", b"12 ", b"0 ",
                     b"1234567890 ", b"7 <1>abcd", b"5 <13>", b"<165>1 2003-10-11T22:14:15.003Z h a - - - m\n",
                     b"x" * 70, b"\x00", b"\xff\xfe"]),
    st.binary(max_size=20),
    st.integers(0, 300).map(lambda n: b"%d " % n),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(tokens, max_size=40), st.data(), st.sampled_from([16, 64, 200, 65536]))
def test_framer_matches_the_reference_for_every_split(parts, data, max_frame):
    stream = b"".join(parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    results = []
    for cls in (Framer, FramerPy):
        f = cls(max_frame=max_frame)
        frames = []
        for c in chunks:
            frames += f.feed(c)
        frames += f.finish()
        results.append((frames, f.errors.take()))
    assert results[0] == results[1]
    # and the compiled framer gives the same frames however the stream is cut
    f = Framer(max_frame=max_frame)
    whole = f.feed(stream) + f.finish()
    assert whole == results[0][0]


header_parts = st.one_of(
    st.sampled_from([b"<13>", b"<0>", b"<191>", b"<192>", b"<1a>", b"<>", b"<", b"<1234>", b"1 ",
                     b"- ", b"2026-11-24T00:00:00Z ", b"2026-11-24T00:00:00.123456789+05:30 ",
                     b"2026-02-30T24:00:00Z ", b"2026-11-24t00:00:60z ", b"2026-11-24T00:00:00.Z ",
                     b"host ", b"app ", b"[a b=\"c\\\"]\"] ", b"[x][y] ", b"[unterminated ", b"- - ",
                     b"\xef\xbb\xbf", b"Nov 24 01:02:03 ", b"Feb 31 01:02:03 ", b"Jan  1 00:00:00 ",
                     b"su[12]: ", b"tag: ", b"tag:", b"host:x ", b"a" * 49 + b": ", b"h" * 256 + b" ",
                     b"1234 ", b"ID47 ", b"<013>", b"p" * 129 + b" ", b"m" * 33 + b" ",
                     rb'[id@1 a="\\\]" b="' + b'\xff"][id@2] ', b"\xff\xfe ", b"\n", b"\r\n"]),
    st.binary(max_size=12),
    st.text(max_size=8).map(lambda s: s.encode("utf-8", "surrogatepass")),
)


@settings(max_examples=1500, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(header_parts, max_size=12))
def test_parse_matches_the_reference(fixed_now, parts):
    frame = b"".join(parts)
    outcome = []
    for fn in (parse, parse_py):
        try:
            p = fn(frame)
            outcome.append(("ok", p.to_dict(), p.raw, p.msg_at))
        except ValueError as e:
            outcome.append(("error", str(e)))
    assert outcome[0] == outcome[1], frame


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(header_parts, max_size=10).map(b"".join), max_size=20))
def test_parse_batch_matches_the_reference(fixed_now, frames):
    got, want = parse_batch(frames), parse_batch_py(frames)
    assert [(p.to_dict(), p.raw) for p in got[0]] == [(p.to_dict(), p.raw) for p in want[0]]
    assert got[1:] == want[1:]


@pytest.mark.parametrize("stamp", [
    "2026-11-24T00:00:00Z", "2026-01-31T23:59:60.1+23:59", "0000-12-01t00:00:00z",
    "2026-11-24T00:00:00", "2026-11-24T00:00:00+24:00", "2026-11-24T00:00:00+05:60",
    "2026-11-24T00:00:00.1234567890Z", "2026-00-01T00:00:00Z", "2026-11-32T00:00:00Z",
    "2026-11-24 00:00:00Z", "2026-11-24T00:00:00+0530", "２０２６-11-24T00:00:00Z",
])
def test_rfc3339_check_matches_the_pattern(stamp):
    raw = stamp.encode("utf-8")
    assert _syslog.is_rfc3339_bytes(raw) == is_rfc3339(raw.decode("ascii", "replace"))


@pytest.mark.slow
def test_fuzz_every_parser_briefly():
    """bench/fuzz.py for a few seconds per target (the long runs are bench's)."""
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("atheris")
    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, str(root / "bench" / "fuzz.py"), "--seconds", "5"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no crash, no mismatch" in r.stdout
