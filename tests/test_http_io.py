"""HTTP inputs and the HTTP, file, stdout and UDP drains, against real servers."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from peers import Agent, free_port, make_certs, wait_for

LINE = b"<14>1 2026-11-24T00:00:00.5Z web-1 api - - - "


class Recorder(ThreadingHTTPServer):
    """An HTTP/1.1 server that records every request; ``statuses`` scripts
    the answers (then 200)."""

    daemon_threads = True

    def __init__(self, statuses: list[int] | None = None, tls: ssl.SSLContext | None = None,
                 port: int = 0) -> None:
        self.requests: list[dict] = []
        self.statuses = list(statuses or [])
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)
        if tls:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def bodies(self, ok_only: bool = True) -> list[bytes]:
        return [r["body"] for r in self.requests if r["status"] == 200 or not ok_only]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        srv: Recorder = self.server
        with srv.lock:
            status = srv.statuses.pop(0) if srv.statuses else 200
            srv.requests.append({"path": self.path, "body": body,
                                 "headers": {k.lower(): v for k, v in self.headers.items()},
                                 "peer": self.client_address[1], "status": status,
                                 "t": time.monotonic()})
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "0.5")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def run_agent(tmp_path):
    started = []

    def start(routes: str, **env) -> Agent:
        port = free_port()
        a = Agent(tmp_path / f"agent{len(started)}",
                  {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(port), "HTTP_EVENTS": "true",
                   "HTTP_SYSLOG": "true", **env}, routes).start()
        a.tcp = port
        started.append(a)
        return a

    yield start
    for a in started:
        a.stop()


def send_tcp(port: int, lines: list[bytes]) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"".join(LINE + m + b"\n" for m in lines))


def test_events_input_forms(run_agent, tmp_path):
    out = tmp_path / "out.log"
    a = run_agent(f"*  file://{out}\n")
    one = {"hostname": "h1", "tag": "t1", "message": "single", "severity": 3, "facility": 4,
           "time": "2026-11-24T01:02:03.456Z"}
    assert a.post("/events", json.dumps(one).encode())[0] == 200
    arr = [{"hostname": "h2", "tag": "t2", "message": f"arr-{i}"} for i in range(3)]
    assert a.post("/events", json.dumps(arr).encode())[0] == 200
    nd = "\n".join(json.dumps({"hostname": "h3", "tag": "t3", "message": f"nd-{i}"}) for i in range(3))
    status, _, body = a.post("/events", nd.encode())
    assert status == 200 and json.loads(body) == {"accepted": 3, "rejected": 0}
    wait_for(lambda: out.exists() and len(out.read_text().splitlines()) == 7, 5, what="7 lines")
    lines = out.read_text().splitlines()
    assert lines[0] == "<35>1 2026-11-24T01:02:03.456Z h1 t1 - - - single"  # facility 4 * 8 + 3
    assert [x.rsplit(" ", 1)[1] for x in lines[1:]] == ["arr-0", "arr-1", "arr-2", "nd-0", "nd-1", "nd-2"]
    assert lines[1].startswith("<0>1 2026-")  # severity and facility default to 0, time to now
    assert a.post("/nowhere", b"x")[0] == 404
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://127.0.0.1:{a.http_port}/events")
    assert e.value.code == 405


def test_syslog_input_logplex(run_agent, tmp_path):
    out = tmp_path / "out.log"
    a = run_agent(f"*  file://{out}\n")
    frames = [b"<190>1 2026-11-24T00:00:00+00:00 host app web.1 - - logplex line %d" % i for i in range(5)]
    body = b"".join(b"%d %s" % (len(f), f) for f in frames)
    status, _, resp = a.post("/syslog", body, {"Content-Type": "application/logplex-1",
                                               "Logplex-Msg-Count": "5"})
    assert status == 200 and json.loads(resp)["accepted"] == 5
    wait_for(lambda: out.exists() and len(out.read_text().splitlines()) == 5, 5, what="5 lines")
    # PROCID web.1 is what the sender wrote, and leaves as it came
    assert out.read_text().splitlines()[4] == "<190>1 2026-11-24T00:00:00+00:00 host app web.1 - - logplex line 4"


def test_http_json_drain_keepalive(run_agent):
    srv = Recorder()
    a = run_agent(f"web-*  http://127.0.0.1:{srv.port}/drain?app=x\n")
    send_tcp(a.tcp, [b"json-%d \"quoted\" \\ \xc3\xa9" % i for i in range(60)])
    wait_for(lambda: len(srv.requests) == 60, 10, what="60 posts")
    seen = []
    for r in srv.requests:
        assert r["path"] == "/drain?app=x"
        assert r["headers"]["content-type"] == "application/json"
        p = json.loads(r["body"])
        assert set(p) == {"severity", "facility", "hostname", "tag", "time", "message"}
        assert (p["severity"], p["facility"], p["hostname"], p["tag"], p["time"]) == (
            6, 1, "web-1", "api", "2026-11-24T00:00:00.5Z")
        seen.append(p["message"])
    assert sorted(seen) == sorted(f'json-{i} "quoted" \\ \u00e9' for i in range(60))
    assert len({r["peer"] for r in srv.requests}) <= 4  # kept alive, not one connection per post


def test_syslog_http_drain_batches_once_a_second(run_agent):
    srv = Recorder()
    a = run_agent(f"*  syslog+http://127.0.0.1:{srv.port}/logs\n")
    for burst in range(6):
        send_tcp(a.tcp, [b"b%d-%d" % (burst, i) for i in range(50)])
        time.sleep(0.25)
    wait_for(lambda: sum(r["body"].count(b"\n") for r in srv.requests) == 300, 10, what="300 lines")
    assert 1 <= len(srv.requests) <= 4, len(srv.requests)  # ~1.5 s of lines, posted once a second
    lines = b"".join(r["body"] for r in srv.requests).decode().splitlines()
    assert sorted(x.rsplit(" ", 1)[1] for x in lines) == sorted(f"b{b}-{i}" for b in range(6) for i in range(50))
    assert lines[0].startswith("<14>1 2026-11-24T00:00:00.5Z web-1 api - - - ")
    assert srv.requests[0]["headers"]["content-type"] == "application/syslog"


def test_syslog_http_octet_framing_is_logplex(run_agent):
    srv = Recorder()
    a = run_agent(f"*  syslog+http://127.0.0.1:{srv.port}/logs?framing=octet\n")
    send_tcp(a.tcp, [b"lp-%d" % i for i in range(10)])
    wait_for(lambda: srv.requests, 5, what="a post")
    r = srv.requests[0]
    assert r["headers"]["content-type"] == "application/logplex-1"
    assert r["headers"]["logplex-msg-count"] == "10"
    body, frames = r["body"], []
    while body:
        n, rest = body.split(b" ", 1)
        frames.append(rest[: int(n)])
        body = rest[int(n):]
    assert frames == [LINE + b"lp-%d" % i for i in range(10)]


def test_http_drain_retries_5xx_and_drops_4xx(run_agent):
    flaky = Recorder(statuses=[500, 503, 500])
    refusing = Recorder(statuses=[400] * 5)
    a = run_agent(f"*  http://127.0.0.1:{flaky.port}/\n*  http://127.0.0.1:{refusing.port}/\n",
                  DRAIN_BACKOFF_MAX="0.2")
    send_tcp(a.tcp, [b"retry-%d" % i for i in range(5)])
    wait_for(lambda: len(flaky.bodies()) == 5, 10, what="delivery after the 5xx answers")
    assert sorted(json.loads(b)["message"] for b in flaky.bodies()) == [f"retry-{i}" for i in range(5)]
    wait_for(lambda: len(refusing.requests) == 5, 5, what="the 4xx endpoint asked once per line")
    time.sleep(0.5)
    assert len(refusing.requests) == 5  # 400 is not retried
    assert a.metric("logtrain_drain_dropped_total", reason="rejected") == 5
    assert a.metric("logtrain_drain_errors_total") >= 3
    assert a.healthy()


def test_basic_auth_from_url_and_password_masked(run_agent):
    srv = Recorder()
    a = run_agent(f"*  http://drainuser:s3cr3t-pw@127.0.0.1:{srv.port}/x\n", LOG_LEVEL="debug")
    send_tcp(a.tcp, [b"auth"])
    wait_for(lambda: srv.requests, 5, what="a post")
    auth = srv.requests[0]["headers"]["authorization"]
    assert auth == "Basic " + base64.b64encode(b"drainuser:s3cr3t-pw").decode()
    metrics = json.dumps(a.metrics())
    assert "s3cr3t-pw" not in metrics and "drainuser:****@" in metrics
    assert "s3cr3t-pw" not in a.log() and "drainuser:****@" in a.log()


def test_https_drain_verifies_unless_insecure(run_agent, tmp_path):
    certs = make_certs(tmp_path / "certs")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(certs["server.pem"]), str(certs["server.key"]))
    strict, lax = Recorder(tls=ctx), Recorder(tls=ctx)
    a = run_agent(f"*  https://localhost:{strict.port}/\n*  https://localhost:{lax.port}/?insecure=true\n",
                  DRAIN_BACKOFF_MAX="0.2")
    send_tcp(a.tcp, [b"tls-%d" % i for i in range(3)])
    wait_for(lambda: len(lax.requests) == 3, 10, what="the insecure drain's posts")
    assert lax.requests[0]["path"] == "/"  # insecure= is ours, not sent on
    wait_for(lambda: a.metric("logtrain_drain_errors_total", drain=f"https://localhost:{strict.port}/") >= 2,
             10, what="verification failures")
    assert strict.requests == []
    assert "CERTIFICATE_VERIFY_FAILED" in a.log()


def test_file_and_stdout_drains(run_agent, tmp_path):
    out = tmp_path / "sub" / "dir" / "out.log"
    a = run_agent(f"*  file://{out}\n*  stdout://\n")
    event = {"hostname": "web-1", "tag": "api", "time": "2026-11-24T00:00:00.5Z", "severity": 6,
             "facility": 1, "message": "multi\nline\n"}
    assert a.post("/events", json.dumps(event).encode())[0] == 200
    send_tcp(a.tcp, [b"plain"])
    wait_for(lambda: out.exists() and len(out.read_text().splitlines()) == 2, 5, what="file lines")
    # a newline inside a message becomes a space; the trailing one goes
    expect = [(LINE + b"multi line").decode(), (LINE + b"plain").decode()]
    assert out.read_text().splitlines() == expect
    wait_for(lambda: a.stdout_path.read_text().splitlines() == expect, 5, what="stdout lines")


def test_udp_drain_payload_limit(run_agent):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    a = run_agent(f"*  syslog+udp://127.0.0.1:{rx.getsockname()[1]}?maxlen=200\n")
    send_tcp(a.tcp, [b"short", "long-\u00e9".encode() * 100])
    got = sorted((rx.recv(65535) for _ in range(2)), key=len)
    rx.close()
    assert got[0] == LINE + b"short"
    assert len(got[1]) <= 200 and got[1].startswith(LINE + b"long-")
    got[1].decode("utf-8")  # cut on a character boundary


def test_metrics_and_health(run_agent):
    a = run_agent("*  stdout://\n")
    send_tcp(a.tcp, [b"m1", b"m2"])
    wait_for(lambda: a.metric("logtrain_drain_sent_total", drain="stdout://") == 2, 5, what="sent=2")
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{a.http_port}/metrics").read().decode()
    assert "# TYPE logtrain_drain_sent_total counter" in text
    assert 'logtrain_input_frames_total{input="syslog_tcp"} 2' in text
    assert "logtrain_routes 1" in text
    assert urllib.request.urlopen(f"http://127.0.0.1:{a.http_port}/health").read() == b"ok\n"


def test_a_body_larger_than_the_drain_buffer_is_accepted_whole(run_agent, tmp_path):
    """One POST can carry more than DRAIN_BUFFER_SIZE: it is routed in slices
    with backpressure between them, not refused forever with 503."""
    out = tmp_path / "big.log"
    agent = run_agent(f"* file://{out}\n", DRAIN_BUFFER_SIZE="1M",
                      HTTP_MAX_BODY="4M")
    n = 20000
    body = b"".join(LINE + b"big %06d %s\n" % (i, b"x" * 120) for i in range(n))
    assert len(body) > 3 << 20
    status, _, text = agent.post("/syslog", body)
    assert status == 200 and json.loads(text)["accepted"] == n
    wait_for(lambda: out.exists() and out.read_bytes().count(b"\n") == n, 15)
    lines = out.read_bytes().splitlines()
    assert [int(line.split(b" big ")[1][:6]) for line in lines] == list(range(n))


def test_http_drain_ndjson_batches_and_retries_429_and_connection_errors(run_agent):
    """batch=ndjson posts a second's packets as one NDJSON body; 429 (after
    its Retry-After), 503 and an endpoint not yet listening are retried until
    every packet has arrived once."""
    busy = Recorder(statuses=[429, 503])
    late_port = free_port()
    a = run_agent(f"*  http://127.0.0.1:{busy.port}/bulk?batch=ndjson&app=x\n"
                  f"*  http://127.0.0.1:{late_port}/one\n", DRAIN_BACKOFF_MAX="0.3")
    send_tcp(a.tcp, [b"nd-%d" % i for i in range(40)])
    wait_for(lambda: a.metric("logtrain_drain_errors_total",
                              drain=f"http://127.0.0.1:{late_port}/one") >= 2, 10,
             what="connection errors")
    late = Recorder(port=late_port)  # the endpoint comes up
    wait_for(lambda: len(busy.bodies()) >= 1 and sum(b.count(b"\n") for b in busy.bodies()) == 40,
             10, what="40 NDJSON lines")
    wait_for(lambda: len(late.bodies()) == 40, 10, what="40 posts once it listens")
    assert [r["status"] for r in busy.requests[:2]] == [429, 503]
    # Retry-After: 0.5, capped by DRAIN_BACKOFF_MAX (0.3); a first backoff is 0.05-0.15 s
    assert busy.requests[1]["t"] - busy.requests[0]["t"] >= 0.28
    assert len(busy.bodies()) <= 3  # batched, not a post per packet
    ok = [r for r in busy.requests if r["status"] == 200]
    assert ok[0]["path"] == "/bulk?app=x"  # batch= is ours, not sent on
    assert ok[0]["headers"]["content-type"] == "application/x-ndjson"
    lines = [json.loads(x) for b in busy.bodies() for x in b.splitlines()]
    assert sorted(p["message"] for p in lines) == sorted(f"nd-{i}" for i in range(40))
    assert sorted(json.loads(b)["message"] for b in late.bodies()) == sorted(f"nd-{i}" for i in range(40))
    assert len({r["peer"] for r in late.requests}) <= 4  # the keep-alive pool, not one per post
    assert a.metric("logtrain_drain_dropped_total") == 0
