"""The one HTTP server on HTTP_PORT, shared by the HTTP inputs, the routes API,
persistent reads, /metrics and /health: sockets, dispatch, connection management.

Handlers are registered by exact path or by prefix and return (status, headers,
body); a ``Stream`` body (live tails) is written as it is made. A handler gets
the request's whole body as bytes (small bodies: the API), or, when registered
with ``stream=True`` (the HTTP inputs), a ``Body`` it reads piece by piece, so
no body is ever held whole.

HTTP/1.1 is written here on gevent's StreamServer rather than with
gevent.pywsgi (which pulls in http.client and email, about 2 MB) or h11 (about
1 MB); the parsing itself is in ``logtrain.http11``. Served: keep-alive and
pipelining, Content-Length and chunked bodies, ``Expect: 100-continue``
(answered only once the request passed its checks). What bounds a client:

* the request head: HTTP_MAX_HEADER_SIZE bytes, read within
  HTTP_HEADER_TIMEOUT seconds (from the connection for its first request, from
  the first byte for later ones); IDLE_TIMEOUT between requests;
* the body: the route's limit (HTTP_MAX_BODY by default), chunk framing
  counted;
* all connections together: INPUT_PARTIAL_BUDGET bytes (shared with the stream
  inputs, logtrain/budget.py) of request heads and of
  bodies being read (each connection's first few KiB are free, so /health is
  always served); a request that would go past it is refused with 503;
* MAX_CONNECTIONS: at the limit the oldest idle keep-alive connection, or else
  the oldest one still sending its head, is closed to make room; when none is
  (every slot is in a request), a few more connections may each make one
  bodiless GET (/health, /metrics), and the rest get 503.

Every refusal is counted (``logtrain_http_rejected_total{reason}`` for
requests, ``logtrain_input_connections_rejected_total{input="http",reason}``
for connections) and logged at a bounded rate.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import gevent
from gevent.pool import Pool
from gevent.server import StreamServer

from logtrain.http11 import HeadReader, HTTPError, Request
from logtrain.httpconn import READ, Body, Conn, Stream
from logtrain.runtime import Runtime
from logtrain.urls import hostport

Response = tuple[str, list[tuple[str, str]], "bytes | Stream"]
Handler = Callable[[dict, Any], Response]
Guard = Callable[[dict], Response | None]

HEAD_READ = 8 << 10  # bytes per read of a request head
FREE = 4 << 10  # bytes of a request head each connection holds outside the budget
DRAIN_SMALL = 64 << 10  # an unread body up to this size is read and discarded to keep the connection
LINGER = 2.0
RESERVE = 8  # connections over MAX_CONNECTIONS kept for bodiless GETs (/health, /metrics)


class _Cut(Exception):
    """Ends a connection for a reason counted per connection (not a malformed request)."""

    def __init__(self, reason: str, answer: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.answer = answer


def json_response(status: str, obj: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(obj).encode() + b"\n"
    return status, [("Content-Type", "application/json")] + (headers or []), body


def _answer(status: str, message: str, headers: list[tuple[str, str]] | None = None) -> bytes:
    body = json.dumps({"error": message}).encode() + b"\n"
    head = [f"HTTP/1.1 {status}", "Content-Type: application/json"]
    head += [f"{k}: {v}" for k, v in headers or ()]
    head += [f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


BUSY = _answer("503 Service Unavailable", "too many connections, retry later", [("Retry-After", "1")])
TIMEOUT = _answer("408 Request Timeout", "request head not received in time")
OVER_BUDGET = _answer("503 Service Unavailable", "server busy, retry later", [("Retry-After", "1")])


class HTTPServer:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        cfg = rt.config
        self.routes: dict[str, tuple[tuple[str, ...], Handler]] = {}
        self.prefixes: list[tuple[str, tuple[str, ...], Handler]] = []
        self.max_body: dict[str, int] = {}  # path or prefix -> smaller body limit
        self.guards: dict[str, Guard] = {}  # path or prefix -> check before the body is read
        self.streaming: set[str] = set()  # paths or prefixes whose handler reads a Body
        self.server: StreamServer | None = None
        self.conns: dict[Conn, None] = {}  # open connections, oldest first
        self.reserved = 0  # connections taken over MAX_CONNECTIONS (see RESERVE)
        self.budget = rt.partial  # shared with every input's connections
        self.max_head = cfg.http_max_header_size
        self.scratch = bytearray(READ)  # where lingering connections discard what they read
        # set by the agent: what it is still doing before it is ready (None: ready)
        self.starting: Callable[[], str | None] = lambda: None
        self.add("/health", ("GET",), self._health)
        self.add("/healthz", ("GET",), self._health)  # alive (the Kubernetes names)
        self.add("/readyz", ("GET",), self._ready)
        # (ready, why not) from the agent: datasources loaded, inputs listening
        self.readiness: Callable[[], tuple[bool, str]] = lambda: (False, "starting")
        rt.metrics.gauge("logtrain_input_connections", lambda: len(self.conns), input="http")
        rt.metrics.gauge("logtrain_input_partial_bytes", lambda: self.budget.total)

    def _health(self, env: dict, body: bytes) -> Response:
        """``ok`` while every supervised task runs (503 naming the task that
        keeps crashing); ``?verbose`` adds each task's state as JSON."""
        ok, tasks = self.rt.tasks.health()
        if "verbose" in env.get("QUERY_STRING", ""):
            return json_response("200 OK" if ok else "503 Service Unavailable",
                                 {"status": "ok" if ok else "failing", "tasks": tasks})
        if ok:
            doing = self.starting()
            if doing:
                return "503 Service Unavailable", [], f"starting: {doing}\n".encode()
            return "200 OK", [], b"ok\n"
        failing = ", ".join(n for n, t in tasks.items() if t["state"] == "failing")
        return "503 Service Unavailable", [], f"failing: {failing} keeps crashing\n".encode()

    def _ready(self, env: dict, body: bytes) -> Response:
        ok, why = self.readiness()
        if ok:
            return "200 OK", [], b"ready\n"
        return "503 Service Unavailable", [], f"not ready: {why}\n".encode()

    def add(self, path: str, methods: tuple[str, ...], handler: Handler,
            max_body: int = 0, guard: Guard | None = None, stream: bool = False) -> None:
        if path in self.routes:
            raise ValueError(f"HTTP path {path} is used twice")
        self.routes[path] = (methods, handler)
        self._options(path, max_body, guard, stream)

    def add_prefix(self, prefix: str, methods: tuple[str, ...], handler: Handler,
                   max_body: int = 0, guard: Guard | None = None, stream: bool = False) -> None:
        """Serves every path under ``prefix`` (which ends with '/'); the handler
        finds the rest of the path in ``env['PATH_INFO']``."""
        if any(p == prefix for p, _, _ in self.prefixes):
            raise ValueError(f"HTTP path {prefix} is used twice")
        self.prefixes.append((prefix, methods, handler))
        self.prefixes.sort(key=lambda r: -len(r[0]))  # the longest prefix wins
        self._options(prefix, max_body, guard, stream)

    def _options(self, key: str, max_body: int, guard: Guard | None, stream: bool) -> None:
        if max_body:
            self.max_body[key] = max_body
        if guard:
            self.guards[key] = guard
        if stream:
            self.streaming.add(key)

    def _find(self, path: str) -> tuple[str, tuple[str, ...], Handler] | None:
        route = self.routes.get(path)
        if route is not None:
            return path, route[0], route[1]
        for prefix, methods, handler in self.prefixes:
            if path.startswith(prefix) and len(path) > len(prefix):
                return prefix, methods, handler
        return None

    def start(self) -> None:
        cfg = self.rt.config
        # an unbounded pool: MAX_CONNECTIONS is enforced in _handle, where a
        # refusal is answered and counted instead of leaving accept waiting
        self.server = StreamServer((cfg.bind_address, cfg.http_port), self._handle,
                                   spawn=Pool(), backlog=1024)
        self.server.start()

    @property
    def address(self) -> str:
        """``host:port`` actually bound (HTTP_PORT=0 takes a free port)."""
        cfg = self.rt.config
        if self.server is None:
            return hostport((cfg.bind_address, cfg.http_port))
        return hostport(self.server.address)

    def paths(self) -> list[str]:
        """What is served: exact paths, and prefixes as ``/prefix/*``."""
        return sorted(self.routes) + sorted(p + "*" for p, _, _ in self.prefixes)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(timeout=2)

    # ----------------------------------------------------------------- refusals

    def _count_conn(self, reason: str, peer: str) -> None:
        rt = self.rt
        rt.metrics.inc("logtrain_input_connections_rejected_total", input="http", reason=reason)
        held = rt.ratelimit.allow(("http-conn", reason))
        if held is not None:
            rt.log.warning("HTTP connection closed", reason=reason, peer=peer,
                           max_connections=rt.config.max_connections,
                           closed_since_last_report=held)

    def _count_request(self, reason: str, message: str, peer: str) -> None:
        rt = self.rt
        rt.metrics.inc("logtrain_http_rejected_total", reason=reason)
        held = rt.ratelimit.allow(("http-reject", reason))
        if held is not None:
            rt.log.warning("HTTP request refused", reason=reason, error=message, peer=peer,
                           refused_since_last_report=held)

    def _evict(self) -> bool:
        """Closes the oldest idle keep-alive connection, else the oldest one
        still in its request head, to make room for a new client."""
        best: Conn | None = None
        for c in self.conns:  # oldest first
            if c.state in ("idle", "linger"):
                best = c
                break
            if c.state == "head" and (best is None or c.since < best.since):
                best = c
        if best is None:
            return False
        del self.conns[best]
        best.evicted = True
        self._count_conn("evicted_" + best.state, best.peer)
        try:
            best.sock.shutdown(socket.SHUT_RDWR)  # its greenlet sees EOF and closes it
        except OSError:
            pass
        return True

    # ----------------------------------------------------------------- budget

    def _hold(self, conn: Conn, n: int) -> None:
        """Sets what ``conn`` counts against the inputs' shared budget."""
        self.budget.hold(conn, n)

    def _reserve(self, conn: Conn, n: int) -> bool:
        return self.budget.reserve(conn, n)

    # ----------------------------------------------------------------- connections

    def _handle(self, sock: socket.socket, addr: Any) -> None:
        peer = addr[0] if addr else ""
        reserve = False
        if len(self.conns) >= self.rt.config.max_connections and not self._evict():
            # every slot is busy with a request: a few more connections are
            # taken for probes, the rest refused
            reserve = self.reserved < RESERVE
            if not reserve:
                self._count_conn("max_connections", peer)
                try:
                    sock.sendall(BUSY)
                except OSError:
                    pass
                sock.close()
                return
        conn = Conn(sock, peer)
        conn.reserve = reserve
        if reserve:
            self.reserved += 1
        else:
            self.conns[conn] = None
        answer = b""
        try:
            try:
                self._serve(conn)
            except HTTPError as e:
                if not conn.evicted:
                    self._count_request(e.reason, str(e), peer)
                    answer = _answer(e.status, str(e))
            except _Cut as e:
                if not conn.evicted:
                    self._count_conn(e.reason, peer)
                    answer = e.answer
            except OSError:  # resets, timeouts in a body: the client is gone
                pass
            # answered outside the handlers: the traceback's frames hold the
            # request's buffers, which must not live through the linger
            if answer:
                self._close_with(conn, answer)
        finally:
            if reserve:
                self.reserved -= 1
            self.conns.pop(conn, None)
            self._hold(conn, 0)
            sock.close()

    def _close_with(self, conn: Conn, answer: bytes) -> None:
        try:
            conn.sock.sendall(answer)
            self._linger(conn)
        except OSError:
            pass

    def _linger(self, conn: Conn) -> None:
        """Closes gently: a client still sending a body we refused would get a
        reset (and lose our answer) if we closed with its data unread, so stop
        writing, then read and discard for a little while."""
        self._hold(conn, 0)
        conn.buf = bytearray()
        conn.state = "linger"
        sock = conn.sock
        try:
            sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER
            discarded = 0
            while discarded < (64 << 20) and not conn.evicted:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                n = sock.recv_into(self.scratch)  # one buffer for every lingering connection
                if not n or time.monotonic() > deadline:
                    break
                discarded += n
                gevent.sleep(0)  # recv does not yield while data is waiting
        except OSError:
            pass

    def _serve(self, conn: Conn) -> None:
        first = True
        while True:
            req = self._read_head(conn, first)
            if req is None:
                return
            if conn.reserve:
                if req.method != "GET" or req.chunked or req.length:
                    raise _Cut("max_connections", BUSY)
                req.keep_alive = False
            if not self._respond(conn, req):
                if not conn.evicted:
                    self._linger(conn)
                return
            first = False
            gevent.sleep(0)  # a client pipelining without pause must not starve the others

    def _read_head(self, conn: Conn, first: bool) -> Request | None:
        """The next request head; None when the client closed or idled out between requests."""
        cfg = self.rt.config
        conn.compact()
        reader = HeadReader(self.max_head)
        now = time.monotonic()
        conn.state, conn.since = ("head", now) if first else ("idle", now)
        # a new connection has HTTP_HEADER_TIMEOUT for its first head (and no
        # more than IDLE_TIMEOUT of silence); a kept-alive one may be silent
        # for IDLE_TIMEOUT, then has HTTP_HEADER_TIMEOUT from its first byte
        deadline = now + cfg.http_header_timeout
        idle_until = now + (cfg.idle_timeout or 1e9)
        sock = conn.sock
        while True:
            if conn.evicted:
                return None
            if conn.pos < len(conn.buf):
                got = reader.read(conn.buf, conn.pos)
                if got is not None:
                    req, conn.pos = got
                    conn.state = "busy"
                    self._hold(conn, 0)
                    return req
                if conn.state == "idle":
                    conn.state, conn.since = "head", time.monotonic()
                    deadline = conn.since + cfg.http_header_timeout
            have = len(conn.buf) - conn.pos
            until = min(deadline, idle_until) if first else \
                deadline if conn.state == "head" else idle_until
            room = max(0, FREE - have) + self.budget.room()
            if room <= 0:
                raise _Cut("buffer_budget", OVER_BUDGET)
            # what this recv may bring is counted before it blocks: the
            # others waiting meanwhile must not be granted the same room
            want = max(1, min(HEAD_READ, room, self.max_head + 1 - have))
            self._hold(conn, max(0, have + want - FREE))
            sock.settimeout(max(0.001, until - time.monotonic()))
            try:
                data = sock.recv(want)
            except TimeoutError:
                if have:
                    raise _Cut("header_timeout", TIMEOUT) from None
                # silence: closed without an answer, as an idle connection
                raise _Cut("header_timeout" if first and deadline <= idle_until else "idle_timeout") \
                    from None
            if not data:
                if have and not conn.evicted:
                    raise HTTPError("400 Bad Request", "truncated", "connection closed in the request head")
                return None
            conn.buf += data
            del data  # not held while this greenlet waits for the next read
            self._hold(conn, max(0, len(conn.buf) - conn.pos - FREE))

    def _respond(self, conn: Conn, req: Request) -> bool:
        """Serves one request; False when the connection should close."""
        path, _, query = req.target.partition("?")
        env: dict[str, Any] = {"REQUEST_METHOD": req.method, "PATH_INFO": unquote(path, "latin-1"),
                               "QUERY_STRING": query, "SERVER_PROTOCOL": req.version,
                               "REMOTE_ADDR": conn.peer, "logtrain.reserve": conn.reserve}
        for name, value in req.headers:
            if "_" in name:
                continue  # Foo_Bar and Foo-Bar would share a key: such fields are ignored
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_LENGTH", "CONTENT_TYPE"):
                env.setdefault(key, value)
            else:
                key = "HTTP_" + key
                env[key] = f"{env[key]},{value}" if key in env else value
        if req.chunked:
            env.pop("CONTENT_LENGTH", None)
        conn.sock.settimeout(self.rt.config.idle_timeout or None)
        body = Body(conn, req, 0, self.max_head)
        try:
            status, headers, data = self._dispatch(conn, env, req, body)
        finally:
            self._hold(conn, 0)
        if isinstance(data, Stream):
            data.serve(conn, req.version == "HTTP/1.1", status, headers)
            return False
        keep = req.keep_alive
        if not body.done:
            # the body was refused unread: the connection cannot be reused
            keep = keep and not body.expect and self._drain_body(body)
        self._send(conn.sock, status, headers, data, keep)
        return keep

    def _drain_body(self, body: Body) -> bool:
        """Reads and discards a small unread body so the connection can serve the
        next request; a large or chunked one closes the connection instead."""
        if body.chunks is not None or body.left > DRAIN_SMALL:
            return False
        while not body.done:
            body.read()
        return True

    def _send(self, sock: socket.socket, status: str, headers: list[tuple[str, str]],
              body: bytes, keep: bool) -> None:
        head = [f"HTTP/1.1 {status}"]
        head += [f"{k}: {v}" for k, v in headers]
        head.append(f"Content-Length: {len(body)}")
        head.append("Connection: " + ("keep-alive" if keep else "close"))
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

    def _dispatch(self, conn: Conn, env: dict, req: Request, body: Body) -> Response:
        route = self._find(env.get("PATH_INFO", ""))
        if route is None:
            return json_response("404 Not Found", {"error": "no such path"})
        key, methods, handler = route
        if env["REQUEST_METHOD"] not in methods:
            return json_response("405 Method Not Allowed", {"error": "use " + " or ".join(methods)},
                                 [("Allow", ", ".join(methods))])
        guard = self.guards.get(key)
        if guard is not None:
            refused = guard(env)
            if refused is not None:
                return refused
        arg: Any = b""
        if env["REQUEST_METHOD"] in ("POST", "PUT"):
            limit = self.max_body.get(key) or self.rt.config.http_max_body
            body.limit = limit
            if not req.chunked and req.length > limit:
                self._count_request("body_too_large", "Content-Length over the limit", conn.peer)
                return json_response("413 Content Too Large",
                                     {"error": f"body over HTTP_MAX_BODY ({limit} bytes)"})
            stream = key in self.streaming
            # what reading this body may hold: a piece and a partial frame
            # when streamed, the whole body otherwise
            need = 2 * READ + self.rt.config.max_frame_size if stream else \
                min(limit, req.length) if not req.chunked else limit
            if not self._reserve(conn, need):
                self._count_request("buffer_budget", "INPUT_PARTIAL_BUDGET reached", conn.peer)
                return json_response("503 Service Unavailable",
                                     {"error": "server busy, retry later"}, [("Retry-After", "1")])
            arg = body if stream else body.read_all()
        try:
            return handler(env, arg)
        except (HTTPError, OSError):
            raise  # the body was malformed or over its limit, or the client went away
        except Exception as e:  # noqa: BLE001 - one bad request never takes the server down
            self.rt.log.error("HTTP handler failed", path=env.get("PATH_INFO"), error=repr(e))
            return json_response("500 Internal Server Error", {"error": "internal error"})
