"""The Envoy access-log input: entries per second from grpcio clients through
the agent to a syslog TCP drain, and the resident memory grpcio adds.

Throughput: ``--streams`` concurrent v3 streams from another process
(tests/envoy_client.py, resending one pre-encoded batch of ``--batch`` HTTP
entries, as sidecars send batches), ``--entries`` in all; timed from the
client's start to the last line received by a TCP sink. Median of
``--runs``, with the agent's CPU seconds per 100,000 entries and its peak RSS.

Memory: the agent idle with the syslog TCP input only, then with ENVOY=true
as well (grpcio and protobuf loaded, the server listening), each measured
``--runs`` times after start: RSS and anonymous memory (smaps_rollup), medians
and the difference.

There is no peer in this run: the original Go agent's ALS server is not
installable here.

    python bench/envoy.py [--entries 200000] [--streams 4] [--batch 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from peers import free_port, wait_for  # noqa: E402


class Sink:
    """Counts newline-framed lines on every connection."""

    def __init__(self) -> None:
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.lines = 0
        self.last = 0.0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            c, _ = self.srv.accept()
            threading.Thread(target=self._read, args=(c,), daemon=True).start()

    def _read(self, c: socket.socket) -> None:
        while True:
            data = c.recv(1 << 20)
            if not data:
                return
            n = data.count(b"\n")
            with self.lock:
                self.lines += n
                self.last = time.monotonic()


def status_mib(pid: int, key: str) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def anon_mib(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Anonymous:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_agent(work: Path, env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    http = free_port()
    base = {"PATH": os.environ.get("PATH", ""), "HTTP_PORT": str(http),
            "BIND_ADDRESS": "127.0.0.1", "STATE_DIR": str(work / "state"), "LOG_LEVEL": "warning",
            "SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(free_port())}
    base.update(env)
    proc = subprocess.Popen([sys.executable, "-m", "logtrain", "run"], cwd=ROOT, env=base,
                            stderr=open(work / "agent.log", "ab"))

    def healthy() -> bool:
        if proc.poll() is not None:
            raise SystemExit(f"agent exited:\n{(work / 'agent.log').read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", http), timeout=0.5) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return s.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    wait_for(healthy, 20, what="the agent")
    return proc, http


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def throughput(work: Path, entries: int, streams: int, batch: int) -> dict:
    sink = Sink()
    routes = work / "routes"
    routes.write_text(f"web.shop syslog+tcp://127.0.0.1:{sink.port}\n")
    port = free_port()
    proc, _ = start_agent(work, {"ENVOY": "true", "ENVOY_PORT": str(port),
                                 "ROUTES_FILE": str(routes)})
    try:
        cpu0 = cpu_seconds(proc.pid)
        t0 = time.monotonic()
        out = subprocess.run([sys.executable, str(ROOT / "tests" / "envoy_client.py"), str(port),
                              str(entries), str(streams), str(batch)],
                             capture_output=True, text=True, check=True)
        sent = int(out.stdout.split()[-1])
        wait_for(lambda: sink.lines >= sent, 300, interval=0.01, what=f"{sent} lines at the sink")
        seconds = sink.last - t0
        cpu = cpu_seconds(proc.pid) - cpu0
        return {"entries": sent, "seconds": seconds, "per_s": sent / seconds,
                "cpu_per_100k": cpu / sent * 100_000, "peak_rss": status_mib(proc.pid, "VmHWM")}
    finally:
        stop(proc)


def idle(work: Path, envoy: bool) -> dict:
    (work / "routes").write_text("")
    env = {"ROUTES_FILE": str(work / "routes")}
    if envoy:
        env.update(ENVOY="true", ENVOY_PORT=str(free_port()))
    proc, _ = start_agent(work, env)
    try:
        time.sleep(2)
        return {"rss": status_mib(proc.pid, "VmRSS"), "anon": anon_mib(proc.pid)}
    finally:
        stop(proc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=200_000)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="logtrain-bench-envoy-") as tmp:
        work = Path(tmp)
        rows = []
        for i in range(args.runs):
            d = work / f"t{i}"
            d.mkdir()
            r = throughput(d, args.entries, args.streams, args.batch)
            rows.append(r)
            print(f"run {i + 1}: {r['entries']} entries in {r['seconds']:.2f} s = "
                  f"{r['per_s']:,.0f} entries/s, agent CPU {r['cpu_per_100k']:.2f} s per 100k, "
                  f"peak RSS {r['peak_rss']:.1f} MiB", flush=True)
        mem = {False: [], True: []}
        for i in range(args.runs):
            for envoy in (False, True):
                d = work / f"m{i}{int(envoy)}"
                d.mkdir()
                mem[envoy].append(idle(d, envoy))
    med = statistics.median
    print()
    print(f"envoy access-log input, {args.streams} streams, batches of {args.batch} HTTP entries, "
          f"to a syslog+tcp drain (median of {args.runs}):")
    print(f"  throughput      {med(r['per_s'] for r in rows):>10,.0f} entries/s")
    print(f"  agent CPU       {med(r['cpu_per_100k'] for r in rows):>10.2f} s per 100k entries")
    print(f"  peak RSS        {med(r['peak_rss'] for r in rows):>10.1f} MiB")
    off_rss, on_rss = med(m["rss"] for m in mem[False]), med(m["rss"] for m in mem[True])
    off_anon, on_anon = med(m["anon"] for m in mem[False]), med(m["anon"] for m in mem[True])
    print(f"idle memory (median of {args.runs}):   RSS MiB   anonymous MiB")
    print(f"  syslog TCP only           {off_rss:7.1f}   {off_anon:7.1f}")
    print(f"  + ENVOY=true              {on_rss:7.1f}   {on_anon:7.1f}")
    print(f"  grpcio + protobuf add     {on_rss - off_rss:+7.1f}   {on_anon - off_anon:+7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
