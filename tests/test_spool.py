"""The disk spool on its own (logtrain.spool, logtrain.spool_format): order,
restart from the cursor, a torn last record, a corrupt segment, the caps.
Real files in a temporary directory; no drain, no network."""

from __future__ import annotations

import io
import os
import time

import pytest

from logtrain.config import load
from logtrain.log import Log, RateLimit
from logtrain.metrics import Metrics
from logtrain.runtime import Runtime
from logtrain.spool_format import CodecError, dump_item, load_item
from logtrain.spools import Spools

URL = "syslog+tcp://user:hunter2@127.0.0.1:1"
NAME = "syslog+tcp://user:***@127.0.0.1:1"


def runtime() -> tuple[Runtime, io.StringIO]:
    out = io.StringIO()
    cfg = load(env={"SYSLOG_TCP": "true", "ROUTES_FILE": "/dev/null"})
    return Runtime(cfg, Log("debug", out), Metrics(), RateLimit(60.0)), out


class Opened:
    def __init__(self, state: str, cap: int = 1 << 20, total: int = 1 << 30) -> None:
        self.rt, self.out = runtime()
        self.dropped: list[tuple[int, str]] = []
        self.spools = Spools(self.rt, state, cap, total)
        self.sp = self.spools.open(URL, NAME, lambda n, r: self.dropped.append((n, r)))

    def drain(self, limit: int = 1 << 30) -> list:
        got = []
        while True:
            recs = self.sp.take(64 << 10)
            if not recs:
                return got
            for item, _n, token in recs:
                got.append(item)
                self.sp.settle(token)
            if len(got) >= limit:
                return got


def batch(i: int) -> bytes:
    return b"".join(b"<14>1 - h app - - - line %d-%d\n" % (i, j) for j in range(10))


def test_codec_round_trips_every_item_shape():
    for item in (b"abc", [b"a", b"bc"], (b"xyz", 7), [], (b"", 0)):
        assert load_item(dump_item(item)) == item
    with pytest.raises(CodecError):
        dump_item({"a": 1})


def test_order_across_segments_and_restart_resumes_at_cursor(tmp_path):
    o = Opened(str(tmp_path), cap=1 << 20)  # segments of 256 KiB
    for i in range(3000):  # 3000 records of ~330 B: four segments
        assert o.sp.append(batch(i), 10)
    segs = len(o.sp.segments)
    assert segs >= 3
    # half delivered, then the process stops without closing (as kill -9 does:
    # the cursor file is at most a second old, here forced current)
    first = o.drain(limit=1500)
    o.sp._write_cursor()
    assert first == [batch(i) for i in range(len(first))]
    again = Opened(str(tmp_path), cap=1 << 20)
    rest = again.drain()
    # what was delivered is not sent again; what was not, comes in order
    assert rest == [batch(i) for i in range(len(first), 3000 - sum(n for n, _ in o.dropped) // 10)]
    print(f"segments={segs} delivered_before={len(first)} replayed_after_restart={len(rest)}")
    assert not again.sp.segments  # all delivered: every segment removed
    assert os.listdir(again.sp.dir) == ["cursor", "drain"] or set(os.listdir(again.sp.dir)) == {
        "cursor", "drain"}
    assert open(os.path.join(again.sp.dir, "drain")).read().strip() == NAME


def test_torn_last_record_is_cut_off_and_the_rest_replayed(tmp_path):
    o = Opened(str(tmp_path))
    for i in range(50):
        o.sp.append(batch(i), 10)
    tail = o.sp.segments[-1].path
    good = os.path.getsize(tail)
    with open(tail, "ab") as f:  # a write cut short by a crash: half a record
        f.write(b"LR\x00\x00\x01\x00\x12\x34")
    again = Opened(str(tmp_path))
    assert os.path.getsize(tail) == good
    assert again.rt.metrics.get("logtrain_spool_torn_total", drain=NAME) == 1
    assert "torn last record skipped" in again.out.getvalue()
    assert again.drain() == [batch(i) for i in range(50)]


def test_corrupt_segment_is_set_aside_not_fatal(tmp_path):
    o = Opened(str(tmp_path), cap=1 << 20)
    for i in range(2000):
        o.sp.append(batch(i), 10)
    first = o.sp.segments[0]
    n_first = first.packets // 10
    with open(first.path, "r+b") as f:  # one flipped byte inside a payload
        f.seek(first.size // 2)
        b = f.read(1)
        f.seek(first.size // 2)
        f.write(bytes([b[0] ^ 0xFF]))
    again = Opened(str(tmp_path), cap=1 << 20)
    got = again.drain()
    # the damaged segment's records before the damage may have been taken, the
    # rest of it is set aside; every later segment is replayed
    assert got[-1] == batch(1999)
    assert set(got) >= {batch(i) for i in range(n_first, 2000)}
    assert os.path.exists(first.path[:-4] + ".corrupt")
    assert again.rt.metrics.get("logtrain_spool_corrupt_segments_total", drain=NAME) == 1
    assert "corrupt segment set aside" in again.out.getvalue()
    lost = sum(n for n, r in again.dropped if r == "spool_corrupt")
    assert lost + len(got) * 10 == 20000
    print(f"records={2000} replayed={len(got)} lost_in_corrupt_segment_packets={lost}")


def test_cap_drops_the_oldest_counted_and_logged_masked(tmp_path):
    o = Opened(str(tmp_path), cap=256 << 10)  # segments of 64 KiB
    for i in range(3000):  # ~1 MB into a 256 KiB cap
        assert o.sp.append(batch(i), 10)
    assert o.sp.bytes <= 256 << 10
    dropped = sum(n for n, _ in o.dropped)
    got = o.drain()
    assert len(got) * 10 + dropped == 30000
    assert got == [batch(i) for i in range(3000 - len(got), 3000)]  # the newest kept, in order
    log = o.out.getvalue()
    assert "oldest data dropped" in log and NAME in log and "hunter2" not in log
    print(f"appended=30000 packets, kept={len(got) * 10}, dropped={dropped}")


def test_total_cap_over_all_drains_drops_the_oldest_of_all(tmp_path):
    rt, _ = runtime()
    drops: dict[str, int] = {}
    spools = Spools(rt, str(tmp_path), 1 << 20, 512 << 10)
    a = spools.open("syslog+tcp://a:1", "a", lambda n, r: drops.__setitem__("a", drops.get("a", 0) + n))
    b = spools.open("syslog+tcp://b:1", "b", lambda n, r: drops.__setitem__("b", drops.get("b", 0) + n))
    for i in range(1000):
        a.append(batch(i), 10)  # ~330 KB, older
    for i in range(1000):
        b.append(batch(i), 10)
    assert spools.total <= 512 << 10
    assert spools.total == a.bytes + b.bytes
    assert drops.get("a", 0) > 0 and not drops.get("b")  # a's data was the oldest


def test_shutdown_spools_what_is_buffered_and_the_next_start_replays_it(tmp_path):
    """2,000 lines (under the memory high-water mark, so still in memory) for a
    receiver that is down; SIGTERM spools them instead of dropping them; the
    next start, with the receiver up, delivers every one, once."""
    import socket

    from faultpeers import CountingSink
    from peers import Agent, free_port, wait_for

    sink = CountingSink()
    sink.stop()
    port = free_port()
    env = {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(port), "DRAIN_BACKOFF_MAX": "0.5"}
    routes = f"*  syslog+tcp://127.0.0.1:{sink.port}\n"
    a = Agent(tmp_path / "agent", env, routes).start()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"".join(b"<14>1 2026-11-25T00:00:00Z h app - - - seq=%d\n" % i
                           for i in range(2000)))
    wait_for(lambda: a.metric("logtrain_input_frames_total") >= 2000, 10, what="2000 lines in")
    time.sleep(0.5)
    assert a.metric("logtrain_drain_spool_bytes") == 0  # all in memory so far
    assert a.stop() == 0
    log = a.log()
    assert "undelivered_at_shutdown=0" in log, log
    sink.start()
    b = Agent(tmp_path / "agent", env, routes).start()
    try:
        wait_for(lambda: sink.count()[0] >= 2000, 15, what="2000 lines replayed after restart")
        time.sleep(0.5)
        got, dups = sink.count()
        print(f"\nspooled at shutdown, replayed at start: sent=2000 received={got} duplicates={dups}")
        assert sink.missing(2000) == [] and dups == 0
        assert "spool found: replaying" in b.log()
    finally:
        assert b.stop() == 0
        sink.stop()


def test_at_the_spool_cap_tcp_stops_reading_http_answers_503_udp_drops_counted(tmp_path):
    """A drain whose receiver is down, with a 1 MiB spool cap: 10,000 lines/s
    over TCP for 8 s (~13 MB) reach the cap and the TCP input stops reading
    (the sender is held back, nothing dropped); an HTTP post then gets 503 with
    Retry-After; 20,000 UDP datagrams cannot be held back: the spool drops its
    oldest, counted, logged with the drain's masked URL."""
    import socket

    from faultpeers import CountingSink, RateSender
    from peers import Agent, free_port, wait_for

    sink = CountingSink()
    sink.stop()
    tcp, udp = free_port(), free_port()
    url = f"syslog+tcp://user:hunter2@127.0.0.1:{sink.port}"
    a = Agent(tmp_path / "agent", {
        "SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(tcp), "SYSLOG_UDP": "true",
        "SYSLOG_UDP_PORT": str(udp), "HTTP_SYSLOG": "true", "SPOOL_MAX_BYTES": "1M",
        "DRAIN_BUFFER_SIZE": "256K", "DRAIN_BACKOFF_MAX": "0.5"}, f"*  {url}\n").start()
    sender = RateSender(tcp, 10000)
    try:
        sender.start()
        time.sleep(8)
        sender.halt.set()
        sent = sender.sent
        spool = a.metric("logtrain_drain_spool_bytes")
        took = a.metric("logtrain_input_frames_total", input="syslog_tcp")
        # the agent stopped taking lines; what the sender wrote since waits in
        # the socket buffers (a few MB)
        assert took < sent - 10000, (took, sent, spool)
        assert a.metric("logtrain_drain_dropped_total") == 0
        assert spool <= 1 << 20
        code, headers, body = a.post("/syslog", b"<14>1 - web app - - - http line\n")
        assert code == 503 and headers.get("Retry-After") == "5", (code, body)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(20000):
                s.sendto(b"<14>1 2026-11-25T00:00:00Z web app - - - udp %d %s" % (i, b"x" * 100),
                         ("127.0.0.1", udp))
                if i % 500 == 0:
                    time.sleep(0.01)
        wait_for(lambda: a.metric("logtrain_drain_dropped_total", reason="spool_full") > 0, 10,
                 what="oldest spooled lines dropped")
        log = a.log()
        assert "spool over its cap: oldest data dropped" in log and "hunter2" not in log
        assert a.metric("logtrain_drain_spool_bytes") <= 1 << 20
        print(f"\nat the cap: tcp sent={sent} taken={int(took)} "
              f"spool={int(spool)} B; "
              f"udp dropped={int(a.metric('logtrain_drain_dropped_total', reason='spool_full'))}")
    finally:
        assert a.stop() == 0


def test_items_of_thousands_of_datagrams_are_spooled_whole(tmp_path):
    """A syslog+udp batch is a list of datagrams: more parts than one writev takes."""
    o = Opened(str(tmp_path))
    item = [b"<14>1 - h app - - - datagram %d" % i for i in range(3000)]
    assert o.sp.append(item, 3000)
    assert o.drain() == [item]
