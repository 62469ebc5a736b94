"""Postgres datasource figures: INSERT-to-first-line latency and the resident
memory the datasource adds.

A throwaway PostgreSQL cluster is started (tests/pgserver.py: initdb and pg_ctl
from Debian's packages). For the latency, a sender writes a line for the
hostname ``latN`` into the agent's syslog TCP input every millisecond; an
``insert into drains`` then routes that hostname to a TCP sink, and the time
from the INSERT's commit to the first line at the sink is taken, N times.
For memory, the agent's VmRSS after it settles is read with the static routes
file only, with POSTGRES=true, and with PERSISTENT=true as well, summed over
every process of the agent (LOGTRAIN_TEST_BINARY=dist/logtrain measures the
one-file executable: its launcher and the agent).

    python bench/postgres.py [--rounds 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from peers import Agent, free_port  # noqa: E402
from pgserver import PostgresServer  # noqa: E402


class Sink:
    """A TCP server that records when it first sees each hostname."""

    def __init__(self) -> None:
        self.port = free_port()
        self.first: dict[str, float] = {}
        self.srv = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            c, _ = self.srv.accept()
            threading.Thread(target=self._read, args=(c,), daemon=True).start()

    def _read(self, c: socket.socket) -> None:
        buf = b""
        while data := c.recv(65536):
            now = time.monotonic()
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                host = line.split(b" ", 3)[2].decode()
                self.first.setdefault(host, now)


def rss_kib(agent: Agent) -> tuple[int, int]:
    """(resident, anonymous) KiB summed over the agent's processes (with
    LOGTRAIN_TEST_BINARY, the one-file executable's launcher and the agent it
    runs); the rest of resident is shared-library pages, which other processes
    using the same files share."""
    rss = anon = 0
    for pid in agent.pids():
        fields = {}
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            k, v = line.split(":", 1)
            fields[k] = int(v.split()[0])
        rss, anon = rss + fields["Rss"], anon + fields["Anonymous"]
    return rss, anon


def latency(pg: PostgresServer, work: Path, rounds: int) -> list[float]:
    db = pg.new_database("bench_latency")
    tcp = free_port()
    sink = Sink()
    agent = Agent(work / "lat", {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(tcp),
                                 "POSTGRES": "true", "DATABASE_URL": pg.url(db),
                                 "METRICS": "false"}).start()
    conn = pg.connect(db)
    out = []
    try:
        with socket.create_connection(("127.0.0.1", tcp)) as s, conn.cursor() as cur:
            for i in range(rounds):
                host = f"lat{i}"
                stop = threading.Event()

                def send(host: str = host, stop: threading.Event = stop) -> None:
                    line = f"<14>1 2026-11-24T00:00:00Z {host} app - - - x\n".encode()
                    while not stop.is_set():
                        s.sendall(line)
                        time.sleep(0.001)

                t = threading.Thread(target=send)
                t.start()
                time.sleep(0.05)  # lines are flowing (and dead) before the route exists
                cur.execute("insert into drains (hostname, endpoint) values (%s, %s)",
                            (host, f"syslog+tcp://127.0.0.1:{sink.port}"))
                committed = time.monotonic()
                deadline = committed + 5
                while host not in sink.first and time.monotonic() < deadline:
                    time.sleep(0.0005)
                stop.set()
                t.join()
                if host in sink.first:
                    out.append(sink.first[host] - committed)
    finally:
        conn.close()
        agent.stop()
    return out


def memory(pg: PostgresServer, work: Path, runs: int) -> dict[str, list[tuple[int, int]]]:
    db = pg.new_database("bench_memory")
    routes = work / "routes"
    routes.write_text("* stdout://\n")
    variants = {
        "routes file only": {},
        "+ POSTGRES": {"POSTGRES": "true", "DATABASE_URL": pg.url(db)},
        "+ POSTGRES + PERSISTENT": {"POSTGRES": "true", "DATABASE_URL": pg.url(db),
                                    "PERSISTENT": "true", "PERSISTENT_DATABASE_URL": pg.url(db)},
    }
    out: dict[str, list[tuple[int, int]]] = {k: [] for k in variants}
    for r in range(runs):
        for name, env in variants.items():  # interleaved, so noise hits all alike
            tcp = free_port()
            agent = Agent(work / f"mem{r}-{len(out[name])}-{abs(hash(name))}",
                          {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(tcp),
                           "ROUTES_FILE": str(routes), **env}).start()
            try:
                if "PERSISTENT" in env:
                    agent.request("GET", "/logs/warm-up")  # the reader's connection opens
                time.sleep(2)
                out[name].append(rss_kib(agent))
            finally:
                agent.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="logtrain-bench-pg-"))
    pg = PostgresServer().start()
    try:
        pg.wait_ready()
        lat = sorted(latency(pg, work, args.rounds))
        mem = memory(pg, work, args.runs)
    finally:
        pg.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nINSERT into drains -> first line at the new drain ({len(lat)} of {args.rounds} "
          f"rounds, a line sent every 1 ms)")
    if lat:
        p90 = lat[min(len(lat) - 1, int(len(lat) * 0.9))]
        print(f"  median {statistics.median(lat) * 1000:.1f} ms   p90 {p90 * 1000:.1f} ms   "
              f"max {lat[-1] * 1000:.1f} ms")
    print(f"\nagent resident memory after start (median of {args.runs}; anonymous is the "
          "part no other process shares)")
    base = [statistics.median(v[i] for v in mem["routes file only"]) for i in (0, 1)]
    for name, values in mem.items():
        rss, anon = (statistics.median(v[i] for v in values) for i in (0, 1))
        print(f"  {name:26s} RSS {rss / 1024:5.1f} MiB ({(rss - base[0]) / 1024:+5.1f})   "
              f"anonymous {anon / 1024:5.1f} MiB ({(anon - base[1]) / 1024:+5.1f})")
    sys.stdout.flush()
    os._exit(0)  # the sink's threads


if __name__ == "__main__":
    main()
