"""The trust policy of routes and the masking of credentials, against the real
agent: routes from the routes file (trusted), Postgres rows and the routes API
(untrusted unless ROUTE_TRUST says so), real TCP/UDP/HTTP receivers on
loopback, a real PostgreSQL server (tests/pgserver.py), a FIFO.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from peers import Agent, free_port, wait_for

from logtrain.urls import dsn_secrets, mask_dsn, mask_url, scrub

TOKEN = "api-Token-5e1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LINE = "<14>1 2026-11-24T00:00:00Z {host} app - - - {text}\n"


# ----------------------------------------------------------------------------- receivers


class TCPReceiver:
    """Accepts connections on 127.0.0.1 and keeps every line received."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.data = b""
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        with conn:
            while chunk := conn.recv(65536):
                self.data += chunk

    def close(self) -> None:
        self.sock.close()


class UDPReceiver:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.data = b""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                self.data += self.sock.recv(65536)
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()


class HTTPReceiver:
    def __init__(self) -> None:
        received = self.bodies = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                received.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def text(self) -> bytes:
        return b"".join(self.bodies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Sender:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.n = 0

    def send(self, host: str) -> str:
        self.n += 1
        mark = f"mark-{host}-{self.n}"
        self.sock.sendall(LINE.format(host=host, text=mark).encode())
        return mark

    def close(self) -> None:
        self.sock.close()


def arrives(sender: Sender, host: str, received, timeout: float = 5.0) -> None:
    marks: list[str] = []

    def seen() -> bool:
        marks.append(sender.send(host))
        data = received()
        return any(m.encode() in data for m in marks)

    wait_for(seen, timeout, 0.05, what=f"a line for {host}")


def start(tmp: Path, env: dict, routes: str | None = "") -> tuple[Agent, Sender]:
    tcp = free_port()
    base = {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(tcp), "DRAIN_BACKOFF_MAX": "0.2",
            "DRAIN_PAUSE_AFTER": "1000", "DATASOURCE_BACKOFF_MAX": "0.5",
            "SHUTDOWN_TIMEOUT": "2"}
    base.update(env)
    agent = Agent(tmp / "agent", base, routes).start()
    return agent, Sender(tcp)


# ----------------------------------------------------------------------------- masking


SECRETS = {
    "userinfo": "pw-UserInfo-71",
    "api-key": "K-apikey-72",
    "private_token": "K-private-73",
    "auth": "K-auth-74",
    "pwd": "K-pwd-75",
    "client_secret": "K-client-76",
    "X-Amz-Signature": "K-amzsig-77",
    "fragment": "frag-Secret-78",
    "slack": "aBcDeFgHiJkLmNoPqRsTuVw9",
    "discord": "dIsCoRd_ToKeN-79abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ",
    "dsn": "dsn-Pass-80",
    "ssl": "dsn-SslPass-81",
}


def secret_urls(port: int) -> list[str]:
    s = SECRETS
    return [
        f"https://user:{s['userinfo']}@127.0.0.1:{port}/in?api-key={s['api-key']}&index=logs",
        f"http://127.0.0.1:{port}/x?private_token={s['private_token']}&auth={s['auth']}"
        f"&pwd={s['pwd']}&client_secret={s['client_secret']}#{s['fragment']}",
        f"syslog+http://127.0.0.1:{port}/up?X-Amz-Signature={s['X-Amz-Signature']}&framing=octet",
        f"https://127.0.0.1:{port}/services/T00000000/B00000000/{s['slack']}",
        f"https://127.0.0.1:{port}/api/webhooks/123456789012345678/{s['discord']}",
    ]


def test_mask_functions_cover_every_credential_form():
    urls = secret_urls(1)
    masked = [mask_url(u) for u in urls]
    for m in masked:
        for v in SECRETS.values():
            assert v not in m, m
    assert masked[0] == "https://user:****@127.0.0.1:1/in?api-key=****&index=logs"
    assert masked[1] == ("http://127.0.0.1:1/x?private_token=****&auth=****&pwd=****"
                         "&client_secret=****#****")
    assert masked[2] == "syslog+http://127.0.0.1:1/up?X-Amz-Signature=****&framing=octet"
    assert masked[3] == "https://127.0.0.1:1/services/T00000000/B00000000/****"
    assert masked[4] == "https://127.0.0.1:1/api/webhooks/123456789012345678/****"
    # harmless drain options stay readable; an auth scheme name is not a secret
    assert mask_url("es+https://h?auth=bearer&insecure=true&maxlen=900") == \
        "es+https://h?auth=bearer&insecure=true&maxlen=900"
    assert mask_url("syslog+tls://h:6514?ca=" + "Q" * 300) == "syslog+tls://h:6514?ca=QQQQQQQQQQQQQQQQ...300chars"
    assert mask_url("https://TOKEN-only-1@h/") == "https://****@h/"
    assert mask_url("https://h/?bare-token-value") == "https://h/?****"
    assert mask_url("https://h/elasticsearch-bulk/_bulk") == "https://h/elasticsearch-bulk/_bulk"
    assert mask_url("file:///var/log/app-2026-11-25-abcdef.log") == \
        "file:///var/log/app-2026-11-25-abcdef.log"  # a local path is no credential
    # DSNs: the key=value form and the URI form
    assert mask_dsn(f"host=db port=5432 user=me password={SECRETS['dsn']} dbname=x "
                    f"sslpassword='{SECRETS['ssl']} x'") == \
        "host=db port=5432 user=me password=**** dbname=x sslpassword=****"
    assert mask_dsn(f"postgres://me:{SECRETS['dsn']}@db/x?sslmode=require&password=y2") == \
        "postgres://me:****@db/x?sslmode=require&password=****"
    # libpq quotes a piece of a malformed string in its errors: scrubbed too
    _, secrets = dsn_secrets("host=db password=two words")
    assert scrub('missing "=" after "words" in connection info string', secrets) == \
        'missing "=" after "****" in connection info string'


def test_masking_in_log_metrics_routes_api_and_check_config(tmp_path: Path):
    """Every credential form in drain URLs (routes file) and a key=value
    DATABASE_URL: none shows in the agent's log, /metrics, GET /routes or
    check-config, while drains fail against a closed port and the database
    is unreachable."""
    dead = free_port()
    urls = secret_urls(dead)
    routes = "".join(f"h{i} {u}\n" for i, u in enumerate(urls))
    dsn = (f"host=127.0.0.1 port={free_port()} user=agent password={SECRETS['dsn']} "
           f"dbname=x sslpassword={SECRETS['ssl']}")
    env = {"POSTGRES": "true", "DATABASE_URL": dsn, "API_TOKEN": TOKEN,
           "DRAIN_CONNECT_TIMEOUT": "0.5"}
    agent, sender = start(tmp_path, env, routes)
    try:
        for i in range(len(urls)):
            sender.send(f"h{i}")
        wait_for(lambda: agent.metric("logtrain_drain_errors_total") >= len(urls), 10,
                 what="every drain to fail")
        metrics = urllib_get(agent, "/metrics")
        code, _, body = agent.request("GET", "/routes", headers=AUTH)
        assert code == 200
        listed = json.loads(body)
        assert {r["endpoint"] for r in listed} == {mask_url(u) for u in urls}
    finally:
        sender.close()
        assert agent.stop() == 0
    log = agent.log()
    assert "postgres datasource unavailable at start" in log
    assert "password=****" in log and "drain unreachable" in log
    assert "api-key=****" in metrics and "#****" in metrics
    r = subprocess.run([sys.executable, "-m", "logtrain", "check-config"], capture_output=True,
                       text=True, env={**agent.env, "PATH": os.environ["PATH"]})
    assert r.returncode == 0, r.stderr
    assert "DATABASE_URL=host=127.0.0.1" in r.stdout and "password=****" in r.stdout
    for where, text in (("log", log), ("metrics", metrics), ("routes", body.decode()),
                        ("check-config", r.stdout + r.stderr)):
        for name, value in SECRETS.items():
            assert value not in text, (where, name)


def urllib_get(agent: Agent, path: str) -> str:
    code, _, body = agent.request("GET", path)
    assert code == 200
    return body.decode()


# ----------------------------------------------------------------------------- file drains


def test_file_drain_on_a_fifo_blocks_neither_health_nor_sigterm(tmp_path: Path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link.log"
    link.symlink_to(tmp_path / "target.log")
    good = tmp_path / "good.log"
    routes = f"pipe file://{fifo}\nlinked file://{link}\nok file://{good}\n"
    agent, sender = start(tmp_path, {}, routes)
    try:
        sender.send("pipe")
        sender.send("linked")
        arrives(sender, "ok", lambda: good.read_bytes() if good.exists() else b"")
        wait_for(lambda: agent.log().count("is not a regular file: refused") >= 2, 5,
                 what="both refusals")
        # With a reader on the FIFO, the open would succeed: still refused.
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            errors = agent.metric("logtrain_drain_errors_total", drain=f"file://{fifo}")
            sender.send("pipe")
            wait_for(lambda: agent.metric("logtrain_drain_errors_total",
                                          drain=f"file://{fifo}") > errors, 5)
            assert os.read(reader, 100) == b""
        finally:
            os.close(reader)
        assert not (tmp_path / "target.log").exists()  # the symlink was not followed
        for _ in range(10):
            assert agent.health_ms() < 1000
            arrives(sender, "ok", lambda: good.read_bytes())
        started = time.monotonic()
        assert agent.stop(signal.SIGTERM) == 0
        assert time.monotonic() - started < 2 + 5  # SHUTDOWN_TIMEOUT plus a margin
    finally:
        sender.close()
        agent.stop()


# ----------------------------------------------------------------------------- own listeners


def test_a_route_to_the_agents_own_listener_is_refused_even_from_the_routes_file(tmp_path: Path):
    http_port = free_port()
    env = {"HTTP_EVENTS": "true", "HTTP_PORT": str(http_port)}
    # At start a refused line of the routes file is a configuration error, as any bad line.
    bad = Agent(tmp_path / "bad", {**env, "SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(free_port())},
                f"loop http://127.0.0.1:{http_port}/events\n")
    bad.start(wait=False)
    assert bad.proc.wait(15) == 2
    assert "one of the agent's own listeners" in bad.log()
    r = subprocess.run([sys.executable, "-m", "logtrain", "check-config"], capture_output=True,
                       text=True, env=bad.env)
    assert r.returncode == 2 and f"{bad.routes_path}:1: route loop" in r.stderr, r.stderr
    assert "one of the agent's own listeners" in r.stderr

    out = tmp_path / "out.log"
    agent, sender = start(tmp_path, env, f"ok file://{out}\n")
    try:
        # On reload: a literal loopback address, an IPv4-mapped one and "localhost"
        # are refused when the route is added.
        agent.set_routes(f"ok file://{out}\n"
                         f"loop http://localhost:{http_port}/events\n"
                         f"loop http://[::ffff:127.0.0.1]:{http_port}/events\n"
                         f"loop syslog+tcp://127.0.0.1:{agent.env['SYSLOG_TCP_PORT']}\n")
        wait_for(lambda: agent.metric("logtrain_routes_refused_total", source="file",
                                      reason="own_listener") == 3, 5, what="three refusals")
        # A name the policy cannot judge without resolving it ("127.1" resolves
        # to 127.0.0.1) is admitted, then refused at connect time.
        agent.set_routes(f"ok file://{out}\nloop http://127.1:{http_port}/events\n")
        wait_for(lambda: agent.metric("logtrain_routes") == 2, 5, what="the reload")
        event = {"severity": 6, "facility": 1, "hostname": "loop", "tag": "t",
                 "time": "2026-11-24T00:00:00Z", "message": "once"}
        code, _, _ = agent.post("/events", json.dumps(event).encode(),
                                {"Content-Type": "application/json"})
        assert code == 200
        wait_for(lambda: agent.metric("logtrain_routes_refused_total", reason="own_listener")
                 >= 4, 5, what="the connect-time refusal")
        time.sleep(1)
        assert agent.metric("logtrain_input_frames_total") <= 1  # delivered to itself never
        assert agent.metric("logtrain_drain_sent_total") == 0
        assert "route refused" in agent.log() and "127.0.0.1:" + str(http_port) in agent.log()
        assert agent.healthy()
    finally:
        sender.close()
        assert agent.stop() == 0


# ----------------------------------------------------------------------------- settings


def test_trust_settings_are_validated():
    base = {"PATH": os.environ["PATH"], "SYSLOG_TCP": "true", "ROUTES_FILE": "/dev/null"}
    for env, needle in (
        ({"ROUTE_TRUST": "file,etcd"}, "ROUTE_TRUST: unknown datasource 'etcd'"),
        ({"DRAIN_DENY_NETWORKS": "127.0.0.0/8,nonsense"},
         "DRAIN_DENY_NETWORKS: 'nonsense' is not a network"),
        ({"DRAIN_ALLOW_NETWORKS": "10.1.2.3/8"}, "DRAIN_ALLOW_NETWORKS: '10.1.2.3/8' is not a network"),
    ):
        r = subprocess.run([sys.executable, "-m", "logtrain", "check-config"],
                           env={**base, **env}, capture_output=True, text=True)
        assert r.returncode == 2 and needle in r.stderr, (env, r.stderr)
    r = subprocess.run([sys.executable, "-m", "logtrain", "check-config"],
                       env={**base, "ROUTE_TRUST": "file, postgres,API",
                            "DRAIN_ALLOW_NETWORKS": "10.0.0.0/8, fd00::/8"},
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# ----------------------------------------------------------------------------- postgres and the API




def insert(pg, db: str, host: str, endpoint: str) -> str:
    return pg.sql("insert into drains (hostname, endpoint) values (%s, %s) returning drain::text",
                  (host, endpoint), dbname=db)[0][0]


def test_postgres_rows_and_the_api_are_untrusted_by_default(pg, tmp_path: Path):
    db = pg.new_database("untrusted")
    tcp, udp, web, shared = TCPReceiver(), UDPReceiver(), HTTPReceiver(), TCPReceiver()
    out = tmp_path / "out.log"
    agent, sender = start(tmp_path, {"POSTGRES": "true", "DATABASE_URL": pg.url(db),
                                     "API_TOKEN": TOKEN},
                          f"filehost syslog+tcp://127.0.0.1:{shared.port}\n")
    try:
        wait_for(lambda: agent.metric("logtrain_datasource_connected", source="postgres") == 1, 5)
        insert(pg, db, "f", f"file://{out}")
        insert(pg, db, "t", f"syslog+tcp://127.0.0.1:{tcp.port}")
        insert(pg, db, "n", f"syslog+tcp://localhost:{tcp.port}")  # a name: resolved, then checked
        insert(pg, db, "u", f"syslog+udp://127.0.0.1:{udp.port}")
        insert(pg, db, "w", f"http://127.1:{web.port}/in")
        insert(pg, db, "m", f"syslog+tcp://[::ffff:127.0.0.1]:{tcp.port}")
        insert(pg, db, "meta", "http://169.254.169.254/latest/meta-data/")
        # the same URL as a trusted route: the drain is trusted while that route lasts
        insert(pg, db, "pghost", f"syslog+tcp://127.0.0.1:{shared.port}")
        wait_for(lambda: agent.metric("logtrain_routes_refused_total", source="postgres",
                                      reason="local_drain") == 1, 5, what="the file:// refusal")
        for host in ("f", "t", "n", "u", "w", "m", "meta"):
            sender.send(host)
        wait_for(lambda: agent.metric("logtrain_routes_refused_total", source="postgres",
                                      reason="denied_network") >= 6, 10,
                 what="six connect-time refusals")
        arrives(sender, "pghost", lambda: shared.data)
        time.sleep(0.5)
        assert tcp.connections == 0 and tcp.data == b"" and udp.data == b"" and web.bodies == []
        assert not out.exists()
        code, _, body = agent.request("GET", "/routes", headers=AUTH)
        errors = [r["error"] for r in json.loads(body) if "error" in r]
        assert len(errors) == 1 and "not trusted" in errors[0]

        # Re-evaluated as routes change: once no trusted route names it, the shared
        # drain is checked as untrusted and refused.
        agent.set_routes("")
        wait_for(lambda: "no trusted route names it any more" in agent.log(), 5)
        before = len(shared.data)
        shared_drain = f"syslog+tcp://127.0.0.1:{shared.port}"
        for _ in range(5):
            sender.send("pghost")
        wait_for(lambda: agent.metric("logtrain_drain_errors_total", drain=shared_drain) >= 1, 10,
                 what="the shared drain, now untrusted, to be refused")
        time.sleep(0.3)
        assert len(shared.data) == before

        # The API: file:// is answered 400 with the reason; a loopback network drain
        # is admitted and refused when the drain connects.
        code, _, body = agent.request("POST", "/routes", json.dumps(
            {"hostname": "a", "endpoint": f"file://{out}"}).encode(), AUTH)
        assert code == 400 and json.loads(body)["reason"] == "local_drain", body
        assert agent.metric("logtrain_routes_refused_total", source="api",
                            reason="local_drain") == 1
        code, _, body = agent.request("POST", "/routes", json.dumps(
            {"hostname": "a", "endpoint": f"syslog+tcp://127.0.0.1:{agent.env['SYSLOG_TCP_PORT']}"}
        ).encode(), AUTH)
        assert code == 400 and json.loads(body)["reason"] == "own_listener", body
        code, _, body = agent.request("POST", "/routes", json.dumps(
            {"hostname": "a", "endpoint": f"syslog+tcp://127.0.0.2:{tcp.port}"}).encode(), AUTH)
        assert code == 201, body
        sender.send("a")
        wait_for(lambda: agent.metric("logtrain_drain_errors_total",
                                      drain=f"syslog+tcp://127.0.0.2:{tcp.port}") >= 1, 5)
        wait_for(lambda: f"address=127.0.0.2:{tcp.port}" in agent.log(), 5,
                 what="the refusal logged with the address")
        assert tcp.connections == 0
        assert agent.healthy()
    finally:
        sender.close()
        assert agent.stop() == 0
        for r in (tcp, udp, web, shared):
            r.close()
    log = agent.log()
    assert "route refused" in log and "reason=denied_network" in log and "source=postgres" in log


def test_postgres_rows_to_loopback_with_drain_allow_networks(pg, tmp_path: Path):
    db = pg.new_database("allowed")
    tcp, web = TCPReceiver(), HTTPReceiver()
    out = tmp_path / "out.log"
    agent, sender = start(tmp_path, {"POSTGRES": "true", "DATABASE_URL": pg.url(db),
                                     "DRAIN_ALLOW_NETWORKS": "127.0.0.0/8"})
    try:
        insert(pg, db, "t", f"syslog+tcp://localhost:{tcp.port}")
        insert(pg, db, "w", f"http://127.0.0.1:{web.port}/in")
        insert(pg, db, "f", f"file://{out}")  # still not a network drain
        arrives(sender, "t", lambda: tcp.data)
        arrives(sender, "w", web.text)
        sender.send("f")
        time.sleep(0.3)
        assert not out.exists()
        assert agent.metric("logtrain_routes_refused_total", reason="denied_network") == 0
        assert agent.metric("logtrain_routes_refused_total", reason="local_drain") == 1
    finally:
        sender.close()
        assert agent.stop() == 0
        tcp.close()
        web.close()


def test_postgres_and_api_trusted_with_route_trust(pg, tmp_path: Path):
    db = pg.new_database("trusted")
    tcp = TCPReceiver()
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    agent, sender = start(tmp_path, {"POSTGRES": "true", "DATABASE_URL": pg.url(db),
                                     "API_TOKEN": TOKEN, "ROUTE_TRUST": "file,postgres,api"})
    try:
        insert(pg, db, "a", f"file://{a}")
        insert(pg, db, "t", f"syslog+tcp://127.0.0.1:{tcp.port}")
        code, _, body = agent.request("POST", "/routes", json.dumps(
            {"hostname": "b", "endpoint": f"file://{b}"}).encode(), AUTH)
        assert code == 201, body
        arrives(sender, "a", lambda: a.read_bytes() if a.exists() else b"")
        arrives(sender, "b", lambda: b.read_bytes() if b.exists() else b"")
        arrives(sender, "t", lambda: tcp.data)
        # trusted is not a licence to loop into the agent itself
        code, _, body = agent.request("POST", "/routes", json.dumps(
            {"hostname": "c", "endpoint": f"http://localhost:{agent.http_port}/"}).encode(), AUTH)
        assert code == 400 and json.loads(body)["reason"] == "own_listener"
        assert agent.metric("logtrain_routes_refused_total") == 1
    finally:
        sender.close()
        assert agent.stop() == 0
        tcp.close()
