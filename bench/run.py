"""The agent side by side with rsyslog and syslog-ng, in the same run, one table.

Scenarios (1,000,000 lines of about 200 bytes by default, to a TCP sink on
loopback that counts lines; every relay's runs interleaved, medians printed):

  file   a CRI-format container log read from its start and forwarded to
         syslog+tcp: the agent's Kubernetes file input (KUBERNETES=true on a
         directory holding the file under a container log's name), rsyslog
         imfile -> omfwd, syslog-ng file() -> network(). An agent of another
         checkout (--before) that has no file input gets the same lines, as
         RFC5424, through socat into its syslog TCP input (marked *).
  relay  RFC5424 lines sent into a syslog TCP input and forwarded over TCP:
         the agent, rsyslog imtcp -> omfwd, syslog-ng network() -> network().
         Also the agent with three live tails attached (logtrain+3t), each
         matching every line, one per format (RFC5424 text, NDJSON, SSE),
         read by a client as fast as it can: its throughput against the
         agent's without tails (target: at least 0.9).
  latency  10,000 lines/s for a few seconds into each relay's TCP input; each
         line carries its send time, the sink takes p50 and p99 of the delay.
  memory resident memory idle (the inputs that exist enabled) and the peak
         under load (VmHWM of the relay scenario).

For each relay: lines/s and MB/s from the first line received to the last,
CPU seconds (the relay process, all threads), peak RSS, the seconds from its
launch (file) or the feed's start (relay) to the first line received, and the
agent's ratios to each peer. A run that does not deliver
every line is marked incomplete rather than given a throughput.

    bash bench/install-peers.sh        # rsyslog, socat, syslog-ng beside it
    python bench/run.py [--lines N] [--runs 3] [--only relay,latency] [--before DIR]

``--before DIR`` adds the agent of another checkout (run read-only by its own
DIR/.venv, bytecode not written) as "before", interleaved with this one.

Public tools only: Python, socat, Debian's rsyslog and syslog-ng.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
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
from peers import free_port, make_certs, port_open, wait_for  # noqa: E402

SYSLOG_NG = ROOT / ".bench" / "syslog-ng"
RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
AGENT = [sys.executable, "-m", "logtrain", "run"]

# Counts newline-terminated lines until it has WANT, then prints the time of
# the last byte, the lines and the bytes. With a third argument it instead
# records, per line, now minus the t=NANOSECONDS the sender put in it.
SINK = textwrap.dedent(r"""
    import selectors, socket, sys, time
    port, want = int(sys.argv[1]), int(sys.argv[2])
    latency = len(sys.argv) > 3
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port)); srv.listen(64)
    sel = selectors.DefaultSelector(); sel.register(srv, selectors.EVENT_READ)
    print("ready", flush=True)
    n = nbytes = 0
    first = None  # when the first line arrived
    delays = []
    rest = {}
    deadline = None
    while n < want:
        events = sel.select(timeout=1.0)
        if not events and deadline and time.monotonic() > deadline:
            break
        for key, _ in events:
            if key.fileobj is srv:
                c, _ = srv.accept(); sel.register(c, selectors.EVENT_READ)
                continue
            data = key.fileobj.recv(1 << 20)
            now = time.monotonic_ns()
            if not data:
                sel.unregister(key.fileobj); key.fileobj.close(); continue
            if first is None:
                first = time.monotonic()
            n += data.count(b"\n"); nbytes += len(data)
            if latency:
                buf = rest.get(key.fd, b"") + data
                *lines, rest[key.fd] = buf.split(b"\n")
                for line in lines:
                    i = line.find(b" t=")
                    if i >= 0:
                        delays.append(now - int(line[i + 3:i + 22].split(b" ")[0]))
        if n and deadline is None and latency:
            deadline = time.monotonic() + 30
    if latency:
        delays.sort()
        k = len(delays)
        p = lambda q: delays[min(k - 1, int(k * q))] / 1e6 if k else float("nan")
        print(time.monotonic(), n, nbytes, p(0.5), p(0.99), flush=True)
    else:
        print(time.monotonic(), n, nbytes, first or 0.0, flush=True)
""")


# Reads GET /tail as fast as it can until the agent ends the stream; prints the bytes.
TAIL_READER = textwrap.dedent(r"""
    import socket, sys
    port, accept, glob = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET /tail?hostname={glob} HTTP/1.1\r\nHost: bench\r\nAccept: {accept}\r\n\r\n".encode())
    buf = bytearray(1 << 20)
    n = 0
    while k := s.recv_into(buf):
        n += k
    print(n, flush=True)
""")
TAILS = [("text/plain", "bench-host"), ("application/x-ndjson", "bench-*"),
         ("text/event-stream", "*")]

# ----------------------------------------------------------------------------- data


def rfc5424_lines(n: int, size: int) -> bytes:
    head = "<14>1 2026-11-24T10:00:00.123456Z bench-host benchapp - - - seq="
    pad = "x" * max(0, size - len(head) - 9 - 1)
    return "".join(f"{head}{i:08d} {pad}\n" for i in range(n)).encode()


def cri_lines(n: int, size: int) -> bytes:
    head = "2026-11-24T10:00:00.123456789Z stdout F seq="
    pad = "y" * max(0, size - len(head) - 9 - 1)
    return "".join(f"{head}{i:08d} {pad}\n" for i in range(n)).encode()


# ----------------------------------------------------------------------------- process figures


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_mib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


# ----------------------------------------------------------------------------- relays


class Relay:
    """A relay process started for one run: ``inputs`` says what it listens on."""

    name = ""

    def __init__(self, work: Path, sink_port: int) -> None:
        self.work = Path(tempfile.mkdtemp(dir=work, prefix=self.name + "-"))
        self.sink_port = sink_port
        self.tcp_port = free_port()
        self.udp_port = free_port()
        self.proc: subprocess.Popen | None = None

    def start_relay(self, file: Path | None = None, idle: bool = False) -> None:
        raise NotImplementedError

    def wait_listening(self) -> None:
        wait_for(lambda: self.proc.poll() is not None or port_open(self.tcp_port), 30,
                 what=f"{self.name} to listen")
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class AgentRelay(Relay):
    name = "logtrain"
    reads_files = True

    def start_relay(self, file: Path | None = None, idle: bool = False) -> None:
        routes = self.work / "routes"
        routes.write_text(f"*  syslog+tcp://127.0.0.1:{self.sink_port}\n")
        self.http_port = free_port()
        env = {"PATH": os.environ["PATH"], "SYSLOG_TCP": "true",
               "SYSLOG_TCP_PORT": str(self.tcp_port), "HTTP_PORT": str(self.http_port),
               "BIND_ADDRESS": "127.0.0.1", "ROUTES_FILE": str(routes),
               "STATE_DIR": str(self.work / "state"), "LOG_LEVEL": "warning"}
        if file is not None:
            # the file under a container log's name, where the Kubernetes input looks
            logs = self.work / f"containers-{self.tcp_port}"
            logs.mkdir()
            os.link(file, logs / ("app-7d9f8c6b5-abc12_bench_app-" + "0" * 64 + ".log"))
            env.update({"KUBERNETES": "true", "KUBERNETES_LOG_PATH": str(logs),
                        "FILES_START_AT": "beginning"})
        if idle:  # the inputs that exist: TCP, UDP, TLS, HTTP syslog and events
            certs = make_certs(self.work)
            env.update({"SYSLOG_UDP": "true", "SYSLOG_UDP_PORT": str(self.udp_port),
                        "SYSLOG_TLS": "true", "SYSLOG_TLS_PORT": str(free_port()),
                        "SYSLOG_TLS_CERT_PEM": str(certs["server.pem"]),
                        "SYSLOG_TLS_KEY_PEM": str(certs["server.key"]),
                        "HTTP_SYSLOG": "true", "HTTP_EVENTS": "true"})
        self.proc = subprocess.Popen(self.command(), env=env, cwd=str(self.root))
        self.wait_listening()

    root = ROOT

    def command(self) -> list[str]:
        return AGENT


class TailedRelay(AgentRelay):
    """The agent with three live tails attached, every line matching each."""

    name = "logtrain+3t"
    scenarios = ("relay",)

    def start_relay(self, file: Path | None = None, idle: bool = False) -> None:
        super().start_relay(file, idle)
        wait_for(lambda: port_open(self.http_port), 30, what="the agent's HTTP port")
        self.readers = [subprocess.Popen([sys.executable, "-c", TAIL_READER, str(self.http_port),
                                          accept, glob], stdout=subprocess.PIPE, text=True)
                        for accept, glob in TAILS]
        wait_for(lambda: len(self._status()["tails"]) == len(TAILS), 10, what="tails attached")

    def _status(self) -> dict:
        import json
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/status.json") as r:
            return json.load(r)

    def stop(self) -> None:
        try:
            self.extra = {"tail_dropped": sum(t["dropped"] for t in self._status()["tails"])}
        except OSError:
            self.extra = {}
        super().stop()  # the agent ends the tails' streams as it stops
        got = 0
        for r in self.readers:
            out, _ = r.communicate(timeout=30)
            got += int(out.strip() or 0)
        self.extra["tail_mb"] = got / 1e6


def before_relay(checkout: Path) -> type[Relay]:
    """The agent of another checkout, for before/after figures in one run."""

    class BeforeRelay(AgentRelay):
        name = "before"
        root = checkout
        # an agent from before the file input is fed by socat instead
        reads_files = (checkout / "logtrain" / "tailer.py").exists()

        def command(self) -> list[str]:
            return [str(checkout / ".venv" / "bin" / "python"), "-B", "-m", "logtrain", "run"]

    return BeforeRelay


class RsyslogRelay(Relay):
    name = "rsyslog"

    def start_relay(self, file: Path | None = None, idle: bool = False) -> None:
        d = self.work
        out = (f'action(type="omfwd" target="127.0.0.1" port="{self.sink_port}" protocol="tcp" '
               'template="RSYSLOG_SyslogProtocol23Format" queue.type="LinkedList" '
               'queue.size="200000" queue.dequeueBatchSize="1024")')
        conf = [f'global(workDirectory="{d}" maxMessageSize="64k")',
                'module(load="imtcp")', 'module(load="imudp")',
                f'input(type="imtcp" port="{self.tcp_port}" ruleset="fwd")',
                f'input(type="imudp" port="{self.udp_port}" ruleset="fwd")']
        if file is not None:
            conf += ['module(load="imfile")',
                     f'input(type="imfile" file="{file}" tag="app" ruleset="fwd" '
                     'freshStartTail="off" readMode="0")']
        conf += ['ruleset(name="fwd") {', "  " + out, "}"]
        (d / "rsyslog.conf").write_text("\n".join(conf) + "\n")
        self.proc = subprocess.Popen([RSYSLOGD, "-n", "-f", str(d / "rsyslog.conf"),
                                      "-i", str(d / "pid")])
        self.wait_listening()


class SyslogNgRelay(Relay):
    name = "syslog-ng"

    def start_relay(self, file: Path | None = None, idle: bool = False) -> None:
        d = self.work
        src = [f'network(ip("127.0.0.1") port({self.tcp_port}) transport("tcp") '
               'log-iw-size(100000) log-fetch-limit(1000) max-connections(100))',
               f'network(ip("127.0.0.1") port({self.udp_port}) transport("udp"))']
        if file is not None:
            src.append(f'file("{file}" flags(no-parse) follow-freq(0.1) log-iw-size(100000) '
                       'log-fetch-limit(1000) program-override("app"))')
        conf = textwrap.dedent(f"""\
            @version: 3.38
            options {{ stats-freq(0); log-fifo-size(200000); flush-lines(1000);
                      keep-hostname(yes); mark-freq(0); }};
            source s_in {{ {" ".join(s + ";" for s in src)} }};
            destination d_out {{ network("127.0.0.1" port({self.sink_port}) transport("tcp")
                template("<${{PRI}}>1 ${{ISODATE}} ${{HOST}} ${{PROGRAM}} - - - ${{MSG}}\\n")); }};
            log {{ source(s_in); destination(d_out); flags(flow-control); }};
            """)
        (d / "syslog-ng.conf").write_text(conf)
        lib = SYSLOG_NG / "usr/lib/syslog-ng"
        env = dict(os.environ, LD_LIBRARY_PATH=str(lib))
        self.proc = subprocess.Popen(
            [str(SYSLOG_NG / "usr/sbin/syslog-ng"), "-F", "-f", str(d / "syslog-ng.conf"),
             "-p", str(d / "pid"), "-R", str(d / "persist"), "-c", str(d / "ctl"),
             f"--module-path={lib / '3.38'}", "--no-caps"], env=env,
            stdout=subprocess.DEVNULL, stderr=open(d / "stderr", "wb"))
        self.wait_listening()


RELAYS = [AgentRelay, RsyslogRelay, SyslogNgRelay]


# ----------------------------------------------------------------------------- runs


def start_sink(port: int, want: int, latency: bool = False) -> subprocess.Popen:
    args = [sys.executable, "-c", SINK, str(port), str(want)] + (["latency"] if latency else [])
    sink = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert sink.stdout.readline().strip() == "ready"
    return sink


def finish(sink: subprocess.Popen, timeout: float) -> list[str]:
    try:
        out, _ = sink.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        sink.kill()
        return []
    return out.split()


def throughput(cls: type[Relay], scenario: str, data: Path, agent_data: Path, lines: int,
               work: Path) -> dict:
    sink_port = free_port()
    sink = start_sink(sink_port, lines)
    relay = cls(work, sink_port)
    try:
        if scenario == "file" and getattr(cls, "reads_files", True):
            # the peer reads the file itself, from its start, as soon as it starts
            t0 = time.monotonic()
            relay.start_relay(file=data)
            cpu0 = 0.0
        else:
            relay.start_relay()
            time.sleep(0.3)
            cpu0 = cpu_seconds(relay.proc.pid)
            t0 = time.monotonic()
            feed = agent_data if issubclass(cls, AgentRelay) else data
            subprocess.run(["socat", "-u", f"OPEN:{feed}", f"TCP:127.0.0.1:{relay.tcp_port}"],
                           check=True)
        out = finish(sink, 300)
        cpu = cpu_seconds(relay.proc.pid) - cpu0
        peak = status_mib(relay.proc.pid, "VmHWM")
    finally:
        relay.stop()
        sink.kill()
    extra = getattr(relay, "extra", {})
    if not out or int(out[1]) < lines:
        got = int(out[1]) if out else 0
        return {"ok": False, "got": got, "cpu": cpu, "peak": peak, **extra}
    # lines/s from the first line received to the last: a process's start-up
    # (Python imports, reading configuration) is its own column, not a rate
    first = float(out[3])
    secs = float(out[0]) - first
    return {"ok": True, "lps": lines / secs, "mbps": int(out[2]) / secs / 1e6, "cpu": cpu,
            "peak": peak, "start": first - t0, **extra}


def latency(cls: type[Relay], rate: int, seconds: float, work: Path) -> dict:
    sink_port = free_port()
    total = int(rate * seconds)
    sink = start_sink(sink_port, total, latency=True)
    relay = cls(work, sink_port)
    try:
        relay.start_relay()
        time.sleep(0.3)
        pad = "z" * 120
        with socket.create_connection(("127.0.0.1", relay.tcp_port)) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            start = time.monotonic()
            sent = 0
            while sent < total:
                due = int((time.monotonic() - start) * rate) + 1
                batch = []
                while sent < min(due, total):
                    batch.append(f"<14>1 2026-11-24T10:00:00.000000Z bench-host benchapp - - - "
                                 f"seq={sent:08d} t={time.monotonic_ns()} {pad}\n")
                    sent += 1
                if batch:
                    s.sendall("".join(batch).encode())
                time.sleep(0.001)
            out = finish(sink, 60)
    finally:
        relay.stop()
        sink.kill()
    if not out or int(out[1]) < total:
        return {"ok": False}
    return {"ok": True, "p50": float(out[3]), "p99": float(out[4])}


def idle_memory(cls: type[Relay], work: Path) -> float:
    relay = cls(work, free_port())
    try:
        relay.start_relay(idle=True)
        time.sleep(2)
        return status_mib(relay.proc.pid, "VmRSS")
    finally:
        relay.stop()


# ----------------------------------------------------------------------------- table


def med(rows: list[dict], key: str) -> float:
    vals = [r[key] for r in rows if r.get("ok", True) and key in r]
    return statistics.median(vals) if vals else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate", type=int, default=10_000, help="lines/s of the latency scenario")
    ap.add_argument("--latency-seconds", type=float, default=5.0)
    ap.add_argument("--only", default="file,relay,latency,memory")
    ap.add_argument("--before", type=Path, help="another checkout whose agent runs beside this one")
    args = ap.parse_args()
    only = set(args.only.split(","))
    relays: list[type[Relay]] = [AgentRelay, TailedRelay]
    if args.before:
        relays.append(before_relay(args.before.resolve()))
    if os.path.exists(RSYSLOGD):
        relays.append(RsyslogRelay)
    if (SYSLOG_NG / "usr/sbin/syslog-ng").exists():
        relays.append(SyslogNgRelay)
    peers = [r for r in relays if r.name != "logtrain" and r is not TailedRelay]
    if len([r for r in relays if not issubclass(r, AgentRelay)]) < 2:
        print("a peer is missing: run bash bench/install-peers.sh", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="logtrain-bench-"))
    results: dict[tuple[str, str], list[dict]] = {}
    try:
        relay_data = work / "relay.log"
        relay_data.write_bytes(rfc5424_lines(args.lines, args.size))
        cri = work / "containers" / "app.log"
        cri.parent.mkdir()
        cri.write_bytes(cri_lines(args.lines, args.size))
        for r in range(args.runs):  # interleaved, so a shared machine's drift hits all alike
            for cls in relays:
                for scenario in ("file", "relay"):
                    if scenario in only and scenario in getattr(cls, "scenarios", (scenario,)):
                        # a fresh copy each run: imfile and file() remember positions
                        data = work / "containers" / f"app-{r}-{cls.name}.log"
                        if scenario == "file":
                            shutil.copyfile(cri, data)
                        res = throughput(cls, scenario, data if scenario == "file" else relay_data,
                                         relay_data, args.lines, work)
                        results.setdefault((scenario, cls.name), []).append(res)
                        if scenario == "file":
                            data.unlink()
                        print(f"run {r + 1} {scenario:6s} {cls.name:10s} "
                              + (f"{res['lps']:,.0f} lines/s" if res["ok"]
                                 else f"INCOMPLETE: {res['got']:,} of {args.lines:,}"),
                              file=sys.stderr, flush=True)
                if cls is TailedRelay:
                    continue
                if "latency" in only:
                    results.setdefault(("latency", cls.name), []).append(
                        latency(cls, args.rate, args.latency_seconds, work))
                if "memory" in only:
                    results.setdefault(("idle", cls.name), []).append(
                        {"rss": idle_memory(cls, work)})
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nlogtrain side by side with its peers: {args.lines:,} lines of ~{args.size} B, "
          f"median of {args.runs} interleaved runs, {os.cpu_count()} CPUs")
    head = (f"{'scenario':<8} {'relay':<11} {'lines/s':>10} {'MB/s':>7} {'CPU s':>7} "
            f"{'peak RSS MiB':>12} {'1st line s':>10}")
    print(head)
    print("-" * len(head))
    table: dict[tuple[str, str], dict] = {}
    for scenario in ("file", "relay"):
        for cls in relays:
            rows = results.get((scenario, cls.name), [])
            if not rows:
                continue
            incomplete = sum(not x["ok"] for x in rows)
            m = {k: med(rows, k) for k in ("lps", "mbps", "cpu", "peak", "start")}
            table[(scenario, cls.name)] = m
            label = cls.name + ("*" if scenario == "file" and not getattr(cls, "reads_files", True)
                                else "")
            note = f"  ({incomplete} run(s) incomplete)" if incomplete else ""
            print(f"{scenario:<8} {label:<11} {m['lps']:>10,.0f} {m['mbps']:>7.1f} "
                  f"{m['cpu']:>7.2f} {m['peak']:>12.1f} {m['start']:>10.2f}{note}")
    if any(s == "file" and not getattr(c, "reads_files", True)
           for s, c in ((s, next(r for r in relays if r.name == n)) for s, n in table)):
        print("* an agent without a file input: socat streams the same lines, as RFC5424,"
              " into its syslog TCP input")
    extra: dict[str, dict] = {}
    if {"latency", "memory"} & only:
        print(f"\n{'relay':<11} {'idle RSS MiB':>12} {'p50 ms':>8} {'p99 ms':>8}   "
              f"(latency at {args.rate:,} lines/s, write to receipt)")
        for cls in [r for r in relays if r is not TailedRelay]:
            lat = results.get(("latency", cls.name), [])
            e = extra[cls.name] = {"idle": med(results.get(("idle", cls.name), []), "rss"),
                                   "p50": med(lat, "p50"), "p99": med(lat, "p99")}
            print(f"{cls.name:<11} {e['idle']:>12.1f} {e['p50']:>8.2f} {e['p99']:>8.2f}")
    print()
    for scenario in ("file", "relay"):
        a = table.get((scenario, "logtrain"))
        for cls in peers:
            p = table.get((scenario, cls.name))
            if a and p:
                print(f"{scenario:<7} logtrain/{cls.name:<10} throughput x{a['lps'] / p['lps']:.2f}"
                      f"   CPU x{a['cpu'] / p['cpu']:.2f}   peak RSS x{a['peak'] / p['peak']:.2f}")
    a, t = table.get(("relay", "logtrain")), table.get(("relay", TailedRelay.name))
    if a and t:
        rows = results.get(("relay", TailedRelay.name), [])
        # each run's pair (without tails, then with, back to back) shares the
        # machine's load of that moment: the median of those ratios as well
        plain = results[("relay", "logtrain")]
        pairs = [x["lps"] / y["lps"] for x, y in zip(rows, plain, strict=True)
                 if x["ok"] and y["ok"]]
        print(f"relay   logtrain+3 tails/logtrain throughput x{t['lps'] / a['lps']:.2f}, per run"
              f" x{statistics.median(pairs) if pairs else float('nan'):.2f} (target >= 0.90)"
              f"   CPU x{t['cpu'] / a['cpu']:.2f}   peak RSS x{t['peak'] / a['peak']:.2f}"
              f"   tails read {med(rows, 'tail_mb'):.0f} MB, dropped {med(rows, 'tail_dropped'):,.0f}"
              " lines (medians)")
    for cls in peers:
        a, p = extra.get("logtrain"), extra.get(cls.name)
        if a and p:
            print(f"{'idle':<7} logtrain/{cls.name:<10} RSS x{a['idle'] / p['idle']:.2f}"
                  f"   latency p50 x{a['p50'] / p['p50']:.2f}   p99 x{a['p99'] / p['p99']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
