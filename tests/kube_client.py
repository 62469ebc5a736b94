"""The production Kubernetes client and naming (logtrain.kubeapi,
logtrain.kubenames) in a child process monkey-patched for gevent, driven by
test_kube_names.py: one JSON command per line on stdin, one JSON answer per
line on stdout; the agent's log goes to stderr.

Its settings come from its environment, as the agent's do; KUBE_TEST_SA_DIR
stands in for /var/run/secrets/kubernetes.io/serviceaccount."""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
from gevent.fileobject import FileObject  # noqa: E402

from logtrain import kubeapi  # noqa: E402
from logtrain.config import load  # noqa: E402
from logtrain.kubenames import from_runtime  # noqa: E402
from logtrain.log import Log, RateLimit  # noqa: E402
from logtrain.metrics import Metrics  # noqa: E402
from logtrain.runtime import Runtime  # noqa: E402


def main() -> None:
    if os.environ.get("KUBE_TEST_SA_DIR"):
        kubeapi.SA_DIR = os.environ["KUBE_TEST_SA_DIR"]
    rt = Runtime(load(), Log("debug", sys.stderr), Metrics(), RateLimit(60.0))
    namer = from_runtime(rt)
    namer.start(rt.tasks.spawn)
    stdin = FileObject(sys.stdin, "r")
    for line in stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "names":
            out = {"names": namer.names(cmd["pod"], cmd["ns"], "c")}
        elif op == "resolve":  # ask for every pod, then wait until all are looked up
            pods = [tuple(p) for p in cmd["pods"]]
            first = {f"{ns}/{pod}": namer.names(pod, ns, "c") for pod, ns in pods}
            end = time.monotonic() + cmd.get("timeout", 20)
            while time.monotonic() < end and any((ns, pod) not in namer._pods for pod, ns in pods):
                gevent.sleep(0.02)
            out = {"first": first,
                   "names": {f"{ns}/{pod}": namer.names(pod, ns, "c") for pod, ns in pods},
                   "requests": namer.client.requests if namer.client else 0}
        elif op == "until":  # ask again and again until the names are these
            want = tuple(cmd["want"]) if cmd["want"] is not None else None
            end = time.monotonic() + cmd.get("timeout", 20)
            while namer.names(cmd["pod"], cmd["ns"], "c") != want and time.monotonic() < end:
                gevent.sleep(0.05)
            out = {"names": namer.names(cmd["pod"], cmd["ns"], "c")}
        elif op == "get":
            try:
                out = {"obj": namer.client.get(cmd["path"])}
            except kubeapi.KubeError as e:
                out = {"error": str(e), "status": e.status}
        elif op == "watch":  # the events, then whether a GET still works on the pool
            events, error = [], None
            try:
                for kind, obj in namer.client.watch(cmd["path"], cmd.get("rv", ""), 5):
                    events.append([kind, obj["metadata"]["name"]])
                    if len(events) == cmd.get("stop_after", -1):
                        break
            except kubeapi.KubeError as e:
                error = {"error": str(e), "status": e.status}
            try:
                after = namer.client.get(cmd["then"])["metadata"]["name"]
            except kubeapi.KubeError as e:
                after = str(e)
            out = {"events": events, "error": error, "after": after}
        elif op == "metrics":
            out = {"metrics": rt.metrics.render()}
        else:
            out = {"error": f"unknown op {op}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
