"""Router and drain scenarios, run in a child process monkey-patched for gevent
(``python tests/drain_scenarios.py NAME``); each prints one JSON result that
test_router_drain.py asserts on. The receivers are real TCP servers."""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import io  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
from gevent.server import StreamServer  # noqa: E402

from logtrain.config import load  # noqa: E402
from logtrain.drain import Ack  # noqa: E402
from logtrain.log import Log, RateLimit  # noqa: E402
from logtrain.metrics import Metrics  # noqa: E402
from logtrain.packet import Packet  # noqa: E402
from logtrain.router import Router  # noqa: E402
from logtrain.runtime import Runtime  # noqa: E402


def runtime(**env: str) -> tuple[Runtime, io.StringIO]:
    # Routes of these scenarios name file:// drains from two datasources and
    # receivers on loopback: trust both datasources, allow loopback.
    cfg = load(env={"SYSLOG_TCP": "true", "ROUTES_FILE": "/dev/null",
                    "ROUTE_TRUST": "file,postgres", "DRAIN_ALLOW_NETWORKS": "127.0.0.0/8", **env})
    out = io.StringIO()
    return Runtime(cfg, Log("debug", out), Metrics(), RateLimit(60.0)), out


def pk(host: str, msg: str) -> Packet:
    return Packet(6, 1, host, "app", "2026-11-24T00:00:00Z", msg)


class Sink:
    """A TCP receiver counting lines and connections; ``delay`` slows reads."""

    def __init__(self, port: int = 0, delay: float = 0.0, stall: float = 0.0) -> None:
        self.lines: list[str] = []
        self.delay = delay
        self.stall = stall
        self.open = 0
        self.max_open = 0
        self.server = StreamServer(("127.0.0.1", port), self.handle)
        self.server.init_socket()
        if delay:  # a small window, so that a slow reader really is slow
            self.server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        self.server.start()
        self.port = self.server.server_port

    def handle(self, sock, addr) -> None:
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        buf = b""
        gevent.sleep(self.stall)  # a receiver that takes a while to start reading
        try:
            while True:
                data = sock.recv(4096 if self.delay else 1 << 16)
                if not data:
                    break
                buf += data
                *done, buf = buf.split(b"\n")
                self.lines += [d.decode() for d in done]
                if self.delay:
                    gevent.sleep(self.delay)
        finally:
            self.open -= 1

    def stop(self) -> None:
        self.server.stop(timeout=0)


def wait(pred, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        gevent.sleep(0.02)
    return bool(pred())


def scenario_routing() -> dict:
    rt, out = runtime()
    d = Path(tempfile.mkdtemp())
    r = Router(rt)
    f = {n: f"file://{d}/{n}.log" for n in ("exact", "glob", "all", "both")}
    r.add_route("file", "Web-1", f["exact"])
    r.add_route("file", "web-*", f["glob"])
    r.add_route("file", "*.prod", f["both"])
    r.add_route("postgres", "*.prod", f["both"])  # the same route from a second datasource
    errors = []
    for bad in ("kafka://x", "syslog+tcp://", "syslog+tcp://h:99999", "es://x?auth=nope", "nonsense"):
        try:
            r.add_route("file", "x", bad)
        except ValueError as e:
            errors.append(str(e))
    r.route([pk("web-1", "a"), pk("WEB-2", "b"), pk("db.prod", "c"), pk("nobody", "d"), pk("web-1", "e")])
    opened_before = sorted(r.drains)
    r.remove_route("file", "*.prod", f["both"])
    r.route([pk("api.prod", "f")])  # still routed: the pg datasource has it
    still = f["both"] in r.drains
    r.remove_route("postgres", "*.prod", f["both"])
    gevent.sleep(0.3)
    closed = f["both"] not in r.drains
    r.route([pk("api.prod", "g")])  # dead now
    r.close(5)

    def msgs(n):
        p = d / f"{n}.log"
        return [x.rsplit(" ", 1)[1] for x in p.read_text().splitlines()] if p.exists() else []

    return {"exact": msgs("exact"), "glob": msgs("glob"), "both": msgs("both"), "all": msgs("all"),
            "dead": rt.metrics.get("logtrain_dead_packets_total"), "errors": errors,
            "opened": [Path(u).name for u in opened_before], "still": still, "closed": closed,
            "dead_logs": [x for x in out.getvalue().splitlines() if "no route for packets" in x]}


def scenario_ack() -> dict:
    rt, _ = runtime(DRAIN_BUFFER_SIZE="2000", DRAIN_BACKOFF_MAX="0.1")
    a, b = Sink(), Sink()
    r = Router(rt)
    r.add_route("t", "h", f"syslog+tcp://127.0.0.1:{a.port}")
    r.add_route("t", "h", f"syslog+tcp://127.0.0.1:{b.port}")
    calls = []

    def sent(port):
        return rt.metrics.get("logtrain_drain_sent_total", drain=f"syslog+tcp://127.0.0.1:{port}")

    ack = Ack(lambda ok: calls.append((ok, sent(a.port), sent(b.port))))
    r.route([pk("h", f"m{i}") for i in range(10)], ack)
    immediate = list(calls)
    wait(lambda: calls)
    gevent.sleep(0.2)
    # a drain that cannot take the batch: ok is False
    dead = Router(rt)
    dead.add_route("t", "h", f"syslog+tcp://127.0.0.1:{a.port}")
    dead.add_route("t", "h", "syslog+tcp://127.0.0.1:1")
    calls2 = []
    dead.route([pk("h", "x" * 1500)], Ack(calls2.append))  # fits
    dead.route([pk("h", "y" * 1500)], Ack(calls2.append))  # over the dead drain's 2000 bytes
    wait(lambda: len(calls2) >= 1, 3)
    # no route at all: the ack fires at once
    calls3 = []
    r.route([pk("nobody", "z")], Ack(calls3.append))
    wait(lambda: len(a.lines) == 11 and len(b.lines) == 10, 3)
    return {"immediate": immediate, "calls": calls, "calls2": calls2, "calls3": calls3,
            "received": [len(a.lines), len(b.lines)]}


def scenario_buffer_bound() -> dict:
    rt, _ = runtime(DRAIN_BUFFER_SIZE="20000", DRAIN_BACKOFF_MAX="0.1", DRAIN_PAUSE_AFTER="1000")
    probe = Sink()
    port = probe.port
    probe.stop()
    r = Router(rt)
    r.add_route("t", "*", f"syslog+tcp://127.0.0.1:{port}")
    for i in range(40):  # 40 batches of ~1 KB into a 20 KB buffer while the receiver is down
        r.route([pk("h", f"b{i}-" + "x" * 940)])
        gevent.sleep(0.01)
    gevent.sleep(0.5)
    dropped = rt.metrics.get("logtrain_drain_dropped_total", drain=f"syslog+tcp://127.0.0.1:{port}",
                             reason="buffer_full")
    sink = Sink(port)
    wait(lambda: len(sink.lines) >= 40 - dropped, 10)
    gevent.sleep(0.3)
    return {"dropped": dropped, "delivered": len(sink.lines),
            "sent": rt.metrics.total("logtrain_drain_sent_total")}


def scenario_failure_logging() -> dict:
    rt, out = runtime(DRAIN_BACKOFF_MAX="0.05", DRAIN_PAUSE_AFTER="5", DRAIN_PAUSE_INTERVAL="0.5")
    probe = Sink()
    port = probe.port
    probe.stop()
    url = f"syslog+tcp://user:hunter2@127.0.0.1:{port}"
    r = Router(rt)
    r.add_route("t", "*", url)
    t0 = time.monotonic()
    for i in range(300):  # a steady flow during the outage
        r.route([pk("h", f"f{i}")])
        gevent.sleep(0.01)
    paused = rt.metrics.render().count("logtrain_drain_paused{") and [
        line for line in rt.metrics.render().splitlines() if line.startswith("logtrain_drain_paused{")]
    errors = rt.metrics.total("logtrain_drain_errors_total")
    sink = Sink(port)
    wait(lambda: len(sink.lines) == 300, 5)
    log = out.getvalue()
    return {"unreachable": log.count("drain unreachable"), "paused_logs": log.count("drain paused"),
            "recovered": log.count("drain recovered"), "still": log.count("still failing"),
            "errors": errors, "paused_gauge": paused, "delivered": len(sink.lines),
            "password_logged": "hunter2" in log, "seconds": time.monotonic() - t0,
            "log_lines": len(log.splitlines())}


def scenario_pool() -> dict:
    rt, _ = runtime(DRAIN_MAX_CONNECTIONS="3", DRAIN_IDLE_TIMEOUT="0.5", DRAIN_BUFFER_SIZE="64M")
    # Each connection is read only after 1.5 s: the kernel's buffers fill, writes
    # block, the drain's buffer grows, and the pool must grow to drain it.
    sink = Sink(stall=1.5)
    r = Router(rt)
    r.add_route("t", "*", f"syslog+tcp://127.0.0.1:{sink.port}")
    batch = [pk("h", "p" * 200) for _ in range(100)]
    n = 0
    t0 = time.monotonic()
    peak_writers = 0
    while time.monotonic() - t0 < 2.5:  # ~20 MB over 2.5 s
        r.route(batch)
        n += len(batch)
        drain = next(iter(r.drains.values()))
        peak_writers = max(peak_writers, len(drain.writers))
        gevent.sleep(0.002)
    wait(lambda: len(sink.lines) == n, 30)
    gevent.sleep(1.5)  # idle: writers retire, connections close
    return {"max_open": sink.max_open, "peak_writers": peak_writers, "delivered": len(sink.lines),
            "routed": n, "writers_after": len(drain.writers), "connections_after": drain.connections,
            "open_after": sink.open, "dropped": rt.metrics.total("logtrain_drain_dropped_total")}


def scenario_rejected() -> dict:
    """An HTTP endpoint that answers 400 to packets saying "bad" and 200 to the
    rest: each packet counted once, as sent or dropped, and the acks say so."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(json.loads(body)["message"])
            status = 400 if b"bad" in body else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    rt, out = runtime(DRAIN_BACKOFF_MAX="0.1")
    r = Router(rt)
    url = f"http://127.0.0.1:{srv.server_address[1]}/"
    r.add_route("t", "h", url)
    calls = {}
    r.route([pk("h", "good-1"), pk("h", "good-2")], Ack(lambda ok: calls.setdefault("good", ok)))
    r.route([pk("h", "bad-1"), pk("h", "good-3")], Ack(lambda ok: calls.setdefault("mixed", ok)))
    r.route([pk("h", "bad-2")], Ack(lambda ok: calls.setdefault("bad", ok)))
    wait(lambda: len(calls) == 3, 10)
    gevent.sleep(0.3)
    m = rt.metrics
    srv.shutdown()
    return {"acks": calls, "seen": sorted(seen),
            "sent": m.get("logtrain_drain_sent_total", drain=url),
            "dropped": m.total("logtrain_drain_dropped_total"),
            "dropped_rejected": m.get("logtrain_drain_dropped_total", drain=url, reason="rejected"),
            "rejected_logs": out.getvalue().count("drain endpoint rejected data")}


if __name__ == "__main__":
    print(json.dumps(globals()["scenario_" + sys.argv[1]]()))
    sys.stdout.flush()
