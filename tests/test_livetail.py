"""Live tails (GET /tail, logtrain/livetail.py) and ``logtrain tail`` against
the real agent: syslog lines sent over TCP, drains that are real TCP
receivers, tails read by a real HTTP/1.1 client."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from peers import ROOT, Agent, LineSink, free_port, wait_for
from tailclient import TailClient

TOKEN = "tail-t0ken-xyz"


@pytest.fixture
def agents():
    started = []
    yield started
    for a in started:
        a.stop()


def tcp_agent(workdir, routes: str, agents: list, **env: str) -> Agent:
    port = free_port()
    a = Agent(workdir, {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(port), **env}, routes).start()
    a.tcp = port
    agents.append(a)
    return a


def line(host: str, seq: int, pad: str = "") -> bytes:
    return f"<14>1 2026-11-25T08:00:00.000001Z {host} app - - - seq={seq:06d} {pad}\n".encode()


def send(port: int, data: bytes, piece: int = 8192) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        for i in range(0, len(data), piece):
            s.sendall(data[i:i + piece])


SEQ = re.compile(rb" ([^ ]+) app - - - seq=(\d+)")


def seqs(lines: list[bytes]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for x in lines:
        m = SEQ.search(x)
        assert m, x
        out.setdefault(m.group(1).decode(), []).append(int(m.group(2)))
    return out


def test_three_concurrent_tails_each_get_exactly_their_hostnames_in_order(tmp_path, agents):
    sink = LineSink()
    # every line is checked: tails get the whole agent here, not TAIL_CPU_SHARE
    a = tcp_agent(tmp_path, f"app-a syslog+tcp://127.0.0.1:{sink.port}\n", agents,
                  TAIL_CPU_SHARE="1")
    t1 = TailClient(a.http_port, ["app-a"])  # text/plain: RFC5424 lines
    t2 = TailClient(a.http_port, ["app-b", "app-c"], "application/x-ndjson")  # no route: dead
    t3 = TailClient(a.http_port, ["APP-*"], "text/event-stream")  # a glob, any case
    assert [t.status for t in (t1, t2, t3)] == [200, 200, 200]
    assert t1.headers["Content-Type"].startswith("text/plain")
    assert t2.headers["Content-Type"] == "application/x-ndjson"
    assert t3.headers["Content-Type"] == "text/event-stream"
    assert a.metric("logtrain_tails") == 3
    n = 3000
    # one connection mixes three hostnames per batch, another sends one hostname only
    mixed = b"".join(line(h, i) for i in range(n) for h in ("app-a", "app-b", "other"))
    only_c = b"".join(line("app-c", i) for i in range(n))
    threads = [threading.Thread(target=send, args=(a.tcp, d)) for d in (mixed, only_c)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = list(range(n))
    t1.wait(lambda: len(t1.lines()) >= n, what="tail 1")
    t2.wait(lambda: len(t2.lines()) >= 2 * n, what="tail 2")
    t3.wait(lambda: len(t3.events()) >= 3 * n, what="tail 3")
    time.sleep(0.3)  # anything more would be a line that is not theirs
    assert seqs(t1.lines()) == {"app-a": every}
    assert all(x.startswith(b"<14>1 2026-11-25T08:00:00.000001Z app-a app - - - seq=")
               for x in t1.lines())
    got2: dict[str, list[int]] = {}
    for p in t2.json_lines():
        assert p["tag"] == "app" and p["severity"] == 6
        got2.setdefault(p["hostname"], []).append(int(p["message"].split("=")[1]))
    assert got2 == {"app-b": every, "app-c": every}
    got3: dict[str, list[int]] = {}
    for kind, p in t3.events():
        assert kind == "message"
        got3.setdefault(p["hostname"], []).append(int(p["message"].split("=")[1]))
    assert got3 == {"app-a": every, "app-b": every, "app-c": every}
    # the drain still got its lines, the dead ones were still counted dead
    assert len(sink.wait_lines(n)) == n
    assert a.metric("logtrain_dead_packets_total") == 3 * n
    assert a.metric("logtrain_tail_dropped_total") == 0
    for t in (t1, t2, t3):
        t.close()
    wait_for(lambda: a.metric("logtrain_tails") == 0, 2, what="tails removed")
    sink.close()


def _vmhwm_mib(pid: int) -> float:
    for x in open(f"/proc/{pid}/status"):
        if x.startswith("VmHWM:"):
            return int(x.split()[1]) / 1024
    return 0.0


def test_a_tail_that_stops_reading_loses_only_its_own_lines_and_says_how_many(tmp_path, agents):
    s1, s2 = LineSink(), LineSink()
    routes = (f"flood syslog+tcp://127.0.0.1:{s1.port}\n"
              f"flood syslog+tcp://127.0.0.1:{s2.port}\n")
    a = tcp_agent(tmp_path, routes, agents, TAIL_BUFFER_SIZE="65536")
    # a client that sends its request, then reads nothing for the whole flood
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", a.http_port))
    slow.sendall(b"GET /tail?hostname=flood HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_for(lambda: a.metric("logtrain_tails") == 1, 5, what="the tail attached")
    before = a.rss_mib()
    n = 100_000
    pad = "p" * 100
    data = b"".join(line("flood", i, pad) for i in range(n))
    peak_queue = 0
    sender = threading.Thread(target=send, args=(a.tcp, data, 65536))
    sender.start()
    while sender.is_alive():
        with urllib.request.urlopen(f"http://127.0.0.1:{a.http_port}/status.json") as r:
            tails = json.load(r)["tails"]
        peak_queue = max(peak_queue, tails[0]["queued_bytes"])
        time.sleep(0.05)
    sender.join()
    # every drain still gets every line, once (a drain's pool of connections
    # may deliver batches out of order)
    for sink in (s1, s2):
        sink.wait_lines(n, timeout=60)
        time.sleep(0.2)
        assert sorted(seqs(sink.lines())["flood"]) == list(range(n))
    peak = _vmhwm_mib(a.proc.pid)
    assert a.metric("logtrain_drain_dropped_total") == 0
    dropped = a.metric("logtrain_tail_dropped_total")
    assert dropped > 0
    # the tail's queue stayed within TAIL_BUFFER_SIZE plus one batch, and the agent small
    assert peak_queue <= 65536 + 128 * 1024, peak_queue
    assert peak < 48, (before, peak)
    # now the client reads: its lines, and markers exactly where lines are missing
    slow.settimeout(10)
    buf = b""
    head_end = -1
    expected, pending, markers = 0, 0, 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        buf += slow.recv(65536)
        if head_end < 0:
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                continue
            assert buf.startswith(b"HTTP/1.1 200 OK"), buf[:200]
            buf = buf[head_end + 4:]
        # decode the chunks received so far
        body, rest = b"", buf
        while True:
            size_end = rest.find(b"\r\n")
            if size_end < 0:
                break
            size = int(rest[:size_end], 16)
            if len(rest) < size_end + 2 + size + 2:
                break
            body += rest[size_end + 2:size_end + 2 + size]
            rest = rest[size_end + 4 + size:]
        *complete, _ = body.split(b"\n")
        expected, pending, markers = 0, 0, 0
        for x in complete:
            m = re.search(rb'\[logtrain dropped="(\d+)"\]', x)
            if m:
                assert b" logtrain logtrain - DROPPED " in x
                pending += int(m.group(1))
                markers += 1
                continue
            s = int(SEQ.search(x).group(2))
            assert s - expected == pending, (s, expected, pending)
            expected, pending = s + 1, 0
        if expected + pending == n:
            break
    assert expected + pending == n
    assert markers >= 1
    assert a.metric("logtrain_tail_dropped_total") == dropped
    slow.close()
    wait_for(lambda: a.metric("logtrain_tails") == 0, 2, what="the tail removed")
    s1.close()
    s2.close()


def test_tail_auth_limits_and_disconnect(tmp_path, agents):
    secret_url = "https://someone:pa55word@127.0.0.1:1/x?token=t0ps3cret"
    a = tcp_agent(tmp_path, f"auth-* {secret_url}\n", agents, API_TOKEN=TOKEN, MAX_TAILS="2",
                  SHUTDOWN_TIMEOUT="1")  # its drain never answers
    # refused without the token, with a wrong one, with a malformed request
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic " + TOKEN},
                    {"Cookie": "logtrain-session=" + TOKEN}):
        t = TailClient(a.http_port, ["auth-1"], headers=headers)
        assert t.status == 401, headers
    assert a.metric("logtrain_tails") == 0
    assert a.metric("logtrain_http_rejected_total", reason="unauthorized") >= 4
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert TailClient(a.http_port, [], headers=auth).status == 400
    assert TailClient(a.http_port, ["has space"], headers=auth).status == 400
    assert a.request("GET", "/status.json")[0] == 401
    # MAX_TAILS: a third is refused with 429, counted
    t1 = TailClient(a.http_port, ["auth-1"], headers=auth)
    t2 = TailClient(a.http_port, ["auth-*"], "application/x-ndjson", headers=auth)
    assert (t1.status, t2.status) == (200, 200)
    t3 = TailClient(a.http_port, ["auth-1"], headers=auth)
    assert t3.status == 429 and t3.headers.get("Retry-After")
    assert a.metric("logtrain_tails_refused_total", reason="max_tails") == 1
    # a disconnect removes the tail at once: the next one is taken
    t1.close()
    started = time.monotonic()
    wait_for(lambda: a.metric("logtrain_tails") == 1, 2, 0.01, what="the tail removed")
    assert time.monotonic() - started < 1.0
    t4 = TailClient(a.http_port, ["auth-1"], headers=auth)
    assert t4.status == 200
    send(a.tcp, line("auth-1", 1) + line("auth-2", 2))
    t4.wait(lambda: len(t4.lines()) >= 1)
    t2.wait(lambda: len(t2.lines()) >= 2)
    assert [p["hostname"] for p in t2.json_lines()] == ["auth-1", "auth-2"]
    # the page's session: a wrong token is refused, the right one gives the cookie
    st, _, _ = a.post("/session", json.dumps({"token": "wrong"}).encode())
    assert st == 401
    st, hdrs, _ = a.post("/session", json.dumps({"token": TOKEN}).encode())
    assert st == 204
    cookie = hdrs["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    value = cookie.split(";")[0]
    st, _, body = a.request("GET", "/status.json", headers={"Cookie": value})
    assert st == 200 and json.loads(body)["max_tails"] == 2
    # the cookie opens the page's endpoints only, never the routes API
    assert a.request("GET", "/routes", headers={"Cookie": value})[0] == 401
    # no page, endpoint, tail or log line shows the drain URL's credentials
    t2.close()
    t4.close()
    wait_for(lambda: a.metric("logtrain_tails") == 0, 2, what="tails removed")
    t5 = TailClient(a.http_port, ["*"], headers={"Cookie": value})
    assert t5.status == 200
    shown = [a.request("GET", p, headers=auth)[2] for p in ("/", "/status.json", "/routes", "/metrics")]
    t5.close()
    shown += [a.log().encode(), t5.data, t2.data, t4.data]
    for text in shown:
        assert b"pa55word" not in text and b"t0ps3cret" not in text
    status = json.loads(shown[1])
    assert status["datasources"][0]["routes"][0]["endpoint"].startswith("https://")


def test_logtrain_tail_follows_across_an_agent_restart(tmp_path, agents):
    http_port, tcp_port = free_port(), free_port()
    env = {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(tcp_port), "HTTP_PORT": str(http_port),
           "API_TOKEN": TOKEN}
    a = Agent(tmp_path / "one", env, "# no routes: tails see dead packets\n").start()
    agents.append(a)
    cli = subprocess.Popen([sys.executable, "-m", "logtrain", "tail", "restart-*", "--json",
                            "--url", f"http://127.0.0.1:{http_port}", "--token", TOKEN],
                           cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out: list[dict] = []
    err: list[bytes] = []
    threading.Thread(target=lambda: [out.append(json.loads(x)) for x in cli.stdout],
                     daemon=True).start()
    threading.Thread(target=lambda: [err.append(x) for x in cli.stderr], daemon=True).start()
    try:
        wait_for(lambda: a.metric("logtrain_tails") == 1, 15, what="logtrain tail attached")
        send(tcp_port, line("restart-1", 1) + line("nope", 2))
        wait_for(lambda: len(out) >= 1, 10, what="the first line")
        assert a.stop(signal.SIGTERM) == 0
        b = Agent(tmp_path / "two", env, "").start()
        agents.append(b)
        wait_for(lambda: b.metric("logtrain_tails") == 1, 15, what="logtrain tail reconnected")
        send(tcp_port, line("restart-2", 3))
        wait_for(lambda: len(out) >= 2, 10, what="a line after the restart")
        time.sleep(0.2)
        assert [(p["hostname"], p["message"]) for p in out] == [
            ("restart-1", "seq=000001 "), ("restart-2", "seq=000003 ")]
        assert cli.poll() is None
        assert any(b"reconnected" in x for x in err), err
    finally:
        cli.send_signal(signal.SIGINT)
        cli.wait(10)
    # a wrong token ends the command with its reason, not retries
    bad = subprocess.run([sys.executable, "-m", "logtrain", "tail", "x", "--url",
                          f"http://127.0.0.1:{http_port}", "--token", "wrong"],
                         cwd=str(ROOT), capture_output=True, timeout=30)
    assert bad.returncode == 2 and b"401" in bad.stderr


def paced(port: int, host: str, rate: int, seconds: float, pad: str) -> int:
    """Sends ``rate`` lines a second of ``host`` for ``seconds``; returns how many."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        start = time.monotonic()
        sent = 0
        while sent < rate * seconds:
            due = min(int(rate * seconds), int((time.monotonic() - start) * rate) + 1)
            s.sendall(b"".join(line(host, i, pad) for i in range(sent, due)))
            sent = due
            time.sleep(0.005)
    return sent


def test_a_tail_of_one_application_loses_nothing_beside_other_traffic(tmp_path, agents):
    """Default TAIL_BUFFER_SIZE and TAIL_CPU_SHARE: 5,000 lines/s of the
    tailed hostname all arrive, in text and as SSE, while 20,000 lines/s of
    other hostnames flow through the same agent."""
    sink = LineSink()
    a = tcp_agent(tmp_path, f"* syslog+tcp://127.0.0.1:{sink.port}\n", agents)
    text = TailClient(a.http_port, ["steady-app"])
    sse = TailClient(a.http_port, ["steady-*"], "text/event-stream")
    other = threading.Thread(target=paced, args=(a.tcp, "noise", 20_000, 3, "n" * 100))
    other.start()
    n = paced(a.tcp, "steady-app", 5000, 3, "s" * 100)
    other.join()
    try:
        text.wait(lambda: len(text.lines()) >= n, what="the text tail")
        sse.wait(lambda: len(sse.events()) >= n, what="the SSE tail")
    except AssertionError:
        with urllib.request.urlopen(f"http://127.0.0.1:{a.http_port}/metrics") as r:
            drops = [x for x in r.read().decode().splitlines() if "tail_dropped" in x]
        raise AssertionError(f"{drops}; markers "
                             f"{[p for k, p in sse.events() if k == 'dropped']}") from None
    assert seqs(text.lines()) == {"steady-app": list(range(n))}
    assert [int(p["message"].split("=")[1].split()[0]) for _, p in sse.events()] == list(range(n))
    assert a.metric("logtrain_tail_dropped_total") == 0
    sink.wait_lines(n + 60_000, timeout=60)
    text.close()
    sse.close()
    sink.close()


def test_tails_never_take_the_connections_kept_for_health(tmp_path, agents):
    """At MAX_CONNECTIONS the server keeps a few connections for one bodiless
    GET each (/health): a tail is refused there, and /health still answers."""
    a = tcp_agent(tmp_path, "# none\n", agents, MAX_CONNECTIONS="2")
    tails = [TailClient(a.http_port, ["busy"]) for _ in range(2)]
    assert [t.status for t in tails] == [200, 200]
    extra = [TailClient(a.http_port, ["busy"]) for _ in range(3)]
    assert [t.status for t in extra] == [503, 503, 503]
    assert a.metric("logtrain_tails") == 2
    assert a.metric("logtrain_tails_refused_total", reason="max_connections") == 3
    assert a.health_ms() < 1000
    for t in tails:
        t.close()
