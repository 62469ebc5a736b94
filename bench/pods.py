"""A quiet node: 52 container logs written concurrently at 50 lines/s each,
tailed by the agent's Kubernetes file input and by rsyslog imfile (one
wildcard input) in the same run, both forwarding to a TCP sink.

For each: the CPU share of the relay process over the measured window (the
target is under 1% of a core for the agent; the original promises under 5%),
its peak resident memory, and the lines delivered.

``--latency``: one container log written at 10,000 lines/s instead; each line
carries the time it was written, and the sink reports p50 and p99 of write
to receipt (the design's budget: p99 under 250 ms).

    python bench/pods.py [--pods 52] [--rate 50] [--seconds 30] [--latency]

Public tools only: Python and Debian's rsyslog.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (the figures' helpers and the peers' paths)

WRITER = textwrap.dedent(r"""
    import sys, time
    from datetime import datetime, timezone
    d, pods, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    files = [open(f"{d}/pod{i:02d}-7d9f8c6b5-abc{i:02d}_bench_app-" + "0" * 64 + ".log", "ab",
                  buffering=0) for i in range(pods)]
    t0, n = time.monotonic(), 0
    while time.monotonic() - t0 < seconds:
        ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for i, f in enumerate(files):
            f.write(f"{ts} stdout F pod {i} line {n} t={time.time_ns()} ".encode()
                    + b"x" * 100 + b"\n")
        n += 1
        time.sleep(max(0.0, t0 + n / rate - time.monotonic()))
    print(n * pods, flush=True)
""")


class Sink:
    def __init__(self) -> None:
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.lines = 0
        self.delays: list[float] = []  # ms from write to receipt, per line
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(c,), daemon=True).start()

    def _read(self, c: socket.socket) -> None:
        rest = b""
        with c:
            while data := c.recv(65536):
                now = time.time_ns()
                *lines, rest = (rest + data).split(b"\n")
                self.lines += len(lines)
                for line in lines:
                    at = line.find(b" t=")
                    if at >= 0:
                        self.delays.append((now - int(line[at + 3:line.index(b" ", at + 3)])) / 1e6)


def start_agent(work: Path, logs: Path, sink: int) -> subprocess.Popen:
    routes = work / "routes"
    routes.write_text(f"*  syslog+tcp://127.0.0.1:{sink}\n")
    env = {"PATH": os.environ["PATH"], "KUBERNETES": "true", "KUBERNETES_LOG_PATH": str(logs),
           "FILES_START_AT": "beginning", "HTTP_PORT": str(bench.free_port()),
           "BIND_ADDRESS": "127.0.0.1", "ROUTES_FILE": str(routes),
           "STATE_DIR": str(work / "state"), "LOG_LEVEL": "error"}
    return subprocess.Popen(bench.AGENT, env=env, cwd=str(bench.ROOT))


def start_rsyslog(work: Path, logs: Path, sink: int) -> subprocess.Popen:
    conf = [f'global(workDirectory="{work}" maxMessageSize="64k")', 'module(load="imfile")',
            f'input(type="imfile" file="{logs}/*.log" tag="app" ruleset="fwd" '
            'freshStartTail="off")',
            'ruleset(name="fwd") {',
            f'  action(type="omfwd" target="127.0.0.1" port="{sink}" protocol="tcp" '
            'template="RSYSLOG_SyslogProtocol23Format")', "}"]
    (work / "rsyslog.conf").write_text("\n".join(conf) + "\n")
    return subprocess.Popen([bench.RSYSLOGD, "-n", "-f", str(work / "rsyslog.conf"),
                             "-i", str(work / "pid")])


def measure(name: str, start, args, root: Path) -> dict:
    work = Path(tempfile.mkdtemp(dir=root, prefix=name + "-"))
    logs = work / "containers"
    logs.mkdir()
    sink = Sink()
    proc = start(work, logs, sink.port)
    try:
        time.sleep(2.0)  # started and idle
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(logs), str(args.pods),
                                   str(args.rate), str(args.seconds)], stdout=subprocess.PIPE,
                                  text=True)
        time.sleep(2.0)  # files found, steady state
        cpu0, t0 = bench.cpu_seconds(proc.pid), time.monotonic()
        written = int(writer.communicate(timeout=args.seconds + 60)[0])
        cpu, wall = bench.cpu_seconds(proc.pid) - cpu0, time.monotonic() - t0
        deadline = time.monotonic() + 30
        while sink.lines < written and time.monotonic() < deadline:
            time.sleep(0.2)
        peak = bench.status_mib(proc.pid, "VmHWM")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    d = sorted(sink.delays)
    return {"name": name, "cpu_pct": 100 * cpu / wall, "peak": peak, "written": written,
            "received": sink.lines, "p50": d[len(d) // 2] if d else float("nan"),
            "p99": d[int(len(d) * 0.99)] if d else float("nan")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, default=52)
    ap.add_argument("--rate", type=float, default=50.0, help="lines/s per pod")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--latency", action="store_true", help="one file at 10,000 lines/s")
    args = ap.parse_args()
    if args.latency:
        args.pods, args.rate, args.seconds = 1, 10_000.0, min(args.seconds, 10.0)
    root = Path(tempfile.mkdtemp(prefix="logtrain-pods-"))
    rows = [measure("logtrain", start_agent, args, root)]
    if os.path.exists(bench.RSYSLOGD):
        rows.append(measure("rsyslog", start_rsyslog, args, root))
    print(f"\n{args.pods} container logs at {args.rate:g} lines/s each for {args.seconds:g} s")
    print(f"{'relay':<10} {'CPU % of a core':>16} {'peak RSS MiB':>13} {'lines':>17} "
          f"{'p50 ms':>8} {'p99 ms':>8}")
    for r in rows:
        print(f"{r['name']:<10} {r['cpu_pct']:>16.2f} {r['peak']:>13.1f} "
              f"{r['received']:>8,}/{r['written']:<8,} {r['p50']:>8.1f} {r['p99']:>8.1f}")
    if len(rows) == 2:
        a, p = rows
        print(f"logtrain/rsyslog  CPU x{a['cpu_pct'] / p['cpu_pct']:.2f}   "
              f"peak RSS x{a['peak'] / p['peak']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
