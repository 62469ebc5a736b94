"""Live tails: ``GET /tail?hostname=GLOB`` streams every packet routed for a
matching hostname, from the moment the client connects, for as long as it stays.

A tail is a temporary route with its own small queue. The router calls
``TailHub.publish`` once per batch, before its fan-out, and only while a tail
is attached (``Router.tap`` is None otherwise, so a tail costs nothing when
there is none); dead packets are seen too. Each batch is encoded once per
format and per set of matching hostnames, shared by the tails that want the
same, and queued as bytes: a tail's queue is bounded by TAIL_BUFFER_SIZE
bytes (a batch is always taken into an empty queue). When a client reads too
slowly, its batches are dropped, never anyone else's, and a marker in the
stream says how many lines it lost (an RFC5424 line from ``logtrain``, an
NDJSON object ``{"dropped": N, ...}``, an SSE ``dropped`` event).

Tails also never take the drains' time: the CPU time they spend encoding
(and as much again for writing) is counted per WINDOW, and they may use the
agent's spare time (up
to SPARE cores less what the agent itself used in the last window) or at
least TAIL_CPU_SHARE of a core, split between them. A tail over its part has
its lines dropped before they are encoded, marked the same way.

Formats, by the request's Accept header: RFC5424 lines as ``text/plain``
(the default), packet JSON as ``application/x-ndjson``, and Server-Sent
Events (``text/event-stream``, one ``data:`` packet JSON per event) for the
status page's live-tail box. At most MAX_TAILS tails at once (429 beyond);
a client that disconnects is noticed by a greenlet reading its socket and its
tail is removed at once. Counted in metrics: ``logtrain_tails``,
``logtrain_tails_total``, ``logtrain_tails_refused_total{reason}``
(``max_tails``, ``bad_request``, ``max_connections``: a tail is never served
on one of the few connections kept over MAX_CONNECTIONS for /health),
``logtrain_tail_dropped_total{reason}`` (``slow_client``, ``cpu_share``).
"""

from __future__ import annotations

import fnmatch
import json
import re
import socket
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import parse_qs

import gevent
from gevent.event import Event

from logtrain.httpconn import Stream
from logtrain.httpserver import Response, json_response
from logtrain.packet import Packet, now_rfc3339
from logtrain.router import Router, check_hostname
from logtrain.runtime import Runtime
from logtrain.serialize import ndjson, packet_jsons
from logtrain.syslog import format_rfc5424

MAX_GLOBS = 32  # hostname parameters of one tail
MATCH_CACHE = 4096  # hostnames whose answer a tail remembers
WRITE_MAX = 64 << 10  # queued bytes joined into one write
HEARTBEAT = 15.0  # seconds between SSE comments on a quiet tail (proxies close silent streams)
# their keys in Metrics.counters, by reason
SLOW = ("logtrain_tail_dropped_total", (("reason", "slow_client"),))
BUSY = ("logtrain_tail_dropped_total", (("reason", "cpu_share"),))
SPARE = 0.25  # cores of its own work below which the agent lends tails the rest of them
MARKER_DELAY = 0.5  # seconds a marker waits for more lost lines (or lines) before it is sent
WINDOW = 0.1  # seconds over which a tail's share of the agent's time is measured

FORMATS = {
    "text": "text/plain; charset=utf-8",
    "ndjson": "application/x-ndjson",
    "sse": "text/event-stream",
}


def _sse(packets: list[Packet]) -> bytes:
    return b"".join(b"data: %s\n\n" % j for j in packet_jsons(packets))


ENCODERS: dict[str, Callable[[list[Packet]], bytes]] = {
    "text": format_rfc5424, "ndjson": ndjson, "sse": _sse}


def negotiate(accept: str) -> str:
    """The format a client's Accept header asks for (text unless it names another)."""
    accept = accept.lower()
    if "text/event-stream" in accept:
        return "sse"
    if "application/x-ndjson" in accept:
        return "ndjson"
    return "text"


def marker(fmt: str, n: int) -> bytes:
    """What a stream says where it lost ``n`` lines."""
    text = f"{n} lines dropped: this tail's client read too slowly, or the agent was too busy"
    if fmt == "ndjson":
        return json.dumps({"dropped": n, "message": text}).encode() + b"\n"
    if fmt == "sse":
        return b"event: dropped\ndata: %s\n\n" % json.dumps({"dropped": n, "message": text}).encode()
    # facility syslog (5), severity warning (4)
    return (f'<44>1 {now_rfc3339()} logtrain logtrain - DROPPED [logtrain dropped="{n}"] '
            f"{text}\n").encode()


class Matcher:
    """Hostname globs, matched as the router matches routes (case-insensitive
    fnmatch); answers are cached per hostname."""

    def __init__(self, globs: list[str]) -> None:
        self.globs = globs
        lowered = [g.lower() for g in globs]
        self.exact = {g for g in lowered if not set("*?[") & set(g)}
        patterns = [fnmatch.translate(g) for g in lowered if g not in self.exact]
        self.pattern = re.compile("|".join(patterns)) if patterns else None
        self.cache: dict[str, bool] = {}

    def __call__(self, hostname: str) -> bool:
        hit = self.cache.get(hostname)
        if hit is None:
            h = hostname.lower()
            hit = h in self.exact or (self.pattern is not None and self.pattern.match(h) is not None)
            if len(self.cache) >= MATCH_CACHE:
                self.cache.clear()
            self.cache[hostname] = hit
        return hit


class Tail(Stream):
    """One client's tail: its globs, format and bounded queue of encoded bytes
    (an int in the queue marks lines dropped at that point)."""

    def __init__(self, hub: TailHub, globs: list[str], fmt: str, peer: str) -> None:
        self.hub = hub
        self.matches = Matcher(globs)
        self.fmt = fmt
        self.peer = peer
        self.cap = hub.rt.config.tail_buffer_size
        self.queue: deque[bytes | int] = deque()
        self.queued = 0  # bytes in queue
        self.dropped = 0  # lines this tail lost
        self.wake = Event()
        self.closed = False
        self.spent = 0.0  # CPU seconds charged to it in the hub's window (encoding, writing)

    def drop(self, lines: int, key: tuple = SLOW) -> None:
        self.dropped += lines
        counters = self.hub.rt.metrics.counters  # Metrics.inc sorts labels: too slow per batch
        counters[key] = counters.get(key, 0) + lines
        q = self.queue
        if q and q[-1].__class__ is int:
            q[-1] += lines
        else:
            q.append(lines)
            self.wake.set()

    def offer(self, data: bytes, lines: int) -> None:
        q = self.queue
        if self.queued and self.queued + len(data) > self.cap:
            self.drop(lines)
            return
        q.append(data)
        self.queued += len(data)
        self.wake.set()

    def close(self) -> None:
        self.closed = True
        self.wake.set()

    def run(self, sock: socket.socket, send: Callable[[bytes], None]) -> None:
        try:  # a client that vanished without a word is found within a few minutes
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            for opt, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 6)):
                if hasattr(socket, opt):
                    sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt), value)
        except OSError:
            pass
        watcher = gevent.spawn(self._watch, sock)
        heartbeat = HEARTBEAT if self.fmt == "sse" else None
        try:
            while not self.closed:
                q = self.queue
                if not q:
                    self.wake.clear()
                    if not self.wake.wait(heartbeat) and heartbeat:
                        send(b": keep-alive\n\n")
                    continue
                if len(q) == 1 and q[0].__class__ is int:
                    # only lost lines so far: one marker for a while of them,
                    # not one write per dropped batch
                    self.wake.clear()
                    self.wake.wait(MARKER_DELAY)
                send(self._take())
        finally:
            self.hub.detach(self)
            watcher.kill()  # before the server reads the socket again

    def _take(self) -> bytes:
        """The queue's head, as much as one write takes, markers formatted."""
        parts: list[bytes] = []
        size = 0
        q = self.queue
        while q and size < WRITE_MAX:
            item = q.popleft()
            if isinstance(item, int):
                item = marker(self.fmt, item)
            else:
                self.queued -= len(item)
            parts.append(item)
            size += len(item)
        return b"".join(parts)

    def _watch(self, sock: socket.socket) -> None:
        """Ends the tail as soon as the client closes its side or resets: the
        writer may be waiting for lines that never come."""
        try:
            while True:
                try:
                    data = sock.recv(1024)
                except TimeoutError:
                    continue
                if not data:
                    break
                gevent.sleep(0.01)  # a client has nothing to send: what it sends is discarded
        except OSError:
            pass
        self.close()


class TailHub:
    """The tails attached now; the router's tap while there is one."""

    def __init__(self, rt: Runtime, router: Router) -> None:
        self.rt = rt
        self.router = router
        self.tails: dict[Tail, None] = {}
        self.active: tuple[Tail, ...] = ()  # the same, as the tap iterates them
        self.allowance = 0.0  # CPU seconds of a WINDOW each tail may take
        self.window = 0.0  # when the current WINDOW began (monotonic)
        self.window_cpu = 0.0  # the process's CPU time then
        self.spent = 0.0  # CPU seconds all tails took in it
        rt.metrics.gauge("logtrain_tails", lambda: len(self.tails))
        for key in (SLOW, BUSY):
            rt.metrics.counters.setdefault(key, 0)

    def register(self, http, guard=None) -> None:
        http.add("/tail", ("GET",), self.handle, guard=guard)

    # ----------------------------------------------------------------- clients

    def handle(self, env: dict, body: bytes) -> Response:
        query = parse_qs(env.get("QUERY_STRING", ""), keep_blank_values=True)
        globs = query.get("hostname", [])
        if not globs:
            return self._refuse("bad_request", "400 Bad Request",
                                "name at least one hostname: /tail?hostname=GLOB (repeatable)", env)
        if len(globs) > MAX_GLOBS:
            return self._refuse("bad_request", "400 Bad Request",
                                f"at most {MAX_GLOBS} hostname parameters", env)
        for g in globs:
            try:
                check_hostname(g)
            except ValueError as e:
                return self._refuse("bad_request", "400 Bad Request", f"hostname {g!r}: {e}", env)
        cfg = self.rt.config
        if env.get("logtrain.reserve"):  # a slot over MAX_CONNECTIONS, kept for /health
            return self._refuse("max_connections", "503 Service Unavailable",
                                "too many connections, retry later", env, [("Retry-After", "5")])
        if len(self.tails) >= cfg.max_tails:
            return self._refuse("max_tails", "429 Too Many Requests",
                                f"{cfg.max_tails} live tails already (MAX_TAILS)", env,
                                [("Retry-After", "5")])
        fmt = negotiate(env.get("HTTP_ACCEPT", ""))
        tail = Tail(self, globs, fmt, env.get("REMOTE_ADDR", ""))
        self.tails[tail] = None  # from now on it sees every batch routed
        self._changed()
        self.rt.metrics.inc("logtrain_tails_total")
        self.rt.log.info("live tail started", peer=tail.peer, hostname=",".join(globs), format=fmt)
        return "200 OK", [("Content-Type", FORMATS[fmt]), ("Cache-Control", "no-cache"),
                          ("X-Accel-Buffering", "no")], tail

    def _refuse(self, reason: str, status: str, message: str, env: dict,
                headers: list[tuple[str, str]] | None = None) -> Response:
        rt = self.rt
        rt.metrics.inc("logtrain_tails_refused_total", reason=reason)
        held = rt.ratelimit.allow(("tail-refused", reason))
        if held is not None:
            rt.log.warning("live tail refused", reason=reason, error=message,
                           peer=env.get("REMOTE_ADDR", ""), refused_since_last_report=held)
        return json_response(status, {"error": message}, headers)

    def detach(self, tail: Tail) -> None:
        tail.closed = True
        if tail in self.tails:
            del self.tails[tail]
            self._changed()
            self.rt.log.info("live tail ended", peer=tail.peer, hostname=",".join(tail.matches.globs),
                             dropped_lines=tail.dropped)

    def _changed(self) -> None:
        self.active = tuple(self.tails)
        self.window = 0.0  # the next batch starts a window with the new allowance
        self.router.tap = self.publish if self.active else None

    def _next_window(self, now: float) -> None:
        """What tails may take in the window starting now: the agent's spare
        time up to SPARE cores (its own work measured over the last window),
        and never less than TAIL_CPU_SHARE, split between the tails."""
        cpu = time.process_time()
        wall = now - self.window
        # the first window, unmeasured, gets the spare time: a tail that just
        # started must not lose the first lines of a quiet application
        own = (cpu - self.window_cpu - self.spent) / wall if self.window and wall > 0 else 0.0
        cores = max(self.rt.config.tail_cpu_share, SPARE - own)
        self.allowance = cores * WINDOW / len(self.active)
        self.window, self.window_cpu, self.spent = now, cpu, 0.0
        for tail in self.active:
            tail.spent = 0.0

    def close(self) -> None:
        """Ends every tail (the agent is stopping): each stream ends cleanly."""
        for tail in list(self.tails):
            tail.close()

    def describe(self) -> list[dict]:
        return [{"hostname": t.matches.globs, "format": t.fmt, "peer": t.peer,
                 "queued_bytes": t.queued, "dropped": t.dropped} for t in self.tails]

    # ----------------------------------------------------------------- the tap

    def publish(self, packets: list[Packet]) -> None:
        """Called by the router for every batch while a tail is attached."""
        if not packets:
            return
        try:
            self._publish(packets)
        except Exception as e:  # noqa: BLE001 - a tail must never break routing
            held = self.rt.ratelimit.allow("tail-publish")
            if held is not None:
                self.rt.log.error("live tail failed to take a batch", error=repr(e),
                                  failures_since_last_report=held)

    def _publish(self, packets: list[Packet]) -> None:
        # per batch, not per line, where it can: inputs hand over small
        # batches when they keep up, and this runs for each of them
        hosts = {p.hostname for p in packets}
        single = packets[0].hostname if len(hosts) == 1 else None
        encoded: dict[tuple, tuple[bytes, int, float]] = {}
        now = time.monotonic()
        if now - self.window >= WINDOW:
            self._next_window(now)
        cpu = 0.0
        for tail in self.active:
            match = tail.matches
            if single is not None:
                if not match(single):
                    continue
                want = None
            else:
                want = frozenset(h for h in hosts if match(h))
                if not want:
                    continue
                if len(want) == len(hosts):
                    want = None
            key = (tail.fmt, want)
            got = encoded.get(key)
            if got is None:
                if tail.spent >= self.allowance:  # its share of this window is spent
                    tail.drop(len(packets) if want is None else
                              sum(p.hostname in want for p in packets), BUSY)
                    continue
                cpu = cpu or time.process_time()
                chosen = packets if want is None else [p for p in packets if p.hostname in want]
                data = ENCODERS[tail.fmt](chosen)
                done = time.process_time()  # CPU time: a busy machine must not starve tails
                got = encoded[key] = (data, len(chosen), done - cpu)
                tail.spent += done - cpu
                self.spent += done - cpu
                cpu = done
            # writing it is charged as much as encoding it: timing a send
            # that waits for its client would count whatever ran meanwhile
            tail.spent += got[2]
            self.spent += got[2]
            tail.offer(got[0], got[1])
