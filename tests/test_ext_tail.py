"""Tailing (ext/tail.pyx): inotify on a real directory, line splitting and
container log parsing against the Python references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logtrain import tail
from logtrain.tail import (
    CRIParser,
    CRIParserPy,
    DockerParser,
    DockerParserPy,
    Inotify,
    LineSplitter,
    LineSplitterPy,
)


def test_the_compiled_module_is_in_use():
    assert LineSplitter is not LineSplitterPy and CRIParser is not CRIParserPy


# ----------------------------------------------------------------------------- inotify

def events(ino: Inotify) -> list[tuple[int, int, int, str]]:
    return ino.read_events()


def test_inotify_directory_and_file_events(tmp_path: Path):
    with Inotify() as ino:
        assert events(ino) == []  # non-blocking: nothing yet
        mask = (tail._tail.IN_CREATE | tail._tail.IN_MODIFY | tail._tail.IN_MOVED_FROM
                | tail._tail.IN_MOVED_TO | tail._tail.IN_DELETE | tail._tail.IN_CLOSE_WRITE)
        wd = ino.add_watch(tmp_path, mask)
        assert ino.add_watch(str(tmp_path), mask) == wd  # the same watch again
        f = tmp_path / "app.log"
        with open(f, "w") as fh:
            fh.write("one\n")
        f.rename(tmp_path / "app.log.1")
        (tmp_path / "app.log.1").unlink()
        got = events(ino)
        kinds = [(name, m) for w, m, _, name in got if w == wd]
        names_by_kind = {k: [n for n, m in kinds if m & k] for k in (
            tail._tail.IN_CREATE, tail._tail.IN_MODIFY, tail._tail.IN_CLOSE_WRITE,
            tail._tail.IN_MOVED_FROM, tail._tail.IN_MOVED_TO, tail._tail.IN_DELETE)}
        assert names_by_kind[tail._tail.IN_CREATE] == ["app.log"]
        assert names_by_kind[tail._tail.IN_MODIFY] == ["app.log"]
        assert names_by_kind[tail._tail.IN_CLOSE_WRITE] == ["app.log"]
        assert names_by_kind[tail._tail.IN_MOVED_FROM] == ["app.log"]
        assert names_by_kind[tail._tail.IN_MOVED_TO] == ["app.log.1"]
        assert names_by_kind[tail._tail.IN_DELETE] == ["app.log.1"]
        cookies = {c for _, m, c, _ in got if m & (tail._tail.IN_MOVED_FROM | tail._tail.IN_MOVED_TO)}
        assert len(cookies) == 1 and cookies != {0}  # a rename's two halves share a cookie
        assert events(ino) == []


def test_inotify_file_watch_and_its_deletion(tmp_path: Path):
    f = tmp_path / "x.log"
    f.write_text("")
    with Inotify() as ino:
        wd = ino.add_watch(f, tail._tail.IN_MODIFY | tail._tail.IN_DELETE_SELF)
        with open(f, "a") as fh:
            fh.write("line\n")
        f.unlink()
        got = [(w, m, name) for w, m, _, name in events(ino)]
        assert (wd, tail._tail.IN_MODIFY, "") in got
        assert any(w == wd and m & tail._tail.IN_DELETE_SELF for w, m, _ in got)
        assert any(w == wd and m & tail._tail.IN_IGNORED for w, m, _ in got)  # watch gone


def test_inotify_changes_are_gathered_without_a_tuple_per_event(tmp_path: Path):
    """read_changes: the files written to, and whether a rescan is due (an
    event on a directory, or a file moved or deleted)."""
    t = tail._tail
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("")
    b.write_text("")
    with Inotify() as ino:
        wa = ino.add_watch(a, t.IN_MODIFY | t.IN_MOVE_SELF)
        wb = ino.add_watch(b, t.IN_MODIFY | t.IN_MOVE_SELF)
        wd = ino.add_watch(tmp_path, t.IN_CREATE)
        moved = t.IN_MOVE_SELF | t.IN_DELETE_SELF | t.IN_Q_OVERFLOW
        for _ in range(100):
            with open(a, "a") as fh:
                fh.write("x\n")
        changed: set = set()
        assert ino.read_changes(changed, {wd}, moved) is False
        assert changed == {wa}
        with open(b, "a") as fh:
            fh.write("y\n")
        (tmp_path / "new.log").touch()  # an event on the directory
        changed = set()
        assert ino.read_changes(changed, {wd}, moved) is True
        assert changed == {wb}
        b.rename(tmp_path / "b.log.1")
        changed = set()
        assert ino.read_changes(changed, {wd}, moved) is True and changed == set()
        assert ino.read_changes(changed, {wd}, moved) is False  # nothing queued


def test_inotify_many_events_and_long_names(tmp_path: Path):
    with Inotify() as ino:
        ino.add_watch(tmp_path, tail._tail.IN_CREATE)
        names = [f"{i:04d}-" + "n" * 240 for i in range(600)]  # more than one read's worth
        for n in names:
            (tmp_path / n).touch()
        got = [name for _, _, _, name in events(ino)]
        assert got == names


def test_inotify_errors(tmp_path: Path):
    ino = Inotify()
    with pytest.raises(FileNotFoundError):
        ino.add_watch(tmp_path / "missing", tail._tail.IN_MODIFY)
    with pytest.raises(NotADirectoryError):
        (tmp_path / "f").touch()
        ino.add_watch(tmp_path / "f", tail._tail.IN_CREATE | tail._tail.IN_ONLYDIR)
    ino.close()
    with pytest.raises(ValueError):
        ino.fileno()
    with pytest.raises(ValueError):
        ino.read_events()


def test_inotify_wakes_a_gevent_wait(tmp_path: Path):
    import gevent
    from gevent.socket import wait_read

    with Inotify() as ino:
        ino.add_watch(tmp_path, tail._tail.IN_CREATE)
        g = gevent.spawn_later(0.05, (tmp_path / "new").touch)
        wait_read(ino.fileno(), timeout=2)
        assert [n for _, _, _, n in ino.read_events()] == ["new"]
        g.join()


# ----------------------------------------------------------------------------- lines

def run_splitter(cls, chunks: list[bytes], max_line: int) -> tuple[list[bytes], int, bytes | None]:
    s = cls(max_line)
    out = []
    for c in chunks:
        out += s.feed(c)
    return out, s.cuts, s.flush()


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from([b"\n", b"a", b"bb", b"\r\n", b"x" * 17, b"\xff", b""]), max_size=40),
       st.data(), st.sampled_from([1, 4, 16, 65536]))
def test_line_splitter_matches_reference_for_every_split(parts, data, max_line):
    stream = b"".join(parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    got = run_splitter(LineSplitter, chunks, max_line)
    assert got == run_splitter(LineSplitterPy, chunks, max_line)
    assert got == run_splitter(LineSplitter, [stream], max_line)  # however it is cut
    lines, _, rest = got
    assert b"".join(lines) + (rest or b"") == stream.replace(b"\n", b"")
    assert all(len(line) <= max_line for line in lines)


def test_line_splitter_carry_over():
    s = LineSplitter(8)
    assert s.feed(b"abc") == [] and s.pending == 3
    assert s.feed(b"def\nghi") == [b"abcdef"] and s.pending == 3
    assert s.feed(b"jklmnopq") == [b"ghijklmn"] and s.cuts == 1  # the carry stays bounded
    assert s.flush() == b"opq" and s.flush() is None


# ----------------------------------------------------------------------------- container logs

def test_cri_lines_and_partials():
    p = CRIParser("node-1", "web")
    lines = [
        b"2026-11-24T10:00:00.123456789Z stdout F hello world",
        b"2026-11-24T10:00:01Z stderr P part one, ",
        b"2026-11-24T10:00:01.5Z stdout F interleaved",
        b"2026-11-24T10:00:02Z stderr F part two",
        b"2026-11-24T10:00:03Z stdout F",
        b"not a cri line",
        b"2026-11-24T10:00:03Z stdin F x",
        b"2026-11-24T10:00:03Z stdout X x",
        b"yesterday stdout F x",
    ]
    packets, bad = p.parse_batch(lines)
    assert bad == 4
    got = [(q.severity, q.facility, q.hostname, q.tag, q.time, q.message) for q in packets]
    assert got == [
        (6, 1, "node-1", "web", "2026-11-24T10:00:00.123456789Z", "hello world"),
        (6, 1, "node-1", "web", "2026-11-24T10:00:01.5Z", "interleaved"),
        (3, 1, "node-1", "web", "2026-11-24T10:00:01Z", "part one, part two"),
        (6, 1, "node-1", "web", "2026-11-24T10:00:03Z", ""),
    ]


@pytest.mark.parametrize("cls", [CRIParser, CRIParserPy])
def test_a_line_carries_the_frame_a_syslog_drain_would_format(cls):
    """The frame each packet carries is byte for byte what formatting its
    fields gives, also after its names and severities change mid-file."""
    from logtrain.syslog import format_rfc5424

    p = cls("node-1", "web")
    lines = [b"2026-11-24T10:00:00.5Z stdout F hello \xc3\xa9 world",
             b"2026-11-24T10:00:01Z stderr F line\twith tab"]
    first, _ = p.parse_batch(lines)
    p.hostname, p.tag = "app two.space", "web.pod-1"  # a space: cleaned in the frame
    p.stdout_severity = p.stderr_severity = p.facility = 0
    second, _ = p.parse_batch(lines)
    for q in first + second:
        assert q.raw is not None
        wire = format_rfc5424([q])
        q.changed()  # drops the frame: the packet is formatted from its fields
        assert q.raw is None and format_rfc5424([q]) == wire
    assert format_rfc5424(second[:1]) == (
        b"<0>1 2026-11-24T10:00:00.5Z app_two.space web.pod-1 - - - hello \xc3\xa9 world\n")
    assert [q.message for q in second] == ["hello \u00e9 world", "line\twith tab"]


def test_partials_are_joined_across_batches_up_to_the_cap():
    p = CRIParser("n", "t", 10)
    a, _ = p.parse_batch([b"2026-11-24T10:00:00Z stdout P 12345"])
    b, _ = p.parse_batch([b"2026-11-24T10:00:01Z stdout P 67890", b"2026-11-24T10:00:02Z stdout F end"])
    assert a == [] and [q.message for q in b] == ["1234567890", "end"]


cri_line = st.builds(
    lambda ts, stream, tag, msg, sep: ts + b" " + stream + b" " + tag + sep + msg,
    st.sampled_from([b"2026-11-24T10:00:00Z", b"2026-11-24T10:00:00.1+01:00", b"bad", b""]),
    st.sampled_from([b"stdout", b"stderr", b"stdin", b""]),
    st.sampled_from([b"F", b"P", b"F:x", b"", b"Q"]),
    st.binary(max_size=30),
    st.sampled_from([b" ", b""]),
) | st.binary(max_size=40)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.lists(cri_line, max_size=8), max_size=4), st.sampled_from([4, 1 << 20]))
def test_cri_parser_matches_the_reference(batches, max_join):
    a, b = CRIParser("h", "t", max_join), CRIParserPy("h", "t", max_join)
    for batch in batches:
        pa, ba = a.parse_batch(batch)
        pb, bb = b.parse_batch(batch)
        assert [q.to_dict() for q in pa] == [q.to_dict() for q in pb] and ba == bb


def test_docker_json_lines():
    p = DockerParser("node-1", "api")
    lines = [json.dumps({"log": "hello \u00e9 \"q\" \\ \t\n", "stream": "stdout",
                         "time": "2026-11-24T10:00:00.123456789Z"}).encode(),
             b'{"log":"\\ud83d\\ude00 pair and lone \\udc00\\n","stream":"stderr","time":"2026-11-24T10:00:01Z"}',
             b'{"log":"a long line cut ","stream":"stdout","time":"2026-11-24T10:00:02Z"}',
             b'{"log":"in two\\n","stream":"stdout","time":"2026-11-24T10:00:03Z"}',
             b'{"log":"x","stream":"stdout"}', b"[1,2]", b"{not json", b"[" * 100000,
             b'{"log":"x\\n","stream":"tty","time":"2026-11-24T10:00:03Z"}']
    packets, bad = p.parse_batch(lines)
    assert bad == 5
    assert [(q.severity, q.time, q.message) for q in packets] == [
        (6, "2026-11-24T10:00:00.123456789Z", "hello \u00e9 \"q\" \\ \t"),
        (3, "2026-11-24T10:00:01Z", "\U0001F600 pair and lone \ufffd\ufffd\ufffd"),
        (6, "2026-11-24T10:00:02Z", "a long line cut in two"),
    ]


docker_line = st.builds(
    lambda log, stream, t: json.dumps({"log": log, "stream": stream, "time": t}).encode(),
    st.text(max_size=20) | st.text(max_size=20).map(lambda s: s + "\n"),
    st.sampled_from(["stdout", "stderr", "x"]),
    st.sampled_from(["2026-11-24T10:00:00Z", "2026-11-24T10:00:00.5-05:00", "bad", "２０２６-11-24T10:00:00Z"]),
) | st.binary(max_size=30)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.lists(docker_line, max_size=8), max_size=4))
def test_docker_parser_matches_the_reference(batches):
    a, b = DockerParser("h", "t"), DockerParserPy("h", "t")
    for batch in batches:
        pa, ba = a.parse_batch(batch)
        pb, bb = b.parse_batch(batch)
        assert [q.to_dict() for q in pa] == [q.to_dict() for q in pb] and ba == bb
