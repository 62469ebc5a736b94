"""The routes API and persistent reads on HTTP_PORT.

    GET    /routes           every route in effect, from every datasource
    GET    /routes?hostname=H  the routes a packet of hostname H matches, each
                             with its datasource (and, for annotations, its object)
    POST   /routes           {"hostname": ..., "endpoint": ...} into the writable datasource
    DELETE /routes/{id}      a route of the writable datasource, by id
    GET    {PERSISTENT_PATH}{KEY}   the lines a persistent://KEY drain kept

The routes API exists only when API_TOKEN is set, and every request needs
``Authorization: Bearer API_TOKEN``; persistent reads need it too when it is set.
Endpoints are shown with their credentials masked, in responses and log lines.
A POST is admitted by the trust policy as coming from the ``api`` datasource,
and, since the route then lives as a row of the Postgres table, as coming from
``postgres`` too; a refusal is answered 400 with the reason.
"""

from __future__ import annotations

import fnmatch
import hmac
import json
import uuid
from typing import Any
from urllib.parse import parse_qs

from logtrain.httpserver import HTTPServer, Response, json_response
from logtrain.router import Router, check_hostname
from logtrain.runtime import Runtime
from logtrain.trust import Refused
from logtrain.urls import mask_url

API_MAX_BODY = 64 << 10
_GLOB = frozenset("*?[")


def matches(pattern: str, host: str) -> bool:
    """Whether a route's hostname or glob matches a packet's hostname, as the
    router matches them (case-insensitive, fnmatch globs)."""
    p, h = pattern.lower(), host.lower()
    return fnmatch.fnmatchcase(h, p) if _GLOB & set(p) else p == h


def _no_writable(method: str) -> Response:
    return json_response("409 Conflict", {
        "error": f"no writable datasource: {method} /routes needs POSTGRES=true"})


class TokenGuard:
    def __init__(self, token: str) -> None:
        self.token = token.encode()

    def __call__(self, env: dict) -> Response | None:
        auth = env.get("HTTP_AUTHORIZATION", "")
        scheme, _, given = auth.partition(" ")
        if scheme.lower() != "bearer" or not given:
            return json_response("401 Unauthorized", {"error": "missing bearer token"},
                                 [("WWW-Authenticate", 'Bearer realm="logtrain"')])
        if not hmac.compare_digest(given.strip().encode(), self.token):
            return json_response("401 Unauthorized", {"error": "wrong token"},
                                 [("WWW-Authenticate", 'Bearer error="invalid_token"')])
        return None


class RoutesAPI:
    """``table`` (a DrainsTable) takes the writes and ``writable`` (the
    Postgres datasource) applies them at once, before its notification."""

    def __init__(self, rt: Runtime, router: Router, datasources: list[Any],
                 table: Any = None, writable: Any = None) -> None:
        self.rt = rt
        self.router = router
        self.datasources = datasources
        self.table = table
        self.writable = writable

    def register(self, http: HTTPServer, token: str) -> None:
        guard = TokenGuard(token)
        http.add("/routes", ("GET", "POST"), self._routes, API_MAX_BODY, guard)
        http.add_prefix("/routes/", ("GET", "DELETE"), self._route, API_MAX_BODY, guard)

    def _routes(self, env: dict, body: bytes) -> Response:
        if env["REQUEST_METHOD"] == "GET":
            query = parse_qs(env.get("QUERY_STRING", ""))
            if "hostname" in query:
                return self._matching(query["hostname"][0])
            out = []
            for ds in self.datasources:
                out.extend(ds.listing())
            return json_response("200 OK", out)
        return self._create(body)

    def _matching(self, host: str) -> Response:
        """Every route whose hostname or glob matches ``host``, with the
        datasource it comes from; refused ones carry ``error``."""
        try:
            check_hostname(host)
        except ValueError as e:
            return json_response("400 Bad Request", {"error": str(e)})
        out = []
        for ds in self.datasources:
            for r in ds.listing():
                pattern = r.get("hostname")
                if isinstance(pattern, str) and matches(pattern, host):
                    out.append(dict(r, datasource=ds.describe()))
        return json_response("200 OK", {"hostname": host, "routes": out})

    def _create(self, body: bytes) -> Response:
        ds = self.writable
        if ds is None:
            return _no_writable("POST")
        try:
            obj = json.loads(body)
        except ValueError as e:
            return json_response("400 Bad Request", {"error": f"body is not JSON: {e}"})
        if not isinstance(obj, dict):
            return json_response("400 Bad Request", {"error": "expected a JSON object"})
        host, endpoint = obj.get("hostname"), obj.get("endpoint")
        try:
            check_hostname(host)
        except ValueError as e:
            return json_response("400 Bad Request", {"error": str(e)})
        if not isinstance(endpoint, str) or not endpoint:
            return json_response("400 Bad Request", {"error": "endpoint must be a drain URL"})
        try:
            self.router.check_route("api", host, endpoint)
            self.router.check_route(ds.source, host, endpoint)
        except Refused as e:
            return json_response("400 Bad Request", {"error": f"endpoint refused ({e.reason}): {e}",
                                                     "reason": e.reason})
        except ValueError as e:
            return json_response("400 Bad Request", {"error": f"endpoint: {e}"})
        try:
            drain = self.table.insert(host, endpoint)
        except Exception as e:  # noqa: BLE001 - the database's trouble, not the request's
            return self._unavailable(e)
        ds.apply(drain, (host, endpoint))  # in effect now, not when the notification comes
        self.rt.log.info("route added through the API", id=drain, hostname=host,
                         endpoint=mask_url(endpoint))
        return json_response("201 Created", {"id": drain, "hostname": host,
                                             "endpoint": mask_url(endpoint),
                                             "source": ds.source},
                             [("Location", f"/routes/{drain}")])

    def _route(self, env: dict, body: bytes) -> Response:
        raw = env["PATH_INFO"][len("/routes/"):]
        try:
            drain = str(uuid.UUID(raw))
        except ValueError:
            return json_response("400 Bad Request", {"error": "a route id is a UUID"})
        if env["REQUEST_METHOD"] == "GET":
            for ds in self.datasources:
                for r in ds.listing():
                    if r.get("id") == drain:
                        return json_response("200 OK", r)
            return json_response("404 Not Found", {"error": "no such route"})
        ds = self.writable
        if ds is None:
            return _no_writable("DELETE")
        try:
            found = self.table.delete(drain)
        except Exception as e:  # noqa: BLE001
            return self._unavailable(e)
        if not found:
            return json_response("404 Not Found", {"error": "no such route"})
        ds.apply(drain, None)
        self.rt.log.info("route deleted through the API", id=drain)
        return "204 No Content", [], b""

    def _unavailable(self, err: Exception) -> Response:
        from logtrain import pg

        reason = pg.describe(err, self.table.url if self.table else "")
        self.rt.log.warning("routes API: database unavailable", error=reason)
        return json_response("503 Service Unavailable",
                             {"error": f"database unavailable: {reason}"},
                             [("Retry-After", "5")])


class PersistentAPI:
    """``GET {PERSISTENT_PATH}{KEY}`` from the agent's persistent store."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def register(self, http: HTTPServer, token: str) -> None:
        http.add_prefix(self.rt.config.persistent_path, ("GET",), self._get,
                        guard=TokenGuard(token) if token else None)

    def _get(self, env: dict, body: bytes) -> Response:
        from logtrain import pg
        from logtrain.persistent_store import KEY

        store = self.rt.persistent
        key = env["PATH_INFO"][len(self.rt.config.persistent_path):]
        if not KEY.fullmatch(key):
            return json_response("400 Bad Request", {"error": "malformed key"})
        try:
            data = store.read(key)
        except Exception as e:  # noqa: BLE001
            reason = pg.describe(e, store.url)
            self.rt.log.warning("persistent read: database unavailable", error=reason)
            return json_response("503 Service Unavailable",
                                 {"error": f"database unavailable: {reason}"},
                                 [("Retry-After", "5")])
        if data is None:
            return json_response("404 Not Found", {"error": "no such key"})
        return "200 OK", [("Content-Type", "text/plain; charset=utf-8")], data
