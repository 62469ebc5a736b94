"""Long-running tasks are supervised: a crash is logged once with its
traceback, counted and the task restarted; /health fails while one keeps dying."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from peers import free_port

HERE = Path(__file__).resolve().parent


def test_crashing_tasks_are_restarted_and_reported():
    out = subprocess.run([sys.executable, str(HERE / "supervise_scenario.py"), str(free_port())],
                         capture_output=True, text=True, timeout=60, cwd=HERE.parent)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    # the task that failed twice runs again, and health is fine
    assert r["after_recovery"] == [200, "ok\n"]
    rec = r["verbose_recovered"]["tasks"]["recovering"]
    assert rec == {"state": "running", "crashes": 2, "last_error": "RuntimeError: failure number 2"}
    # the task that keeps dying fails /health, named
    assert r["while_dying"][0] == 503 and "always" in r["while_dying"][1]
    dying = r["verbose_dying"]
    assert dying["status"] == "failing"
    assert dying["tasks"]["always"]["state"] == "failing"
    assert dying["tasks"]["always"]["crashes"] >= 3
    assert dying["tasks"]["recovering"]["state"] == "running"
    assert r["crash_metric"] == 2 + dying["tasks"]["always"]["crashes"]
    # each task's traceback is logged once; later crashes are rate-limited lines without it
    log = r["log"]
    assert log.count("Traceback") == 2
    assert log.count('msg="task crashed; restarting it" task=always') == 1
    assert log.count('msg="task crashed; restarting it" task=recovering') == 1
    assert 'failure number 1' in log and "broken for good" in log
