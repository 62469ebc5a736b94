"""The Envoy access-log input end to end: the agent as a process, a real
grpcio client streaming v3 and v2 messages (tests/envoy_client.py), lines
read from a file drain. Hostile clients too: a stream cut mid-message (a
hand-written HTTP/2 client, since grpcio never sends half a message),
garbage bytes on the port, messages that do not decode, clusters that name
no service, a message over ENVOY_MAX_MESSAGE."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from envoy_client import Stream, http_batch, send
from h2raw import PREFACE, Conn, frame, grpc_headers
from peers import Agent, free_port, wait_for

HERE = Path(__file__).resolve().parent


class Lines:
    """The file drain's lines, read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pos = 0
        self.lines: list[str] = []

    def read(self) -> list[str]:
        if self.path.exists():
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
            end = data.rfind(b"\n") + 1
            self.pos += end
            self.lines += data[:end].decode().splitlines()
        return self.lines

    def wait(self, predicate, timeout: float = 30, what: str = "lines"):
        return wait_for(lambda: predicate(self.read()), timeout, what=what)


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    d = tmp_path_factory.mktemp("envoy")
    port, tcp = free_port(), free_port()
    a = Agent(d, {"ENVOY": "true", "ENVOY_PORT": str(port), "SYSLOG_TCP": "true",
                  "SYSLOG_TCP_PORT": str(tcp), "ENVOY_MAX_MESSAGE": "2M"},
              routes=f"web.shop file://{d}/out.log\ncoop file://{d}/coop.log\n").start()
    a.envoy_port, a.tcp_port = port, tcp
    a.lines = Lines(d / "out.log")
    a.coop = Lines(d / "coop.log")
    yield a
    a.stop()


def paths(lines: list[str], prefix: str) -> set[str]:
    """The /r/N paths of the lines whose request ids start with ``prefix``."""
    out = set()
    for line in lines:
        if f"request_id={prefix}" in line:
            out.add(line.rsplit("path=", 1)[1])
    return out


def tagged(version: str, n: int, tag: str, start: int = 0, **kw):
    m = http_batch(version, n, start=start, **kw)
    for e in m.http_logs.log_entry:
        e.request.request_id = f"{tag}-{e.request.request_id}"
    return m


@pytest.mark.parametrize("version", ["v3", "v2"])
def test_streams_of_large_batches_deliver_every_entry(agent, version):
    tag = f"big{version}"
    # 3 messages of 2,000 entries with 300-byte paths: about 0.8 MB each
    msgs = [tagged(version, 2000, tag, start=k * 2000, path_pad=300) for k in range(3)]
    assert len(msgs[0].SerializeToString()) > 700_000
    assert send(agent.envoy_port, msgs, version) == b""
    agent.lines.wait(lambda ls: len(paths(ls, tag)) == 6000, what="6,000 entries")
    line = next(x for x in agent.lines.read() if f"request_id={tag}-id-0 " in x)
    assert line.startswith("<0>1 2025-11-24T16:00:00.000005Z web.shop envoy - - - ")
    assert line.endswith(
        "bytes=120 request_size=100 response_size=20 method=GET request_id=" + tag
        + "-id-0 fwd= authority=web.shop protocol=http11 status=200 connect=1.25ms "
        "service=30.00ms total=1000.00ms path=/r/0" + "p" * 300)


@pytest.mark.parametrize("version", ["v3", "v2"])
def test_tcp_access_logs(agent, version):
    from envoy_client import ALS
    m = ALS[version].StreamAccessLogsMessage()
    base = 5432 if version == "v3" else 6432  # each version's own lines
    for i in range(3):
        e = m.tcp_logs.log_entry.add()
        c = e.common_properties
        c.upstream_cluster = "outbound|5432||web.shop.svc.cluster.local"
        c.start_time.seconds = 1764028800
        c.upstream_remote_address.socket_address.address = "10.9.9.9"
        c.upstream_remote_address.socket_address.port_value = base + i
        e.connection_properties.received_bytes = 10 * i
    assert send(agent.envoy_port, [m], version) == b""
    want = [f"bytes={10 * i} request_size={10 * i} response_size=0 fwd= "
            f"upstream=10.9.9.9:{base + i} protocol=tcp flags=- connect=1.00ms service=1.00ms "
            "total=1.00ms" for i in range(3)]
    got = agent.lines.wait(
        lambda ls: (lambda g: g if len(g) == 3 else None)([x for x in ls if x.endswith(tuple(want))]))
    assert got[0].startswith(
        "<0>1 2025-11-25T00:00:00.000000Z web.shop envoy - - - bytes=")


def test_many_concurrent_streams(agent):
    n_streams, per = 60, 5
    streams = [Stream(agent.envoy_port, "v3" if k % 2 else "v2") for k in range(n_streams)]
    wait_for(lambda: agent.metric("logtrain_input_connections", input="envoy") >= n_streams // 2,
             10, what="streams open at once")
    for round_ in range(per):
        for k, s in enumerate(streams):
            s.put(tagged("v3" if k % 2 else "v2", 20, f"conc{k}x", start=round_ * 20))
    for s in streams:
        assert s.close() == b""
    agent.lines.wait(lambda ls: all(len(paths(ls, f"conc{k}x")) == 20 * per
                                    for k in range(n_streams)), what="every stream's entries")
    wait_for(lambda: agent.metric("logtrain_input_connections", input="envoy") == 0, 10,
             what="streams closed")


def test_undecodable_message_and_bad_clusters_are_counted_and_the_stream_goes_on(agent):
    before_bad = agent.metric("logtrain_input_rejected_total", input="envoy", reason="malformed")
    before_cl = agent.metric("logtrain_input_rejected_total", input="envoy",
                             reason="unparsable_cluster")
    mixed = tagged("v3", 3, "clus", start=10)
    mixed.http_logs.log_entry[1].common_properties.upstream_cluster = "inbound|8080||"
    msgs = [tagged("v3", 5, "undec"), b"\x0a\xff\xff\xff\xff\x0f", mixed,
            tagged("v3", 5, "undec", start=5)]
    assert send(agent.envoy_port, msgs) == b""
    agent.lines.wait(lambda ls: len(paths(ls, "undec")) == 10 and len(paths(ls, "clus")) == 2)
    assert paths(agent.lines.read(), "clus") == {"/r/10", "/r/12"}
    assert agent.metric("logtrain_input_rejected_total", input="envoy",
                        reason="malformed") == before_bad + 1
    assert agent.metric("logtrain_input_rejected_total", input="envoy",
                        reason="unparsable_cluster") == before_cl + 1
    assert "input rejected frames" in agent.log()


def test_message_over_the_limit_ends_only_its_stream(agent):
    other = Stream(agent.envoy_port)
    other.put(tagged("v3", 5, "bystander"))
    with pytest.raises(grpc.RpcError) as e:
        send(agent.envoy_port, [tagged("v3", 9000, "huge", path_pad=300)])
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    other.put(tagged("v3", 5, "bystander", start=5))
    assert other.close() == b""
    agent.lines.wait(lambda ls: len(paths(ls, "bystander")) == 10)
    assert not paths(agent.lines.read(), "huge")


# ------------------------------------------------------------ raw HTTP/2 (hostile clients)


def h2_stream_start(port: int, version: str = "v3") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    path = f"/envoy.service.accesslog.{version}.AccessLogService/StreamAccessLogs"
    s.sendall(PREFACE + frame(4, 0, 0, b"") + frame(1, 4, 1, grpc_headers(path)))
    return s


def grpc_message(m) -> bytes:
    body = m.SerializeToString()
    return b"\x00" + struct.pack(">I", len(body)) + body


def test_stream_cut_mid_message(agent):
    broken = agent.metric("logtrain_input_rejected_total", input="envoy", reason="stream_broken")
    s = h2_stream_start(agent.envoy_port)
    whole = grpc_message(tagged("v3", 4, "cut"))
    half = grpc_message(tagged("v3", 4, "cut", start=4))
    s.sendall(frame(0, 0, 1, whole + half[: len(half) // 2]))
    agent.lines.wait(lambda ls: len(paths(ls, "cut")) == 4, what="the whole message's entries")
    s.close()  # the second message is never finished
    wait_for(lambda: agent.metric("logtrain_input_connections", input="envoy") == 0, 10,
             what="the cut stream to end")
    assert send(agent.envoy_port, [tagged("v3", 3, "aftercut")]) == b""
    agent.lines.wait(lambda ls: len(paths(ls, "aftercut")) == 3)
    assert paths(agent.lines.read(), "cut") == {"/r/0", "/r/1", "/r/2", "/r/3"}
    assert agent.metric("logtrain_input_rejected_total", input="envoy",
                        reason="stream_broken") == broken + 1
    assert agent.proc.poll() is None and agent.healthy()


def test_garbage_bytes_on_the_port(agent):
    junk = [os.urandom(4096), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            PREFACE + os.urandom(2048),
            PREFACE + frame(4, 0, 0, b"") + frame(1, 4, 1, b"\xff" * 64),
            b"\x00" * 100_000]
    bystander = Stream(agent.envoy_port)
    for data in junk:
        with socket.create_connection(("127.0.0.1", agent.envoy_port), timeout=5) as s:
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                while s.recv(65536):  # the server answers with GOAWAY (or nothing) and closes
                    pass
            except OSError:
                pass  # reset by the server: as good as closed
        bystander.put(tagged("v3", 2, "junkby", start=2 * junk.index(data)))
    assert bystander.close() == b""
    agent.lines.wait(lambda ls: len(paths(ls, "junkby")) == 2 * len(junk))
    assert send(agent.envoy_port, [tagged("v2", 2, "afterjunk")], "v2") == b""
    agent.lines.wait(lambda ls: len(paths(ls, "afterjunk")) == 2)
    assert agent.proc.poll() is None and agent.healthy()


# ---------------------------------------------------------------- cooperative scheduling


def test_heavy_access_log_traffic_does_not_stall_other_inputs(agent):
    """Four flooding streams from another process for 4 s while a syslog TCP
    client writes a line every 50 ms and /health is asked every 100 ms: every
    line arrives, each within a second, and /health stays fast."""
    before = agent.metric("logtrain_input_frames_total", input="envoy")
    flood = subprocess.Popen([sys.executable, str(HERE / "envoy_client.py"),
                              str(agent.envoy_port), "4", "4", "200"],
                             stdout=subprocess.PIPE, text=True)
    health: list[float] = []
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            health.append(agent.health_ms())
            time.sleep(0.1)

    t = threading.Thread(target=ask)
    t.start()
    sent: dict[str, float] = {}
    late: list[float] = []
    try:
        wait_for(lambda: agent.metric("logtrain_input_frames_total", input="envoy") > before + 2000,
                 10, what="the flood to start")
        with socket.create_connection(("127.0.0.1", agent.tcp_port)) as s:
            for i in range(50):
                sent[f"coop-{i}"] = time.monotonic()
                s.sendall(f"<13>1 2026-11-25T00:00:00Z coop app - - - coop-{i}\n".encode())
                deadline = time.monotonic() + 0.05
                while time.monotonic() < deadline:
                    for line in agent.coop.read():
                        word = line.rsplit(" ", 1)[-1]
                        if sent.get(word):
                            late.append(time.monotonic() - sent[word])
                            sent[word] = 0
                    time.sleep(0.005)
        during = agent.metric("logtrain_input_frames_total", input="envoy") - before
        flooding = flood.poll() is None
    finally:
        stop.set()
        t.join()
        out, _ = flood.communicate(timeout=60)
    agent.coop.wait(lambda ls: len(ls) == 50, 20,
                     what="all 50 syslog lines")
    assert flooding, "the flood ended before the syslog client did: the test proved nothing"
    assert during > 10_000, f"only {during} access-log entries arrived during the test"
    health.sort()
    print(f"entries during the test {during:.0f}, sent by the flood {out.strip()}; "
          f"syslog line delays (s) max {max(late or [0]):.3f}; "
          f"/health ms median {health[len(health) // 2]:.1f} max {health[-1]:.1f}")
    assert len(late) >= 40 and max(late) < 1.0
    assert health[len(health) // 2] < 100 and health[-1] < 1000


def test_grpc_is_imported_only_when_envoy_is_on(agent, tmp_path):
    def loads_grpc(pid: int) -> bool:
        return "cygrpc" in Path(f"/proc/{pid}/maps").read_text()

    assert loads_grpc(agent.proc.pid)
    other = Agent(tmp_path, {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(free_port())},
                  routes="").start()
    try:
        assert not loads_grpc(other.proc.pid)
    finally:
        other.stop()


def test_streams_holding_unfinished_messages_stay_within_memory(tmp_path):
    """200 streams on two connections, each sending most of a message as long
    as the limit: only ENVOY_MAX_STREAMS (64) are served, each holding at most
    ENVOY_MAX_MESSAGE (64 KiB) unfinished; the agent stays under the
    daemonset's 64 MiB, /health stays fast, and streams work afterwards."""
    port = free_port()
    a = Agent(tmp_path, {"ENVOY": "true", "ENVOY_PORT": str(port)},
              routes=f"web.shop file://{tmp_path}/out.log\n").start()
    try:
        idle = a.rss_mib()
        path = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"
        conns = [Conn(port) for _ in range(2)]
        held = sum(c.partial_message(1 + 2 * k, path, 65000, 60000)
                   for c in conns for k in range(100))
        health = a.health_ms()
        peak = a.peak_rss_mib()
        print(f"idle {idle:.1f} MiB; {held / 2**20:.1f} MiB sent in unfinished messages; "
              f"peak {peak:.1f} MiB; /health {health:.1f} ms")
        assert held > 64 * 50_000  # the attack reached at least the streams served
        assert peak < 64 and health < 1000
        assert "streams at ENVOY_MAX_STREAMS" in a.log()
        for c in conns:
            c.close()
        wait_for(lambda: a.metric("logtrain_input_connections", input="envoy") == 0, 10,
                 what="the streams to end")
        assert send(port, [tagged("v3", 3, "afterhold")]) == b""
        lines = Lines(tmp_path / "out.log")
        lines.wait(lambda ls: len(paths(ls, "afterhold")) == 3)
    finally:
        a.stop()


def test_streams_past_the_limit_are_refused(tmp_path):
    port = free_port()
    a = Agent(tmp_path, {"ENVOY": "true", "ENVOY_PORT": str(port), "ENVOY_MAX_STREAMS": "4"},
              routes=f"web.shop file://{tmp_path}/out.log\n").start()
    try:
        streams = [Stream(port) for _ in range(4)]
        for s in streams:
            s.put(tagged("v3", 1, "limit"))
        wait_for(lambda: a.metric("logtrain_input_connections", input="envoy") == 4, 10,
                 what="4 streams open")
        with pytest.raises(grpc.RpcError) as e:
            send(port, [tagged("v3", 1, "refused")], timeout=10)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        for s in streams:
            assert s.close() == b""
        assert send(port, [tagged("v3", 1, "admitted")]) == b""
        lines = Lines(tmp_path / "out.log")
        lines.wait(lambda ls: len(paths(ls, "limit")) == 1 and len(paths(ls, "admitted")) == 1)
        assert not paths(lines.read(), "refused")
    finally:
        a.stop()


def test_sigterm_with_streams_open(tmp_path):
    """Entries routed before SIGTERM are flushed; open streams do not hold
    the shutdown (the server gives them a second, then ends them)."""
    port = free_port()
    a = Agent(tmp_path, {"ENVOY": "true", "ENVOY_PORT": str(port)},
              routes=f"web.shop file://{tmp_path}/out.log\n").start()
    open_stream = Stream(port)
    open_stream.put(tagged("v3", 5, "term"))
    lines = Lines(tmp_path / "out.log")
    lines.wait(lambda ls: len(paths(ls, "term")) == 5)
    started = time.monotonic()
    assert a.stop() == 0
    assert time.monotonic() - started < 8
    with pytest.raises(grpc.RpcError):
        open_stream.close(timeout=10)
