"""Hostile input on every input: the agent counts what it rejects, keeps the
other frames of the same connection, and keeps serving other clients."""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time

import pytest
from peers import Agent, free_port, make_certs, wait_for

GOOD = b"<13>1 2026-11-24T00:00:00Z hostA app - - - "


def octet(frame: bytes) -> bytes:
    return b"%d %s" % (len(frame), frame)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def agent(tmp_path, certs):
    out = tmp_path / "out.log"
    ports = {"tcp": free_port(), "udp": free_port(), "tls": free_port()}
    a = Agent(tmp_path / "agent", {
        "SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(ports["tcp"]),
        "SYSLOG_UDP": "true", "SYSLOG_UDP_PORT": str(ports["udp"]),
        "SYSLOG_TLS": "true", "SYSLOG_TLS_PORT": str(ports["tls"]),
        "SYSLOG_TLS_CERT_PEM": str(certs["server.pem"]), "SYSLOG_TLS_KEY_PEM": str(certs["server.key"]),
        "HTTP_SYSLOG": "true", "HTTP_EVENTS": "true",
        "IDLE_TIMEOUT": "1", "MAX_CONNECTIONS": "20", "MAX_FRAME_SIZE": "60000",
    }, f"*  file://{out}\n").start()
    a.out = out
    a.ports = ports
    a.certs = certs
    yield a
    a.stop()


def messages(agent) -> list[str]:
    if not agent.out.exists():
        return []
    return [line.split(" - - - ", 1)[1] for line in agent.out.read_text(errors="replace").splitlines()]


def wait_messages(agent, want: set[str], timeout: float = 10) -> list[str]:
    wait_for(lambda: want <= set(messages(agent)), timeout, what=f"{len(want)} messages")
    return messages(agent)


def rejected(agent, inp: str, reason: str) -> float:
    return agent.metric("logtrain_input_rejected_total", input=inp, reason=reason)


def wait_rejections(agent, inp: str, reasons: dict[str, int]) -> None:
    for reason, n in reasons.items():
        wait_for(lambda r=reason, n=n: rejected(agent, inp, r) == n, 5, what=f"{inp} {reason}={n}")


class GoodClient(threading.Thread):
    """Another client, sending good lines while the hostile one does its worst."""

    def __init__(self, port: int, tag: str, n: int = 500) -> None:
        super().__init__(daemon=True)
        self.port, self.tag, self.n = port, tag, n

    def run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port)) as s:
            for i in range(self.n):
                s.sendall(GOOD + b"%s-%d\n" % (self.tag.encode(), i))
                if i % 50 == 0:
                    time.sleep(0.01)

    def expected(self) -> set[str]:
        return {f"{self.tag}-{i}" for i in range(self.n)}


def hostile_stream() -> tuple[bytes, set[str], dict[str, int]]:
    """A stream mixing every kind of bad frame with good ones, the messages
    that must arrive, and the rejections by reason."""
    parts = [
        GOOD + b"good-1\n",
        b"\x00\x01\x02binary junk\xff\xfe\n",  # no <PRI>: malformed
        b"<999>1 - h a - - - bad pri\n",  # malformed
        b"999999999 this is not a frame of that length\n",  # impossible count: bad_length
        GOOD + b"good-2\n",
        GOOD + b"bad-utf8-\xff\xfe-end\n",  # kept, with replacement characters
        GOOD + b"x" * (1 << 20) + b"\n",  # a 1 MiB line: oversized
        octet(GOOD + b"good-3"),
        octet(GOOD + b"y" * (70 << 10)),  # octet-counted, over MAX_FRAME_SIZE: oversized
        GOOD + b"good-4\r\n",
        b"<13>1 notatime h a - - - bad timestamp\n",  # malformed
        octet(GOOD + b"good-5"),
        b"100 " + GOOD + b"truncated",  # the stream ends inside this frame
    ]
    want = {"good-1", "good-2", "bad-utf8-\ufffd\ufffd-end", "good-3", "good-4", "good-5"}
    reasons = {"malformed": 3, "bad_length": 1, "oversized": 2, "truncated": 1}
    return b"".join(parts), want, reasons


def test_tcp_hostile_frames(agent):
    data, want, reasons = hostile_stream()
    good = GoodClient(agent.ports["tcp"], "other")
    good.start()
    with socket.create_connection(("127.0.0.1", agent.ports["tcp"])) as s:
        s.sendall(data)
    good.join()
    got = wait_messages(agent, want | good.expected())
    assert sorted(m for m in got if not m.startswith("other-")) == sorted(want)
    wait_rejections(agent, "syslog_tcp", reasons)
    assert agent.metric("logtrain_input_rejected_total", input="syslog_tcp") == sum(reasons.values())


def test_tcp_slow_sender_byte_by_byte(agent):
    data = GOOD + b"slow-1\n" + octet(GOOD + b"slow-2") + GOOD + b"slow-3\n"
    good = GoodClient(agent.ports["tcp"], "fast", 200)
    with socket.create_connection(("127.0.0.1", agent.ports["tcp"])) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        good.start()
        for i in range(len(data)):
            s.send(data[i : i + 1])
            time.sleep(0.002)
    good.join()
    wait_messages(agent, {"slow-1", "slow-2", "slow-3"} | good.expected())
    assert agent.metric("logtrain_input_rejected_total") == 0


def test_tcp_random_bytes(agent):
    rnd = os.urandom(256 << 10)
    good = GoodClient(agent.ports["tcp"], "during-junk")
    good.start()
    for _ in range(4):
        with socket.create_connection(("127.0.0.1", agent.ports["tcp"])) as s:
            s.sendall(rnd)
    good.join()
    wait_messages(agent, good.expected())
    # every frame the junk produced was either accepted or counted as rejected
    frames = agent.metric("logtrain_input_frames_total", input="syslog_tcp")
    malformed = rejected(agent, "syslog_tcp", "malformed")
    accepted = len(messages(agent)) - good.n
    assert malformed > 0 and frames == malformed + accepted + good.n
    assert agent.healthy()


def test_idle_client_closed_others_served(agent):
    idle = socket.create_connection(("127.0.0.1", agent.ports["tcp"]))
    idle.settimeout(5)
    good = GoodClient(agent.ports["tcp"], "while-idle", 100)
    good.start()
    t0 = time.monotonic()
    assert idle.recv(10) == b""  # the agent closed it
    assert 0.8 <= time.monotonic() - t0 < 4
    idle.close()
    good.join()
    wait_messages(agent, good.expected())
    assert agent.metric("logtrain_input_connections_rejected_total", input="syslog_tcp",
                        reason="idle_timeout") >= 1


def test_max_connections(tmp_path):
    out = tmp_path / "out.log"
    port = free_port()
    a = Agent(tmp_path / "agent", {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(port),
                                   "MAX_CONNECTIONS": "3"}, f"*  file://{out}\n").start()
    try:
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        time.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", port))
        extra.settimeout(5)
        assert extra.recv(10) == b""  # refused
        extra.close()
        assert a.metric("logtrain_input_connections_rejected_total", reason="max_connections") == 1
        held[0].sendall(GOOD + b"held-conn\n")
        held.pop(0).close()
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(GOOD + b"after-one-closed\n")
        wait_for(lambda: out.exists() and "after-one-closed" in out.read_text(), 5,
                 what="a new connection served")
        assert "held-conn" in out.read_text()
        for s in held:
            s.close()
    finally:
        a.stop()


def test_udp_hostile_datagrams(agent):
    port = agent.ports["udp"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        for d in [os.urandom(300), b"<13>1 - h a - - - ", b"no pri at all",
                  GOOD + b"u" * 65000,  # over MAX_FRAME_SIZE (60000)
                  GOOD + b"udp-utf8-\xc3\x28-end", GOOD + b"udp-good-1\n", octet(GOOD + b"x")]:
            s.sendto(d, ("127.0.0.1", port))
        for i in range(200):
            s.sendto(GOOD + b"udp-%d" % i, ("127.0.0.1", port))
    want = {"udp-utf8-\ufffd(-end", "udp-good-1"} | {f"udp-{i}" for i in range(200)}
    wait_messages(agent, want)
    # random bytes, a frame without MSG is fine ("" message), no PRI, an octet
    # count inside a datagram (datagrams are not framed): 3 malformed at least
    wait_for(lambda: rejected(agent, "syslog_udp", "oversized") == 1, 5, what="oversized datagram")
    mal = rejected(agent, "syslog_udp", "malformed")
    assert mal in (2, 3)  # 300 random bytes could, rarely, start with a valid <PRI>
    assert agent.metric("logtrain_input_frames_total", input="syslog_udp") == 207


def test_tls_hostile(agent):
    port = agent.ports["tls"]
    # junk instead of a TLS handshake
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(os.urandom(2000))
        s.settimeout(5)
        try:
            s.recv(100)
        except OSError:
            pass
    wait_for(lambda: agent.metric("logtrain_input_connections_rejected_total", input="syslog_tls",
                                  reason="tls_handshake") == 1, 5, what="refused handshake")
    # hostile frames inside a good TLS session
    data, want, reasons = hostile_stream()
    ctx = ssl.create_default_context(cafile=str(agent.certs["ca.pem"]))
    good = GoodClient(agent.ports["tcp"], "tcp-during-tls", 200)
    good.start()
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(data)
    good.join()
    got = wait_messages(agent, want | good.expected())
    assert sorted(m for m in got if not m.startswith("tcp-during-tls")) == sorted(want)
    wait_rejections(agent, "syslog_tls", reasons)


def test_http_syslog_hostile(agent):
    data, want, reasons = hostile_stream()
    status, _, body = agent.post("/syslog", data, {"Content-Type": "application/logplex-1"})
    assert status == 200, body
    import json

    summary = json.loads(body)
    assert summary["accepted"] == len(want)
    assert summary["rejected"] == sum(reasons.values())
    wait_messages(agent, want)
    for reason, n in reasons.items():
        assert rejected(agent, "http_syslog", reason) == n
    status, _, body = agent.post("/syslog", os.urandom(5000).replace(b"<", b"") + b"\n")
    assert status == 400 and b"malformed" in body
    status, _, body = agent.post("/syslog", b"")
    assert status == 400 and b"empty body" in body


def test_http_events_hostile(agent):
    cases = [
        (b"\xff\xfe{not utf8", 400, b"not UTF-8"),
        (b"{\"hostname\": \"h\", ", 400, b"invalid JSON"),
        (os.urandom(1000).replace(b"\n", b""), 400, b""),
        (b"[1, 2, 3]", 400, b"expected a JSON object"),
        (b'{"hostname": "h", "tag": "t", "message": 5}', 400, b"message"),
        (b'{"hostname": "h", "tag": "t", "message": "m", "severity": 9}', 400, b"severity"),
        (b'{"hostname": "h", "tag": "t", "message": "m", "time": "yesterday"}', 400, b"time"),
    ]
    for body, status, reason in cases:
        got, _, text = agent.post("/events", body)
        assert got == status, (body, text)
        assert reason in text, (body, text)
    # 11 MiB is over HTTP_MAX_BODY (4 MiB by default): refused before it is read
    got, _, text = agent.post("/events", b"x" * (11 << 20))
    assert got == 413
    # one good line among bad ones is delivered
    got, _, text = agent.post("/events", b'{"hostname":"h","tag":"t","message":"ndjson-good"}\nnope\n')
    assert got == 200 and b'"accepted": 1' in text and b'"rejected": 1' in text
    wait_messages(agent, {"ndjson-good"})
    assert agent.healthy()
