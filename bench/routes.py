"""Route-table scale: start, reload, memory per route and a new hostname's
look-up, for 100, 1,000, 10,000 and 50,000 routes, exact and glob.

The real agent is launched with a routes file of N routes (exact: one
hostname per route; glob: ``*.spaceN``), drains mixed the way an Akkeris
cluster has them (syslog+tls, syslog+tcp, https; none of them is ever sent
to), plus one probe route to a local TCP sink. A sender writes a probe line
into the agent's syslog TCP input every 10 ms from the moment the agent is
launched:

* start:   launch to the first probe line at the sink (connection attempts
           before the input listens are part of it);
* reload:  the routes file rewritten with one more route, to the first line
           of that route's hostname at the sink (ROUTES_RELOAD_INTERVAL=0.2 s
           is part of it);
* B/route: (resident memory with N routes - with 3) / (N - 3), 1 s after start;
* reloaded: the same after the reload (the old and new file were both read);
* text:    of which the route's own text (its hostname and URL strings);
* lookup:  in a child process, a Router holding the same N routes resolves
           2,000 hostnames it has never seen (none of them routed, so every
           glob is a candidate): the median microseconds per hostname.

A case that takes longer than --timeout seconds prints ">T".

    python bench/routes.py [--sizes 100,1000,10000,50000] [--timeout 60]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from peers import Agent, free_port  # noqa: E402
from route_probe import Sender, Sink, wait_first  # noqa: E402

BASE = 3  # routes of the baseline agent (one of each drain kind)
CA_B64 = None  # set in main(): a real CA certificate (openssl), base64 of its PEM


def drain_url(i: int) -> str:
    # below the ports tests and benchmarks listen on (peers.free_port), and the
    # agent's default ones (9000-9004): a drain there would be refused as a loop
    port = 1024 + i % 7000
    k = i % 3
    if k == 0:  # a few carry their own CA (1.6 KB of base64 in the URL)
        return f"syslog+tls://127.0.0.2:{port}/?ca={CA_B64}" if i % 300 == 3 else \
            f"syslog+tls://127.0.0.2:{port}/"
    if k == 1:
        return f"syslog+tcp://127.0.0.2:{port}/"
    return f"https://127.0.0.2:{port}/drains/{i}"


def routes_text(kind: str, n: int, sink: int, extra: str = "") -> str:
    lines = []
    for i in range(n):
        host = f"app{i}-space{i % 97}.apps" if kind == "exact" else f"*.space{i}"
        lines.append(f"{host} {drain_url(i)}")
    lines.append(("probe.bench" if kind == "exact" else "*.probe") +
                 f" syslog+tcp://127.0.0.1:{sink}/")
    if extra:
        lines.append(extra)
    return "\n".join(lines) + "\n"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run_agent(work: Path, kind: str, n: int, timeout: float) -> dict:
    sink = Sink()
    tcp = free_port()
    agent = Agent(work / f"{kind}-{n}", {
        "SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(tcp), "METRICS": "false",
        "LOG_LEVEL": "warning"}, routes=routes_text(kind, n, sink.port))
    sender = Sender(tcp)
    probe = "probe.bench" if kind == "exact" else "x.probe"
    sender.hosts = [probe]
    t0 = time.monotonic()
    agent.start(wait=False)
    out: dict = {"start": None, "reload": None, "rss_kib": None, "start_kib": None}
    try:
        out["start"] = wait_first(sink, probe, t0, timeout)
        if out["start"] is None:
            return out
        while not agent.healthy():
            time.sleep(0.05)
        time.sleep(1.0)
        out["start_kib"] = rss_kib(agent.proc.pid)
        new = "probe2.bench" if kind == "exact" else "*.probe2"
        host2 = "probe2.bench" if kind == "exact" else "y.probe2"
        sender.hosts = [probe, host2]
        time.sleep(0.3)
        t1 = time.monotonic()
        agent.set_routes(routes_text(kind, n, sink.port, f"{new} syslog+tcp://127.0.0.1:{sink.port}/"))
        out["reload"] = wait_first(sink, host2, t1, timeout)
        time.sleep(1.0)
        out["rss_kib"] = rss_kib(agent.proc.pid)
        return out
    finally:
        sender.stop = True
        agent.stop()


def lookup_us(kind: str, n: int, timeout: float) -> float | None:
    code = (
        "import sys, json, time, statistics\n"
        "from gevent import monkey; monkey.patch_all()\n"
        f"sys.path.insert(0, {str(ROOT / 'bench')!r})\n"
        "import routes as b\n"
        f"b.CA_B64 = {CA_B64!r}\n"
        f"print(json.dumps(b.lookup_child({kind!r}, {n})))\n"
    )
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=timeout, cwd=str(ROOT))
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0:
        print(r.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def lookup_child(kind: str, n: int) -> float:
    """Runs in the child: N routes into a Router, then 2,000 new hostnames."""
    import io
    import statistics

    from logtrain.config import load
    from logtrain.log import Log, RateLimit
    from logtrain.metrics import Metrics
    from logtrain.router import Router
    from logtrain.runtime import Runtime

    cfg = load(env={"SYSLOG_TCP": "true", "ROUTES_FILE": "/dev/null"})
    rt = Runtime(cfg, Log("error", io.StringIO()), Metrics(), RateLimit(60.0))
    r = Router(rt)
    text = routes_text(kind, n, 9)
    batch = getattr(r, "batch", None)
    pairs = [line.split() for line in text.splitlines()]
    if batch is not None:
        with batch():
            for host, url in pairs:
                r.add_route("file:bench", host, url)
    else:
        for host, url in pairs:
            r.add_route("file:bench", host, url)
    r.drains_for("warm.up")
    times = []
    for i in range(2000):
        host = f"new{i}-space{i % 97}.elsewhere"
        t = time.perf_counter()
        r.drains_for(host)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def text_bytes(kind: str, n: int) -> float:
    """Bytes of the hostname and URL strings of the average route."""
    pairs = [line.split() for line in routes_text(kind, n, 9).splitlines()]
    return sum(sys.getsizeof(h) + sys.getsizeof(u) for h, u in pairs) / len(pairs)


def fmt(v: float | None, unit: str, timeout: float | None, digits: int = 2) -> str:
    """``v`` with its unit; ">T s" when it took over the timeout, "-" when not measured."""
    if v is None:
        return "-" if timeout is None else f">{timeout:g}s"
    return f"{v:.{digits}f}{unit}"


def main() -> None:
    global CA_B64
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,1000,10000,50000")
    ap.add_argument("--kinds", default="exact,glob")
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    import base64

    work = Path(tempfile.mkdtemp(prefix="bench-routes-"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=bench-ca", "-keyout", str(work / "ca.key"),
                    "-out", str(work / "ca.pem")], check=True, capture_output=True)
    CA_B64 = base64.b64encode((work / "ca.pem").read_bytes()).decode()
    print(f"{'routes':>7} {'kind':>5} {'start':>9} {'reload':>9} {'RSS MiB':>8} "
          f"{'B/route':>8} {'reloaded':>8} {'text':>5} {'lookup':>9}", flush=True)
    for kind in args.kinds.split(","):
        base = run_agent(work, kind, BASE, args.timeout)
        for n in sizes:
            r = run_agent(work, kind, n, args.timeout)
            per = per2 = None
            if r["start_kib"] and base["start_kib"]:
                per = f'{(r["start_kib"] - base["start_kib"]) * 1024 / (n - BASE):.0f}'
            if r["rss_kib"] and base["rss_kib"]:
                per2 = f'{(r["rss_kib"] - base["rss_kib"]) * 1024 / (n - BASE):.0f}'
            lk = lookup_us(kind, n, args.timeout)
            print(f"{n:>7} {kind:>5} {fmt(r['start'], 's', args.timeout):>9} "
                  f"{fmt(r['reload'], 's', args.timeout if r['start'] else None):>9} "
                  f"{fmt(r['rss_kib'] and r['rss_kib'] / 1024, '', None, 1):>8} "
                  f"{per if per is not None else '-':>8} {per2 if per2 is not None else '-':>8} "
                  f"{text_bytes(kind, n):>5.0f} "
                  f"{fmt(lk, 'us', args.timeout, 1):>9}", flush=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
