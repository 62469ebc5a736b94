"""Hostile clients of the syslog stream inputs, each test stating the figure it
checked: peak resident memory, /health latency during the attack, lines of
other clients delivered. Sizes are those of the attacks reported against the
agent unless a test says it scaled one down (and why)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from peers import Agent, free_port, wait_for

GOOD = b"<13>1 2026-11-24T00:00:00Z hostA app - - - "
LIMIT_MIB = 48  # the budget under hostile clients (the daemonset limit is 64Mi)
HEALTH_MS = 100  # the budget; asserted with a margin because the 2 cores are shared
HEALTH_ASSERT_MS = 400


class Receiver:
    """A TCP syslog receiver: counts newline-framed lines, keeps their text."""

    def __init__(self, port: int = 0, delay: float = 0.0) -> None:
        self.delay = delay  # seconds of sleep after each read: a slow receiver
        self.srv = socket.create_server(("127.0.0.1", port), reuse_port=False, backlog=64)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.port = self.srv.getsockname()[1]
        self.lines: list[bytes] = []
        self.count = 0
        self.keep = True
        self.lock = threading.Lock()
        self.conns: list[socket.socket] = []
        self.alive = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.alive:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._read, args=(c,), daemon=True).start()

    def _read(self, c: socket.socket) -> None:
        rest = b""
        while True:
            try:
                data = c.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            if self.delay:
                time.sleep(self.delay)
            rest += data
            *lines, rest = rest.split(b"\n")
            with self.lock:
                self.count += len(lines)
                if self.keep:
                    self.lines.extend(lines)

    def messages(self) -> list[str]:
        with self.lock:
            return [line.split(b" - - - ", 1)[-1].decode() for line in self.lines]

    def stop(self) -> None:
        self.alive = False
        try:
            self.srv.shutdown(socket.SHUT_RDWR)  # wakes accept(): close alone leaves it listening
        except OSError:
            pass
        self.srv.close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()


def health_during(agent: Agent, attack_running, period: float = 0.1) -> list[float]:
    """/health latencies sampled while ``attack_running()`` is true."""
    samples = []
    while attack_running():
        samples.append(agent.health_ms())
        time.sleep(period)
    return samples


def tcp_agent(tmp_path, routes: str, **env: str) -> tuple[Agent, int]:
    port = free_port()
    a = Agent(tmp_path / "agent", {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(port), **env},
              routes).start()
    return a, port


def test_partial_frames_share_one_budget(tmp_path):
    """1,000 connections each holding a 60,000-byte unfinished frame (90 MiB
    before): the budget cuts the largest holders; peak RSS stays under 48 MiB
    and a good client's lines still arrive."""
    out = tmp_path / "out.log"
    a, port = tcp_agent(tmp_path, f"hostA file://{out}\n", MAX_CONNECTIONS="1100")
    socks = []
    try:
        base = a.rss_mib()
        frame_head = b"65000 " + GOOD
        chunk = frame_head + b"z" * (60000 - len(frame_head))
        for _ in range(1000):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(chunk)
            socks.append(s)
        wait_for(lambda: a.metric("logtrain_input_connections_rejected_total",
                                  reason="partial_budget") > 0, 20, what="cuts")
        time.sleep(1)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(GOOD + b"after-partial-flood\n")
        wait_for(lambda: out.exists() and "after-partial-flood" in out.read_text(), 10,
                 what="a good line after the attack")
        peak = a.peak_rss_mib()
        cuts = a.metric("logtrain_input_connections_rejected_total", reason="partial_budget")
        print(f"partial frames: idle {base:.1f} MiB, peak {peak:.1f} MiB, {cuts:.0f} cut")
        assert peak < LIMIT_MIB, f"peak RSS {peak:.1f} MiB with 1,000 unfinished 60 KB frames"
        # 4 MiB budget, 60 KB each: most of the 1,000 holders had to be cut
        assert cuts >= 800
        assert a.healthy()
    finally:
        for s in socks:
            s.close()
        a.stop()


def test_flood_of_unroutable_lines_starves_nobody(tmp_path):
    """One connection floods lines no route takes: /health answers within
    100 ms (asserted under 400 ms on shared cores), another connection's lines
    arrive within a second, and a drain that failed reconnects during the flood."""
    rcv = Receiver()
    port_down = free_port()
    a, port = tcp_agent(tmp_path, f"hostA syslog+tcp://127.0.0.1:{rcv.port}\n"
                                  f"hostB syslog+tcp://127.0.0.1:{port_down}\n",
                        DRAIN_BACKOFF_MAX="0.5")
    stop = threading.Event()

    def flood() -> None:
        line = b"<13>1 2026-11-24T00:00:00Z nobody app - - - " + b"x" * 150 + b"\n"
        blob = line * 2000
        with socket.create_connection(("127.0.0.1", port)) as s:
            while not stop.is_set():
                s.sendall(blob)

    flooder = threading.Thread(target=flood, daemon=True)
    try:
        # hostB's drain fails first (nothing listens), then its receiver appears mid-flood
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"<13>1 2026-11-24T00:00:00Z hostB app - - - before\n")
        wait_for(lambda: a.metric("logtrain_drain_errors_total") > 0, 10, what="drain failing")
        flooder.start()
        wait_for(lambda: a.metric("logtrain_dead_packets_total") > 100_000, 20, what="flood")
        rcv_b = Receiver(port_down)
        delays = []
        with socket.create_connection(("127.0.0.1", port)) as s:
            for i in range(5):
                t0 = time.monotonic()
                s.sendall(GOOD + b"during-%d\n" % i)
                wait_for(lambda i=i: f"during-{i}" in rcv.messages(), 5, interval=0.01,
                         what=f"line {i} during the flood")
                delays.append(time.monotonic() - t0)
        samples = []
        t_end = time.monotonic() + 3
        samples = health_during(a, lambda: time.monotonic() < t_end)
        wait_for(lambda: "before" in rcv_b.messages(), 10, what="the failed drain reconnected")
        dead = a.metric("logtrain_dead_packets_total")
        stop.set()
        flooder.join()
        samples.sort()
        median, worst = samples[len(samples) // 2], samples[-1]
        print(f"flood: {dead:.0f} dead lines, /health median {median:.1f} ms, max {worst:.1f} ms, "
              f"other connection's lines in at most {max(delays) * 1000:.0f} ms")
        assert worst < HEALTH_ASSERT_MS, f"/health took {worst:.0f} ms during the flood"
        assert max(delays) < 1.0, f"another connection's line took {max(delays):.2f} s"
        rcv_b.stop()
    finally:
        stop.set()
        a.stop()
        rcv.stop()


def test_silent_sockets_do_not_lock_senders_out(tmp_path):
    """Silent sockets fill every slot (1,024 took every slot for IDLE_TIMEOUT,
    300 s, before): a new sender gets in by evicting the longest idle one, and
    silent sockets are closed after FIRST_BYTES_TIMEOUT. Scaled to 200 slots
    (the mechanism does not depend on the number)."""
    out = tmp_path / "out.log"
    a, port = tcp_agent(tmp_path, f"hostA file://{out}\n", MAX_CONNECTIONS="200",
                        FIRST_BYTES_TIMEOUT="4")
    silent = []
    try:
        for _ in range(200):
            silent.append(socket.create_connection(("127.0.0.1", port)))
        wait_for(lambda: a.metric("logtrain_input_connections", input="syslog_tcp") == 200, 10,
                 what="200 connections")
        time.sleep(2.5)  # longer than EVICT_AFTER: they are idle now
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(GOOD + b"new-sender\n")
        wait_for(lambda: out.exists() and "new-sender" in out.read_text(), 5,
                 what="the new sender's line")
        took = time.monotonic() - t0
        assert a.metric("logtrain_input_connections_rejected_total", reason="evicted_idle") >= 1
        assert a.metric("logtrain_input_connections_rejected_total", reason="max_connections") == 0
        wait_for(lambda: a.metric("logtrain_input_connections_rejected_total",
                                  reason="first_bytes_timeout") >= 190, 10,
                 what="silent sockets closed after FIRST_BYTES_TIMEOUT")
        print(f"silent sockets: new sender's line in {took * 1000:.0f} ms")
    finally:
        for s in silent:
            s.close()
        a.stop()


@pytest.mark.parametrize("senders", [200])
def test_many_senders_get_backpressure_not_drops(tmp_path, senders):
    """200 senders at full speed into a healthy receiver (4,718 of 10 million
    lines dropped as buffer_full before): none dropped. Scaled to 200 x 5,000
    lines with a 2 MiB drain buffer, which makes the overflow easier to hit."""
    rcv = Receiver()
    rcv.keep = False
    a, port = tcp_agent(tmp_path, f"hostA syslog+tcp://127.0.0.1:{rcv.port}\n",
                        DRAIN_BUFFER_SIZE="2M", MAX_CONNECTIONS="400")
    per = 5000
    line = GOOD + b"y" * 150 + b"\n"

    def send() -> None:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(line * per)

    try:
        threads = [threading.Thread(target=send) for _ in range(senders)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = senders * per
        wait_for(lambda: rcv.count >= total or a.metric("logtrain_drain_dropped_total") > 0, 60,
                 what="every line")
        time.sleep(0.5)
        dropped = a.metric("logtrain_drain_dropped_total")
        peak = a.peak_rss_mib()
        print(f"{senders} senders: {rcv.count} of {total} lines received, {dropped:.0f} dropped, "
              f"peak {peak:.1f} MiB")
        assert dropped == 0, (f"{dropped:.0f} lines dropped with {senders} senders",
                              {k: v for k, v in a.metrics().items() if "drain" in k})
        assert rcv.count == total
        assert peak < LIMIT_MIB
    finally:
        a.stop()
        rcv.stop()


def test_buffered_lines_written_promptly_after_receiver_restart(tmp_path):
    """With four pooled connections and a receiver that restarted, each line is
    delivered at once (lines 1 to 3 waited for line 4 before)."""
    rcv = Receiver(delay=0.01)  # slow, so that the pool grows
    port_r = rcv.port
    a, port = tcp_agent(tmp_path, f"hostA syslog+tcp://127.0.0.1:{port_r}\n",
                        DRAIN_MAX_CONNECTIONS="4", DRAIN_BUFFER_SIZE="2M")
    rcv.keep = False
    try:
        line = GOOD + b"w" * 150 + b"\n"
        with socket.create_connection(("127.0.0.1", port)) as s:
            deadline = time.monotonic() + 20
            while a.metric("logtrain_drain_connections") < 4 and time.monotonic() < deadline:
                s.sendall(line * 20000)
        assert a.metric("logtrain_drain_connections") == 4, "the pool did not grow to 4"
        wait_for(lambda: a.metric("logtrain_drain_buffer_bytes") == 0, 20, what="flushed")
        rcv.stop()
        rcv = Receiver(port_r)
        delays = []
        with socket.create_connection(("127.0.0.1", port)) as s:
            for i in range(1, 5):
                t0 = time.monotonic()
                s.sendall(GOOD + b"after-restart-%d\n" % i)
                wait_for(lambda i=i: f"after-restart-{i}" in rcv.messages(), 5, interval=0.01,
                         what=f"line {i} after the restart")
                delays.append(time.monotonic() - t0)
        print("after restart, per line ms:", [round(d * 1000) for d in delays])
        assert max(delays) < 1.0
    finally:
        a.stop()
        rcv.stop()
