"""The status page at ``/`` and what it reads, on HTTP_PORT.

    GET    /              the page (logtrain/status_page.py: one HTML file, no external assets)
    GET    /status.json   inputs with their counters, routes by datasource, drains
                          with their state, live tails; polled by the page
    POST   /session       {"token": API_TOKEN} -> the page's cookie
    DELETE /session       forgets it

With API_TOKEN set, /status.json and /tail take either the bearer token or
the page's cookie: the page asks for the token once and the agent answers with
an HttpOnly, SameSite=Strict cookie holding an HMAC of the token (not the
token), so scripts cannot read it and other sites' pages cannot send it. The
cookie opens only these read-only endpoints, never the routes API. Drain URLs
appear only as their masked names (logtrain/urls.py); hostnames and every
other text from outside are written into the page as text, never as markup.
"""

from __future__ import annotations

import json
import time
from typing import Any

from logtrain import __version__
from logtrain.httpserver import HTTPServer, Response, json_response
from logtrain.router import Router
from logtrain.runtime import Runtime

COOKIE = "logtrain-session"
COOKIE_AGE = 30 * 24 * 3600  # seconds: asked once a month, not at every visit
SESSION_MAX_BODY = 4 << 10
ROUTES_SHOWN = 500  # routes listed per datasource (the rest are counted)
PAGE_HEADERS = [
    ("Content-Type", "text/html; charset=utf-8"),
    # nothing but this page's own inline script and style, and requests to itself
    ("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; "
     "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
     "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
]


class PageAuth:
    """A guard taking API_TOKEN as a bearer token or as the page's cookie;
    refusals are counted (``logtrain_http_rejected_total{reason="unauthorized"}``)."""

    def __init__(self, rt: Runtime, token: str) -> None:
        import hashlib
        import hmac

        self.rt = rt
        self.token = token.encode()
        self.cookie = hmac.new(self.token, b"logtrain status page", hashlib.sha256).hexdigest()
        self.same = hmac.compare_digest

    def token_ok(self, given: str) -> bool:
        return self.same(given.encode("utf-8", "surrogateescape"), self.token)

    def __call__(self, env: dict) -> Response | None:
        auth = env.get("HTTP_AUTHORIZATION", "")
        if auth:
            scheme, _, given = auth.partition(" ")
            if scheme.lower() == "bearer" and given and self.token_ok(given.strip()):
                return None
            return self.refuse(env, "wrong bearer token")
        for part in env.get("HTTP_COOKIE", "").replace(",", ";").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and self.same(value.encode("latin-1", "replace"),
                                            self.cookie.encode()):
                return None
        return self.refuse(env, "missing bearer token")

    def refuse(self, env: dict, why: str) -> Response:
        rt = self.rt
        rt.metrics.inc("logtrain_http_rejected_total", reason="unauthorized")
        held = rt.ratelimit.allow(("http-unauthorized", env.get("PATH_INFO", "")))
        if held is not None:
            rt.log.warning("HTTP request refused", reason="unauthorized", error=why,
                           path=env.get("PATH_INFO", ""), peer=env.get("REMOTE_ADDR", ""),
                           refused_since_last_report=held)
        return json_response("401 Unauthorized", {"error": why},
                             [("WWW-Authenticate", 'Bearer realm="logtrain"')])


def serve(rt: Runtime, router: Router, http: HTTPServer, inputs: list,
          datasources: list) -> Any:
    """Registers /tail (MAX_TAILS > 0) and the status page (STATUS_PAGE);
    returns the TailHub, or None."""
    cfg = rt.config
    auth = PageAuth(rt, cfg.api_token) if cfg.api_token else None
    tails = None
    if cfg.max_tails:
        from logtrain.livetail import TailHub

        tails = TailHub(rt, router)
        tails.register(http, auth)
    if cfg.status_page:
        StatusPage(rt, router, inputs, datasources, tails, auth).register(http)
    return tails


class StatusPage:
    """``inputs`` and ``datasources`` are the agent's own lists (filled as it
    starts); ``tails`` the TailHub, or None when MAX_TAILS is 0."""

    def __init__(self, rt: Runtime, router: Router, inputs: list, datasources: list,
                 tails: Any = None, auth: PageAuth | None = None) -> None:
        self.rt = rt
        self.router = router
        self.inputs = inputs
        self.datasources = datasources
        self.tails = tails
        self.started = time.time()
        self.auth = auth

    def register(self, http: HTTPServer) -> None:
        http.add("/", ("GET",), self._page)
        http.add("/status.json", ("GET",), self._status, guard=self.auth)
        http.add("/session", ("POST", "DELETE"), self._session, SESSION_MAX_BODY)

    def _page(self, env: dict, body: bytes) -> Response:
        from logtrain.status_page import render

        return "200 OK", list(PAGE_HEADERS), render(
            token=self.auth is not None, tails=self.tails is not None)

    def _status(self, env: dict, body: bytes) -> Response:
        return "200 OK", [("Content-Type", "application/json"), ("Cache-Control", "no-store")], \
            json.dumps(self.snapshot()).encode() + b"\n"

    def _session(self, env: dict, body: bytes) -> Response:
        expire = f"{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        if env["REQUEST_METHOD"] == "DELETE":
            return "204 No Content", [("Set-Cookie", expire)], b""
        if self.auth is None:
            return json_response("404 Not Found", {"error": "no API_TOKEN: the page needs none"})
        try:
            given = json.loads(body).get("token")
        except (ValueError, AttributeError):
            given = None
        if not isinstance(given, str) or not self.auth.token_ok(given):
            return self.auth.refuse(env, "wrong token")
        self.rt.log.info("status page session opened", peer=env.get("REMOTE_ADDR", ""))
        cookie = (f"{COOKIE}={self.auth.cookie}; Path=/; HttpOnly; SameSite=Strict; "
                  f"Max-Age={COOKIE_AGE}")
        return "204 No Content", [("Set-Cookie", cookie), ("Cache-Control", "no-store")], b""

    # ----------------------------------------------------------------- the data

    def snapshot(self) -> dict:
        m = self.rt.metrics
        # one pass over the counters: a node may have thousands of drains
        by: dict[tuple[str, str], int] = {}
        totals: dict[str, int] = {}
        for (name, labels), v in list(m.counters.items()):
            totals[name] = totals.get(name, 0) + v
            for _, value in labels:
                if value:
                    key = (name, value)
                    by[key] = by.get(key, 0) + v
                    break  # grouped on the first label (labels are sorted: drain, input)
        inputs = []
        for i in self.inputs:
            conns = m.gauges.get(("logtrain_input_connections", (("input", i.name),)))
            inputs.append({"name": i.name, "describe": i.describe(),
                           "frames": by.get(("logtrain_input_frames_total", i.name), 0),
                           "rejected": by.get(("logtrain_input_rejected_total", i.name), 0),
                           "connections": _call(conns)})
        sources = []
        for ds in self.datasources:
            routes = ds.listing()
            sources.append({"datasource": ds.describe(), "count": len(routes),
                            "routes": [{k: r.get(k) for k in ("hostname", "endpoint", "error")
                                        if r.get(k) is not None} for r in routes[:ROUTES_SHOWN]]})
        drains = []
        for d in list(self.router.drains.values()):
            state = "paused" if d.paused_until else "failing" if d.failures else \
                "connected" if d.connections else "idle"
            drains.append({"drain": d.name, "state": state, "connections": d.connections,
                           "buffered_bytes": d.buffered + d.inflight,
                           "spooled_bytes": getattr(d, "spooled", 0),
                           "sent": by.get(("logtrain_drain_sent_total", d.name), 0),
                           "dropped": by.get(("logtrain_drain_dropped_total", d.name), 0),
                           "errors": by.get(("logtrain_drain_errors_total", d.name), 0)})
        drains.sort(key=lambda x: x["drain"])
        return {"version": __version__, "uptime_seconds": round(time.time() - self.started),
                "received": totals.get("logtrain_input_frames_total", 0),
                "dead_packets": totals.get("logtrain_dead_packets_total", 0),
                "routes": len(self.router.routes), "inputs": inputs, "datasources": sources,
                "drains": drains,
                "tails": self.tails.describe() if self.tails is not None else None,
                "max_tails": self.rt.config.max_tails}


def _call(fn: Any) -> float | None:
    try:
        return fn() if fn is not None else None
    except Exception:  # noqa: BLE001 - a gauge of something being torn down
        return None

