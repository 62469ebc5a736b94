"""A small Kubernetes API server for tests, speaking the API's documented wire
protocol over HTTP/1.1: GET of pods, replicasets, deployments, daemonsets,
statefulsets, jobs and cronjobs by namespace and name; lists across all
namespaces or one, with resourceVersion, ``limit`` and ``continue``; watches
as chunked streams of JSON events (one per line) from a resourceVersion, with
BOOKMARK events, ``timeoutSeconds``, and the 410 Gone ERROR event for a
resourceVersion older than the last compaction; SelfSubjectAccessReview.

Run as ``python tests/kubeapi.py STATE_DIR [PORT] [--tls CERT KEY]``; it
prints ``port N`` once listening. STATE_DIR holds ``objects.json`` (a list of
API objects, re-read when it changes) and ``token`` (the bearer token it
accepts, re-read on every request, so a test can rotate it). When
``events.json`` exists, every watch streams those events and ends (the naming
tests' fixed script). GET /_counts (no token needed) answers how many requests
each path (with ``?watch`` for watches) received.

Tests change the cluster through control requests (no token needed):
POST /_apply (an object: created or updated, its resourceVersion bumped),
POST /_delete ({"kind","namespace","name"}), POST /_compact ({"expire": true}
also ends open watches with 410 Gone), POST /_config ({"bookmark_interval":
seconds, "slow": {"RESOURCE": seconds between 7-byte pieces}, "deny":
["VERB RESOURCE", ...], "junk": {"RESOURCE": "big" (8 MiB without a newline)
or "bad" (not JSON)}: the next watch of RESOURCE sends that). Changes live in memory (objects.json is
the test's to rewrite); the resourceVersion counter is kept in STATE_DIR/rv,
so a restarted server goes on from where it was, as etcd does.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

RESOURCES = {
    "pods": ("/api/v1", "Pod"),
    "replicasets": ("/apis/apps/v1", "ReplicaSet"),
    "deployments": ("/apis/apps/v1", "Deployment"),
    "daemonsets": ("/apis/apps/v1", "DaemonSet"),
    "statefulsets": ("/apis/apps/v1", "StatefulSet"),
    "jobs": ("/apis/batch/v1", "Job"),
    "cronjobs": ("/apis/batch/v1", "CronJob"),
}
PLURAL = {kind: res for res, (_, kind) in RESOURCES.items()}
SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


class State:
    def __init__(self, d: str) -> None:
        self.dir = d
        self.cond = threading.Condition()
        self.counts: dict[str, int] = {}
        self.by_res: dict[str, dict[tuple[str, str], dict]] = {r: {} for r in RESOURCES}
        self.key: tuple | None = None
        p = os.path.join(d, "rv")
        self.rv = int(open(p).read()) if os.path.exists(p) else 1000
        self.oldest = self.rv  # a watch from an older resourceVersion is 410 Gone
        self.history: list[tuple[int, str, str, dict]] = []  # (rv, resource, type, object)
        self.epoch = 0  # bumped by an expiry: open watches end with 410
        self.bookmark_interval = 0.0
        self.slow: dict[str, float] = {}
        self.deny: set[str] = set()
        self.junk: dict[str, str] = {}  # resource -> "big" or "bad": its next watch sends that

    # ------------------------------------------------------------ objects

    def _path(self) -> str:
        return os.path.join(self.dir, "objects.json")

    def load(self) -> None:
        """Re-reads objects.json when a test rewrote it (under the lock)."""
        p = self._path()
        st = os.stat(p)
        if (st.st_mtime_ns, st.st_size) == self.key:
            return
        self.by_res = {r: {} for r in RESOURCES}
        with open(p) as f:
            for obj in json.load(f):
                m = obj["metadata"]
                if "resourceVersion" not in m:
                    self.rv += 1
                    m["resourceVersion"] = str(self.rv)
                self.by_res[PLURAL[obj["kind"]]][(m["namespace"], m["name"])] = obj
        self.key = (st.st_mtime_ns, st.st_size)

    def _save(self) -> None:
        # only the counter: objects.json is the test's to rewrite (a restart
        # test writes what the cluster holds when the server is back)
        with open(os.path.join(self.dir, "rv"), "w") as f:
            f.write(str(self.rv))

    def change(self, typ: str, obj: dict) -> dict:
        with self.cond:
            self.load()
            res = PLURAL[obj["kind"]]
            m = obj["metadata"]
            key = (m["namespace"], m["name"])
            old = self.by_res[res].get(key)
            if typ == "DELETED":
                if old is None:
                    return {}
                del self.by_res[res][key]
                obj = old
            else:
                typ = "MODIFIED" if old is not None else "ADDED"
                self.by_res[res][key] = obj
            self.rv += 1
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self.history.append((self.rv, res, typ, obj))
            self._save()
            self.cond.notify_all()
            return obj

    def lookup(self, path: str) -> dict | None:
        parts = path.strip("/").split("/")
        with self.cond:
            self.load()
            return self.by_res.get(parts[-2], {}).get((parts[-3], parts[-1]))

    def token(self) -> str:
        with open(os.path.join(self.dir, "token")) as f:
            return f.read().strip()


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def _collection(path: str) -> tuple[str, str] | None:
    """(resource, namespace or '') of a collection path, None otherwise."""
    for res, (prefix, _) in RESOURCES.items():
        if path == f"{prefix}/{res}":
            return res, ""
        rest = path[len(prefix):].split("/") if path.startswith(prefix + "/") else []
        if len(rest) == 4 and rest[1] == "namespaces" and rest[3] == res:
            return res, rest[2]
    return None


class Handler(BaseHTTPRequestHandler):
    state: State
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, code: int, obj: dict | list) -> None:
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _count(self, key: str) -> None:
        with self.state.cond:
            self.state.counts[key] = self.state.counts.get(key, 0) + 1

    def _body(self) -> dict:
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    # ------------------------------------------------------------ control

    def do_POST(self) -> None:  # noqa: N802 - the http.server convention
        path = self.path.partition("?")[0]
        st = self.state
        body = self._body()
        if path == "/_apply":
            self._send(200, st.change("ADDED", body))
        elif path == "/_delete":
            self._send(200, st.change("DELETED", {"kind": body["kind"], "metadata": {
                "namespace": body["namespace"], "name": body["name"]}}))
        elif path == "/_compact":
            with st.cond:
                st.oldest = st.rv
                st.history.clear()
                if body.get("expire"):
                    st.epoch += 1
                st.cond.notify_all()
            self._send(200, {"oldest": st.oldest})
        elif path == "/_config":
            with st.cond:
                st.bookmark_interval = float(body.get("bookmark_interval",
                                                      st.bookmark_interval))
                st.slow = body.get("slow", st.slow)
                st.deny = set(body.get("deny", st.deny))
                st.junk.update(body.get("junk", {}))
            self._send(200, {})
        elif path == SSAR:
            self._count(path)
            if self.headers.get("Authorization") != "Bearer " + st.token():
                self._send(401, _status(401, "Unauthorized", "Unauthorized"))
                return
            attrs = (body.get("spec") or {}).get("resourceAttributes") or {}
            denied = f"{attrs.get('verb')} {attrs.get('resource')}" in st.deny
            body["status"] = {"allowed": not denied}
            if denied:
                body["status"]["reason"] = "no RBAC policy matched"
            self._send(201, body)
        else:
            self._send(404, _status(404, "NotFound", "not found"))

    # ------------------------------------------------------------ reads

    def do_GET(self) -> None:  # noqa: N802
        path, _, query = self.path.partition("?")
        q = {k: v[-1] for k, v in parse_qs(query).items()}
        st = self.state
        if path == "/_counts":
            with st.cond:
                self._send(200, dict(st.counts))
            return
        self._count(path + ("?watch" if q.get("watch") == "true" else ""))
        if self.headers.get("Authorization") != "Bearer " + st.token():
            self._send(401, _status(401, "Unauthorized", "Unauthorized"))
            return
        if q.get("watch") == "true" and os.path.exists(os.path.join(st.dir, "events.json")):
            self._script(q)
            return
        coll = _collection(path)
        if coll is not None:
            if q.get("watch") == "true":
                self._watch(coll[0], coll[1], q)
            else:
                self._list(coll[0], coll[1], q)
            return
        parts = path.strip("/").split("/")
        # [api, v1 | apis, group, v1], namespaces, NS, RESOURCE, NAME
        if len(parts) < 5 or parts[-4] != "namespaces" or parts[-2] not in RESOURCES or \
                "/" + "/".join(parts[:-4]) != RESOURCES[parts[-2]][0]:
            self._send(404, _status(404, "NotFound", "the server could not find the requested "
                                    "resource"))
            return
        obj = st.lookup(path)
        if obj is None:
            self._send(404, _status(404, "NotFound", f'{parts[-2]} "{parts[-1]}" not found'))
            return
        self._send(200, obj)

    def _list(self, res: str, ns: str, q: dict) -> None:
        st = self.state
        limit = int(q.get("limit") or 0)
        with st.cond:
            st.load()
            cont = q.get("continue", "")
            start, rv = 0, st.rv
            if cont:
                off, _, crv = cont.partition(":")
                start, rv = int(off), int(crv)
                if rv < st.oldest:
                    self._send(410, _status(410, "Expired", "The provided continue parameter "
                                            "is too old to display a consistent list result."))
                    return
            items = sorted((k, o) for k, o in st.by_res[res].items() if not ns or k[0] == ns)
        end = start + limit if limit else len(items)
        meta = {"resourceVersion": str(rv)}
        if end < len(items):
            meta["continue"] = f"{end}:{rv}"
        kind = RESOURCES[res][1]
        self._send(200, {"kind": kind + "List", "apiVersion": "v1", "metadata": meta,
                         "items": [o for _, o in items[start:end]]})

    def _watch(self, res: str, ns: str, q: dict) -> None:
        st = self.state
        since = int(q.get("resourceVersion") or 0)
        timeout = float(q.get("timeoutSeconds") or 1800)
        bookmarks = q.get("allowWatchBookmarks") == "true"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        kind = RESOURCES[res][1]
        deadline = time.monotonic() + timeout
        with st.cond:
            junk = st.junk.pop(res, "")
        if junk:  # a hostile or broken server: 8 MiB without a newline, or not JSON
            try:
                for _ in range(128 if junk == "big" else 1):
                    self._chunk(b"x" * 65536 if junk == "big" else b'{"type": "ADDED", "obj\n')
                self._chunk(b"")
            except OSError:
                pass
            return
        try:
            with st.cond:
                epoch = st.epoch
                gone = since < st.oldest
            if gone:
                self._event({"type": "ERROR", "object": _status(
                    410, "Expired", f"too old resource version: {since} ({st.oldest})")}, res)
                self._chunk(b"")
                return
            last_bookmark = time.monotonic()
            while True:
                with st.cond:
                    st.cond.wait(0.05)
                    if st.epoch != epoch:
                        events = [{"type": "ERROR", "object": _status(
                            410, "Expired", "too old resource version")}]
                    else:
                        events = [{"type": t, "object": o} for rv, r, t, o in st.history
                                  if rv > since and r == res
                                  and (not ns or o["metadata"]["namespace"] == ns)]
                        if st.history:
                            since = max(since, st.history[-1][0])
                    interval, now_rv = st.bookmark_interval, st.rv
                for ev in events:
                    self._event(ev, res)
                if events and events[-1]["type"] == "ERROR":
                    break
                now = time.monotonic()
                if bookmarks and interval and now - last_bookmark >= interval:
                    last_bookmark = now
                    self._event({"type": "BOOKMARK", "object": {
                        "kind": kind, "apiVersion": "v1", "metadata": {
                            "resourceVersion": str(now_rv),
                            "annotations": {"k8s.io/initial-events-end": "true"}}}}, res)
                if now >= deadline:
                    break
            self._chunk(b"")
        except OSError:
            return  # the client went away

    def _event(self, ev: dict, res: str) -> None:
        data = json.dumps(ev).encode() + b"\n"
        delay = self.state.slow.get(res, 0)
        if not delay:
            self._chunk(data)
            return
        for i in range(0, len(data), 7):  # a slow stream: events arrive in pieces
            self._chunk(data[i:i + 7])
            time.sleep(delay)

    def _script(self, q: dict) -> None:
        # events.json: the events every watch streams, one JSON line each;
        # resourceVersion=too-old gets the 410 ERROR event a server sends
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if q.get("resourceVersion") == "too-old":
            events = [{"type": "ERROR", "object": _status(410, "Expired", "too old resource "
                                                          "version: 1 (2)")}]
        else:
            with open(os.path.join(self.state.dir, "events.json")) as f:
                events = json.load(f)
        for ev in events:
            self._chunk(json.dumps(ev).encode() + b"\n")
        self._chunk(b"")


def main() -> None:
    args = sys.argv[1:]
    tls = None
    if "--tls" in args:
        i = args.index("--tls")
        tls = args[i + 1:i + 3]
        del args[i:i + 3]
    Handler.state = State(args[0])
    port = int(args[1]) if len(args) > 1 else 0
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    if tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tls[0], tls[1])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
