"""Elasticsearch drain throughput: documents per second from the agent's
syslog TCP input to a local _bulk endpoint, and the agent's peak resident
memory meanwhile.

The endpoint (this file run with ``--sink``) is a separate process speaking
HTTP/1.1 with keep-alive, as Elasticsearch does. It parses every body it
gets: the whole NDJSON body through the standard library's JSON parser, each
action checked to be a ``create`` with an ``_index`` and an ``_id``, each
document's ``seq=`` number marked in a bitmap (so a document arriving twice
or not at all is seen), then it answers ``{"errors":false,"items":[...]}``
with one item per document, as the bulk API does. The agent is pinned to one
core (CPU 0; the endpoint and the sender are left to the scheduler): the
target is at least 200,000 documents/s on one core. On a shared machine the
wall-clock figure moves with the neighbours' load; the agent's documents per
CPU-second is the steadier measure of what one core does.

    python bench/es.py [--lines 1000000] [--runs 3] [--size 200] [--gzip]

Per run: documents/s (first byte sent to the last document parsed), the
agent's CPU seconds and documents per CPU second, and its peak RSS (VmHWM);
medians at the end. Public tools only: Python and the agent itself.
"""

from __future__ import annotations

import argparse
import gzip
import json
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
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
from peers import free_port, wait_for  # noqa: E402
from run import cpu_seconds, rfc5424_lines, status_mib  # noqa: E402

# ----------------------------------------------------------------------------- the endpoint


class Sink:
    def __init__(self, port: int, want: int) -> None:
        self.want = want
        self.seen = bytearray(want)
        self.docs = 0
        self.dups = 0
        self.bad = 0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.last = 0.0
        self.requests = 0
        self.sizes: list[int] = []
        self.srv = socket.create_server(("127.0.0.1", port), backlog=16)

    def serve(self) -> None:
        while True:
            conn, _ = self.srv.accept()
            threading.Thread(target=self.connection, args=(conn,), daemon=True).start()

    def connection(self, conn: socket.socket) -> None:
        f = conn.makefile("rb", buffering=1 << 16)
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                method, path, _ = line.split(b" ", 2)
                headers = {}
                while (h := f.readline()) not in (b"\r\n", b"\n", b""):
                    k, _, v = h.partition(b":")
                    headers[k.strip().lower()] = v.strip()
                body = f.read(int(headers.get(b"content-length", b"0")))
                if headers.get(b"content-encoding") == b"gzip":
                    body = gzip.decompress(body)
                n = self.parse(body)
                answer = (b'{"errors":false,"items":['
                          + b",".join([b'{"create":{"status":201}}'] * n) + b"]}")
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(answer) + answer)
        except (OSError, ValueError):
            return
        finally:
            conn.close()

    def parse(self, body: bytes) -> int:
        """Parses every line of the body; returns the number of documents."""
        values = json.loads(b"[" + body.rstrip(b"\n").replace(b"\n", b",") + b"]")
        actions, docs = values[0::2], values[1::2]
        bad = sum(1 for a in actions if "_id" not in a.get("create", ()) or "_index" not in a["create"])
        seqs = [int(d["message"][4:12]) for d in docs]
        with self.lock:
            self.bad += bad
            seen = self.seen
            for s in seqs:
                if seen[s]:
                    self.dups += 1
                seen[s] = 1
            self.docs += len(docs)
            self.requests += 1
            if self.docs >= self.want:
                self.last = time.time()
                self.done.set()
        return len(docs)


def sink_main(port: int, want: int) -> None:
    sink = Sink(port, want)
    threading.Thread(target=sink.serve, daemon=True).start()
    print("ready", flush=True)
    sink.done.wait()
    time.sleep(0.2)  # late duplicates would show here
    print(json.dumps({"last": sink.last, "docs": sink.docs, "dups": sink.dups, "bad": sink.bad,
                      "missing": sink.seen.count(0), "requests": sink.requests,
                      "cpu": time.process_time()}), flush=True)


# ----------------------------------------------------------------------------- a run


def one_run(data: Path, lines: int, gzip_bodies: bool, work: Path) -> dict:
    sink_port, tcp_port, http_port = free_port(), free_port(), free_port()
    sink = subprocess.Popen([sys.executable, __file__, "--sink", str(sink_port), str(lines)],
                            stdout=subprocess.PIPE, text=True)
    assert sink.stdout.readline().strip() == "ready"
    routes = work / "routes"
    opts = "index=bench" + ("&gzip=true" if gzip_bodies else "")
    routes.write_text(f"*  es+http://127.0.0.1:{sink_port}/?{opts}\n")
    env = dict(os.environ, SYSLOG_TCP="true", SYSLOG_TCP_PORT=str(tcp_port),
               HTTP_PORT=str(http_port), BIND_ADDRESS="127.0.0.1", ROUTES_FILE=str(routes),
               STATE_DIR=str(work / "state"), LOG_LEVEL="warning")
    agent = subprocess.Popen([sys.executable, "-m", "logtrain", "run"], env=env, cwd=ROOT,
                             stderr=open(work / "agent.log", "ab"))
    os.sched_setaffinity(agent.pid, {0})
    try:
        wait_for(lambda: _listening(tcp_port), 15, what="the agent's TCP input")
        time.sleep(0.3)
        cpu0 = cpu_seconds(agent.pid)
        t0 = time.time()
        with socket.create_connection(("127.0.0.1", tcp_port)) as s, open(data, "rb") as f:
            while chunk := f.read(1 << 20):
                s.sendall(chunk)
        try:
            out, _ = sink.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            sink.kill()
            out = "{}"
        cpu = cpu_seconds(agent.pid) - cpu0
        peak = status_mib(agent.pid, "VmHWM")
    finally:
        agent.terminate()
        agent.wait(20)
        sink.kill()
    r = json.loads(out.strip().splitlines()[-1] if out.strip() else "{}")
    if r.get("docs", 0) < lines:
        return {"ok": False, "got": r.get("docs", 0), "peak": peak}
    secs = r["last"] - t0
    return {"ok": True, "dps": lines / secs, "cpu": cpu, "per_cpu": lines / cpu, "peak": peak,
            "dups": r["dups"], "missing": r["missing"], "bad": r["bad"],
            "requests": r["requests"], "sink_cpu": r["cpu"]}


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=200, help="bytes per syslog line")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--gzip", action="store_true", help="gzip=true on the drain")
    ap.add_argument("--sink", nargs=2, type=int, metavar=("PORT", "DOCS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sink:
        sink_main(*args.sink)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "lines"
        data.write_bytes(rfc5424_lines(args.lines, args.size))
        print(f"{args.lines:,} RFC5424 lines of {args.size} B -> syslog TCP input -> "
              f"es+http _bulk{' (gzip)' if args.gzip else ''}; agent pinned to CPU 0")
        rows = []
        for i in range(args.runs):
            (work / f"run{i}").mkdir()
            r = one_run(data, args.lines, args.gzip, work / f"run{i}")
            rows.append(r)
            if r["ok"]:
                print(f"run {i + 1}: {r['dps']:>10,.0f} docs/s  agent CPU {r['cpu']:.2f} s "
                      f"({r['per_cpu']:,.0f} docs per CPU-second)  peak RSS {r['peak']:.1f} MiB  "
                      f"duplicates {r['dups']}  missing {r['missing']}  bad actions {r['bad']}  "
                      f"({r['requests']} requests, endpoint CPU {r['sink_cpu']:.2f} s)")
            else:
                print(f"run {i + 1}: incomplete ({r['got']:,} of {args.lines:,} documents)  "
                      f"peak RSS {r['peak']:.1f} MiB")
        good = [r for r in rows if r["ok"]]
        if not good:
            return 1
        dps = statistics.median(r["dps"] for r in good)
        print(f"median: {dps:,.0f} docs/s, "
              f"{statistics.median(r['per_cpu'] for r in good):,.0f} docs per agent CPU-second, "
              f"peak RSS {statistics.median(r['peak'] for r in good):.1f} MiB "
              f"(max {max(r['peak'] for r in good):.1f}); target 200,000 docs/s: "
              f"{'met' if dps >= 200_000 else 'NOT met'} (x{dps / 200_000:.2f})")
        return 0 if len(good) == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
