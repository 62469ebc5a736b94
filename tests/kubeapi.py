"""A small Kubernetes API server for tests: GET of pods, replicasets,
deployments, daemonsets, statefulsets, jobs and cronjobs by namespace and
name, answered with the API's JSON (objects and Status errors).

Run as ``python tests/kubeapi.py STATE_DIR [PORT] [--tls CERT KEY]``; it
prints ``port N`` once listening. STATE_DIR holds ``objects.json`` (a list of
API objects, re-read when it changes) and ``token`` (the bearer token it
accepts, re-read on every request, so a test can rotate it). A GET with
watch=true streams the events listed in ``events.json``. GET /_counts
(no token needed) answers how many requests each path received.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


class State:
    def __init__(self, d: str) -> None:
        self.dir = d
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.objects: dict[str, dict] = {}
        self.key: tuple | None = None

    def lookup(self, path: str) -> dict | None:
        p = os.path.join(self.dir, "objects.json")
        with self.lock:
            st = os.stat(p)
            if (st.st_mtime_ns, st.st_size) != self.key:
                self.objects = {}
                with open(p) as f:
                    for obj in json.load(f):
                        m = obj["metadata"]
                        res = PLURAL[obj["kind"]]
                        self.objects[f"{RESOURCES[res][0]}/namespaces/{m['namespace']}/{res}/"
                                     f"{m['name']}"] = obj
                self.key = (st.st_mtime_ns, st.st_size)
            return self.objects.get(path)

    def token(self) -> str:
        with open(os.path.join(self.dir, "token")) as f:
            return f.read().strip()


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class Handler(BaseHTTPRequestHandler):
    state: State

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, code: int, obj: dict) -> None:
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _watch(self, query: str) -> None:
        # events.json: the events every watch streams, one JSON line each;
        # resourceVersion=too-old gets the 410 ERROR event a server sends
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()  # HTTP/1.0 without a length: the body ends at close
        if "resourceVersion=too-old" in query:
            events = [{"type": "ERROR", "object": _status(410, "Expired", "too old resource "
                                                          "version: 1 (2)")}]
        else:
            with open(os.path.join(self.state.dir, "events.json")) as f:
                events = json.load(f)
        for ev in events:
            self.wfile.write(json.dumps(ev).encode() + b"\n")
            self.wfile.flush()

    def do_GET(self) -> None:  # noqa: N802 - the http.server convention
        path, _, query = self.path.partition("?")
        if path == "/_counts":
            with self.state.lock:
                self._send(200, dict(self.state.counts))
            return
        with self.state.lock:
            self.state.counts[path] = self.state.counts.get(path, 0) + 1
        if self.headers.get("Authorization") != "Bearer " + self.state.token():
            self._send(401, _status(401, "Unauthorized", "Unauthorized"))
            return
        if "watch=true" in query:
            self._watch(query)
            return
        parts = path.strip("/").split("/")
        # [api, v1 | apis, group, v1], namespaces, NS, RESOURCE, NAME
        if len(parts) < 5 or parts[-4] != "namespaces" or parts[-2] not in RESOURCES or \
                "/" + "/".join(parts[:-4]) != RESOURCES[parts[-2]][0]:
            self._send(404, _status(404, "NotFound", "the server could not find the requested "
                                    "resource"))
            return
        obj = self.state.lookup(path)
        if obj is None:
            self._send(404, _status(404, "NotFound", f'{parts[-2]} "{parts[-1]}" not found'))
            return
        self._send(200, obj)


def main() -> None:
    args = sys.argv[1:]
    tls = None
    if "--tls" in args:
        i = args.index("--tls")
        tls = args[i + 1:i + 3]
        del args[i:i + 3]
    Handler.state = State(args[0])
    port = int(args[1]) if len(args) > 1 else 0
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
