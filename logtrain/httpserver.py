"""The one HTTP server on HTTP_PORT, shared by the HTTP inputs, the routes API,
persistent reads, /metrics and /health.

Handlers are registered by exact path or by prefix and return (status, headers, body); the
server enforces HTTP_MAX_BODY before a handler reads anything.

HTTP/1.1 is written here on gevent's StreamServer rather than with
gevent.pywsgi: pywsgi parses headers with http.client and email, about 2 MB of
resident memory for an agent whose whole HTTP surface is a few POST and GET
paths. What it serves: keep-alive, Content-Length and chunked bodies,
``Expect: 100-continue`` (answered only once the request passed its checks),
limits on the request line and headers, and an idle timeout between requests.
Requests with both Content-Length and Transfer-Encoding, or with a
Transfer-Encoding other than chunked, are refused (400) and the connection is
closed, so no body can be read two ways.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from gevent.pool import Pool
from gevent.server import StreamServer

from logtrain.runtime import Runtime

Response = tuple[str, list[tuple[str, str]], bytes]
Handler = Callable[[dict, bytes], Response]
Guard = Callable[[dict], Response | None]

MAX_LINE = 8192  # request line, and each header line
MAX_HEADERS = 100
READ = 64 << 10


class BadRequest(Exception):
    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class _Conn:
    """A connection's buffered reader."""

    __slots__ = ("sock", "buf", "pos")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.pos = 0

    def _fill(self) -> bool:
        data = self.sock.recv(READ)
        if not data:
            return False
        self.buf = self.buf[self.pos:] + data
        self.pos = 0
        return True

    def line(self, limit: int = MAX_LINE) -> bytes | None:
        """The next CRLF- or LF-terminated line, without it; None at EOF."""
        while True:
            nl = self.buf.find(b"\n", self.pos)
            if nl >= 0:
                if nl - self.pos > limit:
                    raise BadRequest("431 Request Header Fields Too Large", "line too long")
                line = self.buf[self.pos:nl]
                self.pos = nl + 1
                return line[:-1] if line.endswith(b"\r") else line
            if len(self.buf) - self.pos > limit:
                raise BadRequest("431 Request Header Fields Too Large", "line too long")
            if not self._fill():
                if len(self.buf) > self.pos:
                    raise BadRequest("400 Bad Request", "connection closed mid-request")
                return None

    def exactly(self, n: int) -> bytes:
        have = len(self.buf) - self.pos
        if have >= n:
            out = self.buf[self.pos:self.pos + n]
            self.pos += n
            return out
        # a large body: gather the reads and join once (no copy per read)
        parts = [self.buf[self.pos:]]
        self.buf, self.pos = b"", 0
        while have < n:
            data = self.sock.recv(max(READ, min(n - have, 1 << 20)))
            if not data:
                raise BadRequest("400 Bad Request", "body shorter than announced")
            parts.append(data)
            have += len(data)
        out = b"".join(parts)
        self.buf = out[n:]
        return out[:n]


class _Body:
    """``wsgi.input``: reads a Content-Length or chunked body, sending
    ``100 Continue`` first when the client waits for it."""

    def __init__(self, conn: _Conn, length: int, chunked: bool, expect: bool) -> None:
        self.conn = conn
        self.left = length
        self.chunked = chunked
        self.expect = expect
        self.done = not chunked and length <= 0

    def read(self, limit: int) -> bytes:
        if self.expect:
            self.conn.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.expect = False
        if not self.chunked:
            n = min(limit, self.left)
            self.left -= n
            self.done = self.left == 0
            return self.conn.exactly(n) if n else b""
        parts, size = [], 0
        while not self.done and size < limit:
            head = self.conn.line()
            if head is None:
                raise BadRequest("400 Bad Request", "chunked body ended early")
            try:
                n = int(head.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest("400 Bad Request", "bad chunk size") from None
            if n < 0:
                raise BadRequest("400 Bad Request", "bad chunk size")
            if n == 0:
                while self.conn.line():  # trailers, up to the empty line
                    pass
                self.done = True
                break
            if size + n > limit:  # read no further: the connection closes after the 413
                raise BadRequest("413 Content Too Large", f"body over the limit ({limit} bytes)")
            parts.append(self.conn.exactly(n))
            size += n
            if self.conn.exactly(2) not in (b"\r\n",):
                raise BadRequest("400 Bad Request", "chunk not followed by CRLF")
        return b"".join(parts)


def json_response(status: str, obj: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(obj).encode() + b"\n"
    return status, [("Content-Type", "application/json")] + (headers or []), body


class HTTPServer:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.routes: dict[str, tuple[tuple[str, ...], Handler]] = {}
        self.prefixes: list[tuple[str, tuple[str, ...], Handler]] = []
        self.max_body: dict[str, int] = {}  # path or prefix -> smaller body limit
        self.guards: dict[str, Guard] = {}  # path or prefix -> check before the body is read
        self.server: StreamServer | None = None
        self.add("/health", ("GET",), self._health)

    def _health(self, env: dict, body: bytes) -> Response:
        """``ok`` while every supervised task runs (503 naming the task that
        keeps crashing); ``?verbose`` adds each task's state as JSON."""
        ok, tasks = self.rt.tasks.health()
        if "verbose" in env.get("QUERY_STRING", ""):
            return json_response("200 OK" if ok else "503 Service Unavailable",
                                 {"status": "ok" if ok else "failing", "tasks": tasks})
        if ok:
            return "200 OK", [], b"ok\n"
        failing = ", ".join(n for n, t in tasks.items() if t["state"] == "failing")
        return "503 Service Unavailable", [], f"failing: {failing} keeps crashing\n".encode()

    def add(self, path: str, methods: tuple[str, ...], handler: Handler,
            max_body: int = 0, guard: Guard | None = None) -> None:
        if path in self.routes:
            raise ValueError(f"HTTP path {path} is used twice")
        self.routes[path] = (methods, handler)
        if max_body:
            self.max_body[path] = max_body
        if guard:
            self.guards[path] = guard

    def add_prefix(self, prefix: str, methods: tuple[str, ...], handler: Handler,
                   max_body: int = 0, guard: Guard | None = None) -> None:
        """Serves every path under ``prefix`` (which ends with '/'); the handler
        finds the rest of the path in ``env['PATH_INFO']``."""
        if any(p == prefix for p, _, _ in self.prefixes):
            raise ValueError(f"HTTP path {prefix} is used twice")
        self.prefixes.append((prefix, methods, handler))
        self.prefixes.sort(key=lambda r: -len(r[0]))  # the longest prefix wins
        if max_body:
            self.max_body[prefix] = max_body
        if guard:
            self.guards[prefix] = guard

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
        self.server = StreamServer((cfg.bind_address, cfg.http_port), self._handle,
                                   spawn=Pool(cfg.max_connections), backlog=1024)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(timeout=2)

    def _handle(self, sock: socket.socket, addr: Any) -> None:
        conn = _Conn(sock)
        sock.settimeout(self.rt.config.idle_timeout or None)
        try:
            while self._one(conn, addr):
                pass
        except BadRequest as e:
            try:
                self._send(sock, e.status, [], json.dumps({"error": str(e)}).encode() + b"\n",
                           keep=False, ctype=True)
                self._linger(sock)
            except OSError:
                pass
        except OSError:  # timeouts, resets: the client is gone
            pass
        else:
            self._linger(sock)
        finally:
            sock.close()

    @staticmethod
    def _linger(sock: socket.socket) -> None:
        """Closes gently: a client still sending a body we refused would get a
        reset (and lose our answer) if we closed with its data unread, so stop
        writing, then read and discard for a little while."""
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(2.0)
            discarded = 0
            while discarded < (64 << 20):
                data = sock.recv(READ)
                if not data:
                    break
                discarded += len(data)
        except OSError:
            pass

    def _one(self, conn: _Conn, addr: Any) -> bool:
        """Serves one request; False when the connection should close."""
        line = conn.line()
        while line == b"":  # stray CRLF between requests
            line = conn.line()
        if line is None:
            return False
        try:
            method, target, version = line.decode("latin-1").split(" ")
        except ValueError:
            raise BadRequest("400 Bad Request", "malformed request line") from None
        if not version.startswith("HTTP/1."):
            raise BadRequest("505 HTTP Version Not Supported", "HTTP/1.x only")
        path, _, query = target.partition("?")
        env: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": unquote(path, "latin-1"),
                               "QUERY_STRING": query, "SERVER_PROTOCOL": version,
                               "REMOTE_ADDR": addr[0] if addr else ""}
        for _ in range(MAX_HEADERS + 1):
            h = conn.line()
            if h is None:
                raise BadRequest("400 Bad Request", "connection closed in the headers")
            if not h:
                break
            name, sep, value = h.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip() or h[:1] in (b" ", b"\t"):
                raise BadRequest("400 Bad Request", "malformed header")
            key = name.upper().replace("-", "_")
            value = value.strip()
            if key in ("CONTENT_LENGTH", "CONTENT_TYPE"):
                if key in env and env[key] != value:
                    raise BadRequest("400 Bad Request", f"conflicting {name} headers")
                env[key] = value
            else:
                key = "HTTP_" + key
                env[key] = f"{env[key]},{value}" if key in env else value
        else:
            raise BadRequest("431 Request Header Fields Too Large", "too many headers")
        te = env.get("HTTP_TRANSFER_ENCODING", "").lower()
        length = env.get("CONTENT_LENGTH", "")
        if te and (te != "chunked" or length):
            raise BadRequest("400 Bad Request", "unsupported Transfer-Encoding")
        if length and not length.isdigit():
            raise BadRequest("400 Bad Request", "bad Content-Length")
        conn_hdr = env.get("HTTP_CONNECTION", "").lower()
        keep = ("close" not in conn_hdr) if version == "HTTP/1.1" else ("keep-alive" in conn_hdr)
        body = _Body(conn, int(length or 0), te == "chunked",
                     env.get("HTTP_EXPECT", "").lower() == "100-continue")
        env["wsgi.input"] = body
        if te == "chunked":
            env.pop("CONTENT_LENGTH", None)
        status, headers, data = self._dispatch(env)
        if not body.done:
            # the body was refused unread: the connection cannot be reused
            keep = keep and not body.expect and self._drain_body(body)
        self._send(conn.sock, status, headers, data, keep)
        return keep

    def _drain_body(self, body: _Body) -> bool:
        """Reads and discards a small unread body so the connection can serve the
        next request; a large one closes the connection instead."""
        if body.chunked or body.left > 64 << 10:
            return False
        body.read(body.left)
        return True

    def _send(self, sock: socket.socket, status: str, headers: list[tuple[str, str]],
              body: bytes, keep: bool, ctype: bool = False) -> None:
        head = [f"HTTP/1.1 {status}"]
        if ctype:
            head.append("Content-Type: application/json")
        head += [f"{k}: {v}" for k, v in headers]
        head.append(f"Content-Length: {len(body)}")
        head.append("Connection: " + ("keep-alive" if keep else "close"))
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

    def _dispatch(self, env: dict) -> Response:
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
        body = b""
        if env["REQUEST_METHOD"] in ("POST", "PUT"):
            limit = self.max_body.get(key) or self.rt.config.http_max_body
            try:
                length = int(env.get("CONTENT_LENGTH") or -1)
            except ValueError:
                return json_response("400 Bad Request", {"error": "bad Content-Length"})
            if length > limit:
                return json_response("413 Content Too Large",
                                     {"error": f"body over HTTP_MAX_BODY ({limit} bytes)"})
            try:
                body = env["wsgi.input"].read(limit + 1 if length < 0 else length)
            except (OSError, ValueError) as e:
                return json_response("400 Bad Request", {"error": f"could not read body: {e}"})
            if len(body) > limit:
                return json_response("413 Content Too Large",
                                     {"error": f"body over HTTP_MAX_BODY ({limit} bytes)"})
        try:
            return handler(env, body)
        except Exception as e:  # noqa: BLE001 - one bad request never takes the server down
            self.rt.log.error("HTTP handler failed", path=env.get("PATH_INFO"), error=repr(e))
            return json_response("500 Internal Server Error", {"error": "internal error"})
