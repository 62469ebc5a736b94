"""Memory of what ships: the static executable (dist/logtrain, make binary)
beside the same code in the virtual environment (.venv/bin/python -m
logtrain), idle and under load, relay-only and with everything enabled.

Resident memory (VmRSS) and anonymous memory (/proc/PID/smaps_rollup) are
summed over every process of the agent: for the executable, staticx's
launcher, PyInstaller's launcher and the agent. Idle: 5 s after /health
answers. Under load: sampled every 0.2 s while a sender floods the syslog TCP
input (and, with everything enabled, 52 container logs are written), peak
taken. Also shown: PSS idle (shared pages divided among the processes that
map them: the launchers share libc with the agent), and VmHWM summed at the
end (the kernel's peak since start, which for the executable includes
staticx's launcher reading its 29 MB archive while it unpacks, before the
agent starts).

Relay-only: SYSLOG_TCP, a routes file forwarding everything to a TCP sink.
Everything enabled: syslog TCP, UDP and HTTP inputs, the Kubernetes input
tailing 52 pods' logs (named through a local fake API, tests/kubeapi.py),
the Kubernetes datasource watching 1,500 deployments (about 4.5 KB each) on
that API, the Postgres datasource on a throwaway cluster (tests/pgserver.py),
Envoy's access-log service, metrics.

Budgets (every process counted): relay-only under 20 MiB idle and 32 MiB
under load; everything enabled under 48 MiB.

    python bench/memory.py [--rounds 3] [--load-seconds 10] [--binary dist/logtrain]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from kube_fake import FakeAPI, obj  # noqa: E402
from kube_routes import big  # noqa: E402
from peers import free_port, process_tree  # noqa: E402
from pgserver import PostgresServer  # noqa: E402

PODS = 52
WRITER = textwrap.dedent(r"""
    import sys, time
    d, pods, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    files = [open(f"{d}/pod{i:02d}-7d9f8c6b5-abc{i:02d}_bench_app-" + "0" * 64 + ".log", "ab",
                  buffering=0) for i in range(pods)]
    t0, n = time.monotonic(), 0
    while time.monotonic() - t0 < seconds:
        for i, f in enumerate(files):
            f.write(b"2026-11-25T08:00:00.000000000Z stdout F pod %d line %d " % (i, n) + b"x" * 100 + b"\n")
        n += 1
        time.sleep(max(0.0, t0 + n / rate - time.monotonic()))
""")


class Sink:
    """A TCP server that reads and counts bytes."""

    def __init__(self) -> None:
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.bytes = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            c, _ = self.srv.accept()
            threading.Thread(target=self._read, args=(c,), daemon=True).start()

    def _read(self, c: socket.socket) -> None:
        while data := c.recv(1 << 20):
            self.bytes += len(data)


def mem_kib(pids: list[int]) -> tuple[int, int, int, int]:
    """(VmRSS, Anonymous, VmHWM, Pss) in KiB, summed over ``pids``."""
    rss = anon = hwm = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm += int(line.split()[1])
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Anonymous:"):
                    anon += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except FileNotFoundError:
            pass
    return rss, anon, hwm, pss


def flood(port: int, seconds: float) -> None:
    """RFC5424 lines of 200 B over one TCP connection as fast as it takes them."""
    line = b"<14>1 2026-11-25T08:00:00Z bench.host app - - - " + b"x" * 150 + b"\n"
    chunk = line * 2000
    end = time.monotonic() + seconds
    with socket.create_connection(("127.0.0.1", port)) as s:
        while time.monotonic() < end:
            s.sendall(chunk)


def run_one(cmd: list[str], env: dict[str, str], http: int, tcp: int, load: float,
            logs: Path | None) -> dict:
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"agent exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        startup = time.monotonic() - started
        time.sleep(5)
        pids = process_tree(proc.pid)
        idle_rss, idle_anon, _, idle_pss = mem_kib(pids)
        writer = None
        if logs is not None:
            writer = subprocess.Popen([sys.executable, "-c", WRITER, str(logs), str(PODS), "50",
                                       str(load)])
        sender = threading.Thread(target=flood, args=(tcp, load))
        sender.start()
        peak_rss = peak_anon = 0
        while sender.is_alive():
            rss, anon, _, _ = mem_kib(pids)
            peak_rss, peak_anon = max(peak_rss, rss), max(peak_anon, anon)
            time.sleep(0.2)
        sender.join()
        if writer:
            writer.wait()
        time.sleep(1)
        _, _, hwm, _ = mem_kib(pids)
        return {"startup": startup, "processes": len(pids), "idle_rss": idle_rss / 1024,
                "idle_anon": idle_anon / 1024, "idle_pss": idle_pss / 1024,
                "load_rss": peak_rss / 1024, "load_anon": peak_anon / 1024, "hwm": hwm / 1024}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=str(ROOT / "dist" / "logtrain"))
    ap.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--load-seconds", type=float, default=10)
    ap.add_argument("--deployments", type=int, default=1500)
    args = ap.parse_args()
    if not os.access(args.binary, os.X_OK):
        raise SystemExit(f"{args.binary} is missing: make binary")
    work = Path(tempfile.mkdtemp(prefix="logtrain-bench-memory-"))
    sink = Sink()
    routes = work / "routes"
    routes.write_text(f"*  syslog+tcp://127.0.0.1:{sink.port}\n")
    logs = work / "containers"
    logs.mkdir()
    for i in range(PODS):  # the files exist before the agent starts, as on a node
        (logs / f"pod{i:02d}-7d9f8c6b5-abc{i:02d}_bench_app-{'0' * 64}.log").touch()
    objects = [big("Deployment", f"app{i}", f"team{i % 60}") for i in range(args.deployments)]
    objects += [obj("Pod", f"pod{i:02d}-7d9f8c6b5-abc{i:02d}", "bench") for i in range(PODS)]
    api = FakeAPI(work / "api", objects).start()
    pg = PostgresServer().start()
    try:
        db = pg.new_database("bench_memory")
        base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
                "BIND_ADDRESS": "127.0.0.1", "ROUTES_FILE": str(routes), "LOG_LEVEL": "error",
                "SYSLOG_TCP": "true", "DRAIN_ALLOW_NETWORKS": "127.0.0.1/32"}
        variants = {
            "relay-only": ({}, None),
            "everything": ({"SYSLOG_UDP": "true", "HTTP_EVENTS": "true", "HTTP_SYSLOG": "true",
                            "METRICS": "true", "KUBERNETES": "true",
                            "KUBERNETES_LOG_PATH": str(logs), "FILES_START_AT": "end",
                            "KUBERNETES_DATASOURCE": "true", "API_TOKEN": "bench",
                            "KUBE_CONFIG": str(api.kubeconfig(work / "kubeconfig.json")),
                            "POSTGRES": "true", "DATABASE_URL": pg.url(db),
                            "ENVOY": "true"}, logs),
        }
        runtimes = {"venv": [args.python, "-m", "logtrain", "run"],
                    "static": [args.binary, "run"]}
        results: dict[tuple[str, str], list[dict]] = {}
        for r in range(args.rounds):
            for vname, (extra, vlogs) in variants.items():
                for rname, cmd in runtimes.items():  # interleaved: noise hits all alike
                    http, tcp = free_port(), free_port()
                    env = {**base, **extra, "HTTP_PORT": str(http), "SYSLOG_TCP_PORT": str(tcp),
                           "SYSLOG_UDP_PORT": str(free_port()), "ENVOY_PORT": str(free_port()),
                           "STATE_DIR": str(work / f"state-{vname}-{rname}-{r}")}
                    results.setdefault((vname, rname), []).append(
                        run_one(cmd, env, http, tcp, args.load_seconds, vlogs))
        report(args, results)
    finally:
        api.stop()
        pg.stop()
        pg.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return 0


BUDGETS = {"relay-only": (20, 32), "everything": (48, 48)}


def report(args, results) -> None:  # noqa: ANN001
    size = os.path.getsize(args.binary) / 2**20
    print(f"static executable {args.binary}: {size:.1f} MiB; medians of {args.rounds} runs, "
          f"MiB summed over every process; load {args.load_seconds:g} s")
    print(f"{'variant':12s} {'runtime':8s} {'procs':>5s} {'start s':>7s} {'idle RSS':>8s} "
          f"{'idle anon':>9s} {'idle PSS':>8s} {'load RSS':>8s} {'load anon':>9s} "
          f"{'VmHWM':>6s}  budget idle/load")
    med = {}
    for (vname, rname), rows in results.items():
        m = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        med[(vname, rname)] = m
        idle_b, load_b = BUDGETS[vname]
        verdict = "" if rname != "static" else (
            f"  {idle_b}/{load_b}: idle {'ok' if m['idle_rss'] < idle_b else 'OVER'}, "
            f"load {'ok' if m['load_rss'] < load_b else 'OVER'}")
        print(f"{vname:12s} {rname:8s} {m['processes']:5.0f} {m['startup']:7.2f} "
              f"{m['idle_rss']:8.1f} {m['idle_anon']:9.1f} {m['idle_pss']:8.1f} "
              f"{m['load_rss']:8.1f} {m['load_anon']:9.1f} {m['hwm']:6.1f}{verdict}")
    for vname in BUDGETS:
        s, v = med[(vname, "static")], med[(vname, "venv")]
        print(f"{vname}: static/venv resident idle {s['idle_rss'] / v['idle_rss']:.2f}, "
              f"under load {s['load_rss'] / v['load_rss']:.2f}; anonymous idle "
              f"{s['idle_anon'] / v['idle_anon']:.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
