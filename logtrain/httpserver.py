"""The one HTTP server on HTTP_PORT, shared by the HTTP inputs, the routes API,
persistent reads, /metrics and /health.

Handlers are registered by exact path or by prefix and return (status, headers, body); the
server enforces HTTP_MAX_BODY before a handler reads anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gevent.pywsgi import WSGIServer

from logtrain.runtime import Runtime

Response = tuple[str, list[tuple[str, str]], bytes]
Handler = Callable[[dict, bytes], Response]
Guard = Callable[[dict], Response | None]


def json_response(status: str, obj: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(obj).encode() + b"\n"
    return status, [("Content-Type", "application/json")] + (headers or []), body


class _ErrorLog:
    """gevent writes tracebacks of broken requests here: keep them in our log."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def write(self, msg: str) -> None:
        msg = msg.strip()
        if msg:
            self.rt.log.debug("http server", detail=msg[-500:])

    def flush(self) -> None:
        pass


class HTTPServer:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.routes: dict[str, tuple[tuple[str, ...], Handler]] = {}
        self.prefixes: list[tuple[str, tuple[str, ...], Handler]] = []
        self.max_body: dict[str, int] = {}  # path or prefix -> smaller body limit
        self.guards: dict[str, Guard] = {}  # path or prefix -> check before the body is read
        self.server: WSGIServer | None = None
        self.add("/health", ("GET",), lambda env, body: ("200 OK", [], b"ok\n"))

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
        self.server = WSGIServer((cfg.bind_address, cfg.http_port), self._app, log=None,
                                 error_log=_ErrorLog(self.rt))
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(timeout=2)

    def _app(self, env: dict, start_response: Callable) -> list[bytes]:
        status, headers, body = self._dispatch(env)
        start_response(status, headers + [("Content-Length", str(len(body)))])
        return [body]

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
