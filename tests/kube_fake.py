"""The fake Kubernetes API server (tests/kubeapi.py) driven from tests and
benchmarks: start, stop (keeping port and objects), change objects through
its control requests, read its request counts, write a kubeconfig for it; and
API objects the size of real ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOKEN = "kube-Token-5e1d"
LIVE: list[FakeAPI] = []  # started servers, for a fixture to stop

DRAINS = "logtrain.akkeris.io/drains"
HOST = "logtrain.akkeris.io/hostname"


def obj(kind: str, name: str, ns: str = "prod", **notes: str) -> dict:
    """An object the size of a real one: spec, status and managedFields the
    datasource must skip, and a kubectl last-applied annotation."""
    annotations = {"kubectl.kubernetes.io/last-applied-configuration": "{" + "x" * 600 + "}",
                   **{k.replace("_", "."): v for k, v in notes.items()}}
    return {"kind": kind, "apiVersion": "apps/v1",
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}",
                         "labels": {"app": name}, "annotations": annotations,
                         "managedFields": [{"manager": "kubectl", "operation": "Update",
                                            "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "c", "image": "nginx", "args": ["a", "b"]}]}}},
            "status": {"replicas": 2, "conditions": [{"type": "Available"}]}}


def drained(kind: str, name: str, drains: str, ns: str = "prod", host: str | None = None) -> dict:
    o = obj(kind, name, ns)
    o["metadata"]["annotations"][DRAINS] = drains
    if host is not None:
        o["metadata"]["annotations"][HOST] = host
    return o


class FakeAPI:
    """tests/kubeapi.py in its own process; stop and start keep its port and objects."""

    def __init__(self, d: Path, objects: list[dict]) -> None:
        self.dir = d
        d.mkdir(parents=True, exist_ok=True)
        (d / "token").write_text(TOKEN)
        self.set_objects(objects)
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def set_objects(self, objects: list[dict]) -> None:
        (self.dir / "objects.tmp").write_text(json.dumps(objects))
        os.replace(self.dir / "objects.tmp", self.dir / "objects.json")

    def start(self) -> FakeAPI:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "kubeapi.py"), str(self.dir),
                                      str(self.port)], stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline().split()[1])
        LIVE.append(self)
        return self

    def stop(self) -> None:
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def call(self, path: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                     data=None if body is None else json.dumps(body).encode(),
                                     method="GET" if body is None else "POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def apply(self, o: dict) -> None:
        self.call("/_apply", o)

    def delete(self, kind: str, name: str, ns: str = "prod") -> None:
        self.call("/_delete", {"kind": kind, "namespace": ns, "name": name})

    def lists(self, res: str) -> int:
        prefix = "/api/v1" if res == "pods" else "/apis/apps/v1"
        return self.call("/_counts").get(f"{prefix}/{res}", 0)

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "t",
            "contexts": [{"name": "t", "context": {"cluster": "c", "user": "u"}}],
            "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
            "users": [{"name": "u", "user": {"token": TOKEN}}]}))
        return path
