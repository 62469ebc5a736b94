"""Syslog TCP relay benchmark: the agent side by side with rsyslog, same run.

N RFC5424 lines of about SIZE bytes are sent into a syslog TCP input and
forwarded to a TCP sink on loopback that counts lines. For each relay it
prints lines/s, MB/s, the relay's CPU seconds and its peak resident memory
(VmHWM), and the agent's ratios to the peer. Public tools only: Python and
Debian's rsyslogd.

    python bench/relay.py [--lines 1000000] [--size 200] [--runs 3]
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from peers import free_port, port_open, wait_for  # noqa: E402

SINK = textwrap.dedent("""
    import selectors, socket, sys, time
    port, want = int(sys.argv[1]), int(sys.argv[2])
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port)); srv.listen(64)
    sel = selectors.DefaultSelector(); sel.register(srv, selectors.EVENT_READ)
    print("ready", flush=True)
    n = nbytes = 0
    while n < want:
        for key, _ in sel.select():
            if key.fileobj is srv:
                c, _ = srv.accept(); sel.register(c, selectors.EVENT_READ)
                continue
            data = key.fileobj.recv(1 << 20)
            if not data:
                sel.unregister(key.fileobj); key.fileobj.close(); continue
            n += data.count(b"\\n"); nbytes += len(data)
    print(time.monotonic(), n, nbytes, flush=True)
""")


def make_payload(lines: int, size: int) -> bytes:
    head = "<134>1 2026-11-24T00:00:00.000000Z bench-host benchapp - - - seq="
    pad = "x" * max(0, size - len(head) - 9 - 1)
    return "".join(f"{head}{i:08d} {pad}\n" for i in range(lines)).encode()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def send(port: int, payload: bytes) -> float:
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as s:
        view = memoryview(payload)
        for i in range(0, len(payload), 1 << 20):
            s.sendall(view[i : i + (1 << 20)])
    return start


def run_one(name: str, start_relay, payload: bytes, lines: int, work: Path) -> dict:
    sink_port = free_port()
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(sink_port), str(lines)],
                            stdout=subprocess.PIPE, text=True)
    assert sink.stdout.readline().strip() == "ready"
    in_port = free_port()
    relay = start_relay(in_port, sink_port, work)
    try:
        wait_for(lambda: port_open(in_port), 20, what=f"{name} to listen")
        time.sleep(0.5)
        idle_rss = rss_mib(relay.pid)
        cpu0 = cpu_seconds(relay.pid)
        t0 = send(in_port, payload)
        out = sink.stdout.readline().split()
        sink.wait(10)
        t1, got, nbytes = float(out[0]), int(out[1]), int(out[2])
        cpu = cpu_seconds(relay.pid) - cpu0
        peak = peak_rss_mib(relay.pid)
    finally:
        relay.terminate()
        try:
            relay.wait(15)
        except subprocess.TimeoutExpired:
            relay.kill()
        sink.kill()
    secs = t1 - t0
    return {"name": name, "lines": got, "secs": secs, "lps": got / secs,
            "mbps": nbytes / secs / 1e6, "cpu": cpu, "peak": peak, "idle": idle_rss}


def start_agent(in_port: int, sink_port: int, work: Path) -> subprocess.Popen:
    routes = work / "routes"
    routes.write_text(f"*  syslog+tcp://127.0.0.1:{sink_port}\n")
    env = {"PATH": os.environ["PATH"], "SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(in_port),
           "HTTP_PORT": str(free_port()), "BIND_ADDRESS": "127.0.0.1", "ROUTES_FILE": str(routes),
           "STATE_DIR": str(work / "state"), "LOG_LEVEL": "warning"}
    return subprocess.Popen([sys.executable, "-m", "logtrain", "run"], env=env, cwd=str(ROOT))


def start_rsyslog(in_port: int, sink_port: int, work: Path) -> subprocess.Popen:
    d = work / f"rsyslog-{in_port}"
    d.mkdir()
    conf = d / "rsyslog.conf"
    conf.write_text(
        f'global(workDirectory="{d}" maxMessageSize="64k")\n'
        'module(load="imtcp")\n'
        f'input(type="imtcp" port="{in_port}" ruleset="fwd")\n'
        'ruleset(name="fwd") {\n'
        f'  action(type="omfwd" target="127.0.0.1" port="{sink_port}" protocol="tcp" '
        'template="RSYSLOG_SyslogProtocol23Format")\n}\n')
    return subprocess.Popen([shutil.which("rsyslogd") or "/usr/sbin/rsyslogd", "-n", "-f", str(conf),
                             "-i", str(d / "pid")])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3, help="runs of each relay; medians are printed")
    args = ap.parse_args()
    payload = make_payload(args.lines, args.size)
    relays = [("logtrain", start_agent)]
    if shutil.which("rsyslogd") or os.path.exists("/usr/sbin/rsyslogd"):
        relays.append(("rsyslog", start_rsyslog))
    else:
        print("rsyslogd not installed (scripts/install-test-deps.sh installs it): agent only")
    results: dict[str, list[dict]] = {n: [] for n, _ in relays}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):  # interleaved, so drift of a shared machine hits both
            for name, start in relays:
                results[name].append(run_one(name, start, payload, args.lines, Path(tmp)))
    print(f"\nsyslog TCP relay, {args.lines:,} lines of {args.size} B, median of {args.runs} runs")
    print(f"{'relay':<10} {'lines/s':>10} {'MB/s':>7} {'CPU s':>7} {'peak RSS MiB':>13} {'idle RSS MiB':>13}")
    med = {}
    for name, rs in results.items():
        m = {k: statistics.median(r[k] for r in rs) for k in ("lps", "mbps", "cpu", "peak", "idle")}
        med[name] = m
        print(f"{name:<10} {m['lps']:>10,.0f} {m['mbps']:>7.1f} {m['cpu']:>7.2f} {m['peak']:>13.1f} {m['idle']:>13.1f}")
    if "rsyslog" in med:
        a, r = med["logtrain"], med["rsyslog"]
        print(f"logtrain/rsyslog: throughput x{a['lps'] / r['lps']:.2f}, CPU x{a['cpu'] / r['cpu']:.2f}, "
              f"peak RSS x{a['peak'] / r['peak']:.2f}")


if __name__ == "__main__":
    main()
