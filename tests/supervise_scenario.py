"""Supervision scenario, run in a child process patched for gevent
(``python tests/supervise_scenario.py PORT``): a task that always raises and
one that raises twice and then runs, under the agent's real Supervisor, with
/health served by the agent's real HTTP server on PORT. Prints one JSON result
that test_supervise.py asserts on."""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import io  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402

import gevent  # noqa: E402

from logtrain.config import load  # noqa: E402
from logtrain.httpserver import HTTPServer  # noqa: E402
from logtrain.log import Log, RateLimit  # noqa: E402
from logtrain.metrics import Metrics  # noqa: E402
from logtrain.runtime import Runtime  # noqa: E402


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def main() -> None:
    port = int(sys.argv[1])
    cfg = load(env={"SYSLOG_TCP": "true", "ROUTES_FILE": "/dev/null", "HTTP_PORT": str(port),
                    "BIND_ADDRESS": "127.0.0.1"})
    out = io.StringIO()
    rt = Runtime(cfg, Log("info", out), Metrics(), RateLimit(60.0))
    http = HTTPServer(rt)
    http.start()
    runs = {"recovering": 0}

    def recovering() -> None:
        runs["recovering"] += 1
        if runs["recovering"] <= 2:
            raise RuntimeError(f"failure number {runs['recovering']}")
        gevent.sleep(3600)

    rt.tasks.spawn("recovering", recovering)
    gevent.sleep(1.0)  # 0.1 s, then 0.2 s of backoff: running again by now
    result = {"after_recovery": get(port, "/health"),
              "verbose_recovered": json.loads(get(port, "/health?verbose")[1])}

    def always() -> None:
        raise ValueError("broken for good")

    rt.tasks.spawn("always", always)
    gevent.sleep(1.5)  # 0.1 + 0.2 + 0.4 s: three crashes within the window
    result["while_dying"] = get(port, "/health")
    result["verbose_dying"] = json.loads(get(port, "/health?verbose")[1])
    result["crash_metric"] = rt.metrics.total("logtrain_task_crashes_total")
    result["log"] = out.getvalue()
    rt.tasks.stop_all()
    http.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
