"""End to end: util-linux logger -> the agent -> rsyslog, all real processes."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from collections import Counter

import pytest
from peers import Agent, Rsyslog, b64, free_port, logger, make_certs, port_open, wait_for

HOST = socket.gethostname()
N = 3000


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def rsyslog(tmp_path, certs):
    rs = Rsyslog(tmp_path / "rsyslog", certs).start()
    yield rs
    rs.stop()


@pytest.fixture
def agents():
    started = []
    yield started
    for a in started:
        a.stop()


def tcp_agent(workdir, routes: str, agents: list, **env: str) -> Agent:
    """An agent with a syslog TCP input, stopped by the ``agents`` fixture."""
    port = free_port()
    a = Agent(workdir, {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(port), **env}, routes).start()
    a.tcp = port
    agents.append(a)
    return a


def expected(tag: str, n: int) -> Counter:
    return Counter(f"{tag} msg-{i} h\u00e9llo \u2713 [x] end" for i in range(n))


def received(rs: Rsyslog, n: int) -> tuple[set, Counter]:
    lines = rs.wait_lines(n)
    time.sleep(0.3)  # anything beyond n would be a duplicate
    lines = rs.lines()
    hosts = {line.split(" ", 1)[0] for line in lines}
    return hosts, Counter(line.split(" ", 1)[1] for line in lines)


def tls_env(certs, port: int, ca: bool = True) -> dict:
    env = {"SYSLOG_TLS": "true", "SYSLOG_TLS_PORT": str(port),
           "SYSLOG_TLS_CERT_PEM": certs["server.pem"].read_text(),  # PEM text, as the original
           "SYSLOG_TLS_KEY_PEM": str(certs["server.key"])}  # or a path
    if ca:
        env["SYSLOG_TLS_CA_PEM"] = certs["ca.pem"].read_text()
    return env


class TLSBridge:
    """logger speaks no TLS: socat carries its TCP stream to the agent's TLS
    input, presenting the client certificate."""

    def __init__(self, certs, tls_port: int) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["socat", f"TCP-LISTEN:{self.port},bind=127.0.0.1,reuseaddr,fork",
             f"OPENSSL:127.0.0.1:{tls_port},cafile={certs['ca.pem']},cert={certs['client.pem']},"
             f"key={certs['client.key']},verify=1,commonname=localhost"],
            stderr=subprocess.DEVNULL)
        wait_for(lambda: port_open(self.port), 10, what="socat")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


CASES = {
    # name: (logger transport args, input, drain template)
    "tcp-octet-5424": (["-T", "--octet-count", "--rfc5424"], "tcp", "syslog+tcp://127.0.0.1:{tcp}"),
    "tcp-newline-3164": (["-T", "--rfc3164"], "tcp", "syslog+tcp://127.0.0.1:{tcp}?framing=octet"),
    "tcp-newline-5424": (["-T", "--rfc5424"], "tcp", "syslog+tcp://127.0.0.1:{tcp}"),
    "udp-5424": (["-d", "--rfc5424"], "udp", "syslog+udp://127.0.0.1:{udp}"),
    "udp-3164": (["-d", "--rfc3164"], "udp", "syslog://127.0.0.1:{udp}"),
    "tls-octet-5424": (["-T", "--octet-count", "--rfc5424"], "tls", "syslog+tls://localhost:{tls}?ca={ca}"),
    "tls-newline-3164": (["-T", "--rfc3164"], "tls", "syslog+tls://localhost:{tls}?ca={ca}&framing=octet"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_logger_through_agent_to_rsyslog(case, tmp_path, rsyslog, certs, agents):
    logger_args, kind, drain = CASES[case]
    drain = drain.format(tcp=rsyslog.tcp_port, udp=rsyslog.udp_port, tls=rsyslog.tls_port,
                         ca=b64(certs["ca.pem"]))
    port = free_port()
    env = {"tcp": {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(port)},
           "udp": {"SYSLOG_UDP": "true", "SYSLOG_UDP_PORT": str(port)},
           "tls": tls_env(certs, port)}[kind]
    agent = Agent(tmp_path / "agent", env, f"*  {drain}\n").start()
    agents.append(agent)
    target = port
    bridge = None
    if kind == "tls":
        bridge = TLSBridge(certs, port)
        target = bridge.port
    tag = case.replace("-", "_")
    text = "".join(f"msg-{i} h\u00e9llo \u2713 [x] end\n" for i in range(N))
    try:
        if kind == "udp":
            # paced so that the sender, not the test, is what a loss would show
            for i in range(0, N, 500):
                chunk = "".join(f"msg-{j} h\u00e9llo \u2713 [x] end\n" for j in range(i, min(N, i + 500)))
                logger(*logger_args, "-n", "127.0.0.1", "-P", str(target), "-t", tag, stdin=chunk)
                time.sleep(0.05)
        else:
            logger(*logger_args, "-n", "127.0.0.1", "-P", str(target), "-t", tag, stdin=text)
        hosts, got = received(rsyslog, N)
    finally:
        if bridge:
            bridge.stop()
    assert hosts == {HOST}
    assert got == expected(tag, N), f"missing {sum((expected(tag, N) - got).values())}, extra {sum((got - expected(tag, N)).values())}"
    assert agent.metric("logtrain_input_rejected_total") == 0
    assert agent.metric("logtrain_drain_sent_total") == N


def test_tls_client_certificate_required(tmp_path, rsyslog, certs, agents):
    port = free_port()
    agent = Agent(tmp_path / "agent", tls_env(certs, port),
                  f"*  syslog+tcp://127.0.0.1:{rsyslog.tcp_port}\n").start()
    agents.append(agent)
    # no client certificate
    ctx = ssl.create_default_context(cafile=str(certs["ca.pem"]))
    rejected = 0
    with socket.create_connection(("127.0.0.1", port)) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"<13>1 - h nocert - - - should not arrive\n")
                s.recv(1)  # TLS 1.3 reports the refusal on the first read
        except (ssl.SSLError, OSError):
            rejected += 1
    # a certificate from another CA
    other = make_certs(tmp_path / "other")
    ctx2 = ssl.create_default_context(cafile=str(certs["ca.pem"]))
    ctx2.load_cert_chain(str(other["client.pem"]), str(other["client.key"]))
    with socket.create_connection(("127.0.0.1", port)) as raw:
        try:
            with ctx2.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"<13>1 - h othercert - - - should not arrive\n")
                s.recv(1)
        except (ssl.SSLError, OSError):
            rejected += 1
    assert rejected == 2
    # a good client is served
    bridge = TLSBridge(certs, port)
    try:
        logger("-T", "--rfc5424", "-n", "127.0.0.1", "-P", str(bridge.port), "-t", "good",
               stdin="".join(f"good-{i}\n" for i in range(100)))
        lines = rsyslog.wait_lines(100)
    finally:
        bridge.stop()
    assert sorted(lines) == sorted(f"{HOST} good good-{i}" for i in range(100))
    wait_for(lambda: agent.metric("logtrain_input_connections_rejected_total",
                                  input="syslog_tls", reason="tls_handshake") == 2, 5,
             what="two refused handshakes counted")


class Sender(threading.Thread):
    """Writes numbered RFC5424 lines into a TCP input at a steady rate and
    remembers when each was sent."""

    def __init__(self, port: int, rate: int) -> None:
        super().__init__(daemon=True)
        self.port, self.rate = port, rate
        self.sent: dict[int, float] = {}
        self.stop_at = None
        self.halt = threading.Event()

    def run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port)) as s:
            seq = 0
            start = time.monotonic()
            while not self.halt.is_set():
                due = start + seq / self.rate
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                self.sent[seq] = time.monotonic()
                s.sendall(b"<14>1 2026-11-24T00:00:00Z seqhost seqapp - - - seq=%d\n" % seq)
                seq += 1

    def finish(self) -> None:
        self.halt.set()
        self.join(5)


def seqs(rs: Rsyslog) -> Counter:
    return Counter(int(line.rsplit("seq=", 1)[1]) for line in rs.lines() if "seq=" in line)


def test_routes_hot_reload_while_lines_flow(tmp_path, certs, agents):
    a = Rsyslog(tmp_path / "a").start()
    b = Rsyslog(tmp_path / "b").start()
    try:
        url_a = f"syslog+tcp://127.0.0.1:{a.tcp_port}"
        url_b = f"syslog+tcp://127.0.0.1:{b.tcp_port}"
        agent = tcp_agent(tmp_path / "agent", f"seqhost  {url_a}\n", agents)
        sender = Sender(agent.tcp, 400)
        sender.start()
        time.sleep(1.5)
        t_add = time.monotonic()
        agent.set_routes(f"seqhost  {url_a}\n*.never  {url_a}\nseq*  {url_b}\n")  # add B
        time.sleep(2.0)
        t_remove = time.monotonic()
        # remove A; a bad line is reported with its number and the others still load
        agent.set_routes(f"seq*  {url_b}\nnot-a-route\n")
        time.sleep(2.0)
        t_edit = time.monotonic()
        agent.set_routes(f"seq*  {url_a}?framing=octet\n")  # edit: B's line now points at A
        time.sleep(2.0)
        sender.finish()
        last = max(sender.sent)
        wait_for(lambda: seqs(a)[last] >= 1, 10, what="the last line at its final route")
        time.sleep(0.5)
        at_a, at_b = seqs(a), seqs(b)
    finally:
        a.stop()
        b.stop()

    def sent_in(lo, hi):
        return [s for s, t in sender.sent.items() if lo <= t < hi]

    # every line arrives, and only where its route pointed when it was sent (1 s to apply)
    for s in sent_in(0, t_add):
        assert at_a[s] == 1 and at_b[s] == 0, s
    for s in sent_in(t_add + 1.0, t_remove):
        assert at_a[s] == 1 and at_b[s] == 1, s
    for s in sent_in(t_remove + 1.0, t_edit):
        assert at_a[s] == 0 and at_b[s] == 1, s
    for s in sent_in(t_edit + 1.0, float("inf")):
        assert at_a[s] == 1 and at_b[s] == 0, s
    # and during each second of change each line went to the old or the new set
    for s in sent_in(t_add, t_add + 1.0) + sent_in(t_remove, t_remove + 1.0) + sent_in(t_edit, t_edit + 1.0):
        assert at_a[s] + at_b[s] >= 1, s
    assert all(n == 1 for n in at_a.values()) and all(n == 1 for n in at_b.values()), "duplicates"
    assert len(sent_in(t_add + 1.0, t_remove)) > 300
    assert f"{agent.routes_path}:2: expected 'HOSTNAME-OR-GLOB DRAIN-URL'" in agent.log()


def test_drain_outage_buffers_and_logs_once(tmp_path, rsyslog, agents):
    agent = tcp_agent(tmp_path / "agent", f"*  syslog+tcp://127.0.0.1:{rsyslog.tcp_port}\n", agents,
                      DRAIN_BACKOFF_MAX="0.5", DRAIN_PAUSE_INTERVAL="1")
    sender = Sender(agent.tcp, 1000)
    sender.start()
    time.sleep(1.5)
    t_stopping = time.monotonic()
    rsyslog.stop()
    t_stop = time.monotonic()  # rsyslogd has exited
    time.sleep(4.0)
    t_start = time.monotonic()
    rsyslog.start()
    time.sleep(1.5)
    sender.finish()
    last = max(sender.sent)
    try:
        wait_for(lambda: seqs(rsyslog)[last], 15, 0.2, what="the last line after the outage")
    except AssertionError:
        pass
    time.sleep(0.5)
    got = seqs(rsyslog)
    during = [s for s, t in sender.sent.items() if t_stop <= t < t_start]
    assert len(during) > 3000
    assert [s for s in during if not got[s]] == [], "lines sent during the outage were lost"
    # Plain TCP syslog has no acknowledgements: what the agent wrote while
    # rsyslogd was shutting down (it no longer reads, its socket is still
    # open) dies with that socket. Only that window may lose lines.
    lost = [s for s in sender.sent if not got[s]]
    assert all(t_stopping <= sender.sent[s] < t_stop for s in lost), lost
    assert len(lost) <= 50, lost
    assert all(n == 1 for n in got.values()), "duplicates"
    log = agent.log()
    name = f"syslog+tcp://127.0.0.1:{rsyslog.tcp_port}"
    assert log.count("drain unreachable") == 1, log
    assert log.count("drain recovered") == 1, log
    assert log.count("drain paused") <= 1, log
    assert log.count(name) < 10, "the outage was logged per line"
    assert agent.metric("logtrain_drain_dropped_total") == 0


def test_sigterm_delivers_buffered_lines(tmp_path, rsyslog, agents):
    agent = tcp_agent(tmp_path / "agent", f"*  syslog+tcp://127.0.0.1:{rsyslog.tcp_port}\n", [],
                      DRAIN_BACKOFF_MAX="0.5", DRAIN_PAUSE_INTERVAL="1")
    rsyslog.stop()
    with socket.create_connection(("127.0.0.1", agent.tcp)) as s:
        s.sendall(b"".join(b"<14>1 - h app - - - buffered=%d\n" % i for i in range(5000)))
    wait_for(lambda: agent.metric("logtrain_drain_buffer_bytes") > 0, 5, what="lines buffered")
    rsyslog.start()
    assert agent.stop() == 0
    lines = rsyslog.lines()
    assert sorted(lines) == sorted(f"h app buffered={i}" for i in range(5000))
    assert "logtrain stopped" in agent.log()
