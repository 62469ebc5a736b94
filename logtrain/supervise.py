"""Supervision of the agent's long-running tasks (the UDP reader, the routes
file watcher, the Postgres listener, the stats loop), as gunicorn's arbiter
supervises its workers.

A task is a function meant to run until it is killed. When it raises (or
returns), the crash is logged with its traceback the first time, counted in
``logtrain_task_crashes_total{task}``, and the task restarted after a backoff
that doubles with every crash in a row (from 0.1 s to 30 s; a task that ran
for a minute starts again from 0.1 s). /health fails while a task keeps dying:
CRASH_LIMIT crashes within CRASH_WINDOW seconds.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable

import gevent

from logtrain.log import Log, RateLimit
from logtrain.metrics import Metrics

BACKOFF_MIN = 0.1
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0  # seconds of running after which the backoff starts over
CRASH_LIMIT = 3
CRASH_WINDOW = 60.0


class Task:
    __slots__ = ("name", "fn", "greenlet", "crashes", "recent", "state", "last_error")

    def __init__(self, name: str, fn: Callable[[], object]) -> None:
        self.name = name
        self.fn = fn
        self.greenlet: gevent.Greenlet | None = None
        self.crashes = 0
        self.recent: deque[float] = deque(maxlen=CRASH_LIMIT)
        self.state = "starting"
        self.last_error = ""

    def dying(self, now: float) -> bool:
        """Crashed CRASH_LIMIT times within the last CRASH_WINDOW seconds."""
        return len(self.recent) == CRASH_LIMIT and now - self.recent[0] < CRASH_WINDOW


class Supervisor:
    def __init__(self, log: Log, metrics: Metrics, ratelimit: RateLimit) -> None:
        self.log = log
        self.metrics = metrics
        self.ratelimit = ratelimit
        self.tasks: dict[str, Task] = {}

    def spawn(self, name: str, fn: Callable[[], object]) -> Task:
        """Runs ``fn`` under supervision; ``name`` is unique among tasks."""
        if name in self.tasks and self.tasks[name].state != "stopped":
            raise ValueError(f"task {name} is already running")
        task = self.tasks[name] = Task(name, fn)
        task.greenlet = gevent.spawn(self._run, task)
        return task

    def stop(self, name: str) -> None:
        task = self.tasks.get(name)
        if task is not None and task.greenlet is not None:
            task.state = "stopped"
            task.greenlet.kill()

    def stop_all(self) -> None:
        for name in list(self.tasks):
            self.stop(name)

    def health(self) -> tuple[bool, dict[str, dict]]:
        """(healthy, per task: state, crashes and the last error)."""
        now = time.monotonic()
        report = {}
        ok = True
        for t in self.tasks.values():
            dying = t.dying(now)
            ok = ok and not dying
            entry: dict = {"state": "failing" if dying else t.state, "crashes": t.crashes}
            if t.last_error:
                entry["last_error"] = t.last_error
            report[t.name] = entry
        return ok, report

    def _run(self, task: Task) -> None:
        delay = BACKOFF_MIN
        while True:
            started = time.monotonic()
            task.state = "running"
            try:
                task.fn()
                error, trace = "the task returned", ""
            except gevent.GreenletExit:
                task.state = "stopped"
                raise
            except Exception as e:  # noqa: BLE001 - a supervisor's job is to catch everything
                error = f"{type(e).__name__}: {e}"
                trace = _traceback()
            now = time.monotonic()
            if now - started > STABLE_AFTER:
                delay = BACKOFF_MIN
            task.crashes += 1
            task.recent.append(now)
            task.last_error = error
            task.state = "restarting"
            self.metrics.inc("logtrain_task_crashes_total", task=task.name)
            if task.crashes == 1:
                self.log.error("task crashed; restarting it", task=task.name, error=error,
                             retry_in=round(delay, 2), traceback=trace)
            else:
                held = self.ratelimit.allow(("task-crash", task.name))
                if held is not None:
                    self.log.error("task crashed again; restarting it", task=task.name, error=error,
                                 crashes=task.crashes, retry_in=round(delay, 2),
                                 crashes_since_last_report=held)
            gevent.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(BACKOFF_MAX, delay * 2)


def _traceback() -> str:
    # traceback pulls in linecache and tokenize: only when something crashed
    import traceback

    return traceback.format_exc()
