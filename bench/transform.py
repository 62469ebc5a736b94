"""Transformations measured on the real agent, each against its own
baseline in the same run (runs interleaved, medians and ratios printed):

  redact     RFC5424 lines sent through socat into the syslog TCP input and
             relayed to syslog+tcp, with REDACT=default (the built-in
             patterns) and without. One line in 100 carries a secret (a URL
             password, a bearer token, an AWS key or a card number), the rest
             are ordinary access-log lines. Target: redaction on at least 0.5
             of off.
  multiline  a CRI container log of real Java stack traces (the output of
             tests/data/multiline/src/Boom.java, repeated) read by the
             Kubernetes input from its start with MULTILINE mode java, and
             without (every line a packet), to syslog+tcp. Rate in file lines
             per second; target 100,000.
  structured a CRI container log of 200-byte lines, one in ten a JSON object
             as pino writes it, read by the Kubernetes input with
             STRUCTURED_LOGS=true (severity from "level") and false: what JSON
             detection costs the file path.
  memory     resident memory of the TCP relay, idle and at its peak under the
             redact load, with and without REDACT: what google-re2 adds.

    python bench/transform.py [--lines N] [--runs 3] [--only redact,multiline]

Public tools only: Python and socat.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import AGENT, ROOT, cpu_seconds, finish, start_sink, status_mib  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
from peers import free_port, port_open, wait_for  # noqa: E402

SECRETS = ["db url postgres://app:S3cr3tPassw0rd@db.internal:5432/orders",
           "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdef",
           "aws key AKIAIOSFODNN7EXAMPLE rotated",
           "charged card 4111 1111 1111 1111 amount=12.00"]


def relay_lines(n: int) -> bytes:
    head = "<14>1 2026-11-25T07:00:00.123456Z web-1.prod api - - - "
    out = []
    for i in range(n):
        if i % 100 == 99:
            msg = f"seq={i:08d} {SECRETS[(i // 100) % len(SECRETS)]}"
        else:
            msg = (f"seq={i:08d} 10.1.2.3 - - \"GET /api/v1/orders/{i % 9973}?page=2 HTTP/1.1\" "
                   f"200 {i % 5000} \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\" rt=0.0{i % 90}")
        out.append(head + msg + "\n")
    return "".join(out).encode()


def java_cri(n_lines: int) -> tuple[bytes, int, int]:
    """CRI lines of the Java program's output repeated; (data, lines, groups)."""
    sys.path.insert(0, str(ROOT))
    text = (ROOT / "tests" / "data" / "multiline" / "java.txt").read_text().splitlines()
    ts = "2026-11-25T07:00:00.123456789Z stdout F "
    lines, groups = [], 0
    while len(lines) < n_lines:
        for x in text:
            lines.append(ts + x)
            if not x.startswith(("\t", "Caused by: ", "java.lang.")):
                groups += 1
    return ("\n".join(lines) + "\n").encode(), len(lines), groups


def start_agent(work: Path, sink_port: int, env: dict, tag: str) -> subprocess.Popen:
    d = Path(tempfile.mkdtemp(dir=work, prefix=tag + "-"))
    (d / "routes").write_text(f"*  syslog+tcp://127.0.0.1:{sink_port}\n")
    tcp = free_port()
    full = {"PATH": os.environ["PATH"], "SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(tcp),
            "HTTP_PORT": str(free_port()), "BIND_ADDRESS": "127.0.0.1",
            "ROUTES_FILE": str(d / "routes"), "STATE_DIR": str(d / "state"),
            "LOG_LEVEL": "warning", **env}
    if "KUBERNETES_LOG_PATH" in env:
        logs = d / "containers"
        logs.mkdir()
        os.link(env["KUBERNETES_LOG_PATH"], logs / ("app-7d9f8c6b5-abc12_bench_app-" + "0" * 64
                                                     + ".log"))
        full["KUBERNETES_LOG_PATH"] = str(logs)
    proc = subprocess.Popen(AGENT, env=full, cwd=str(ROOT))
    proc.tcp = tcp  # type: ignore[attr-defined]
    wait_for(lambda: proc.poll() is not None or port_open(tcp), 30, what="the agent")
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def redact_run(work: Path, data: Path, n: int, on: bool) -> dict:
    sink_port = free_port()
    sink = start_sink(sink_port, n)
    proc = start_agent(work, sink_port, {"REDACT": "default"} if on else {}, "redact")
    try:
        time.sleep(0.3)
        idle = status_mib(proc.pid, "VmRSS")
        cpu0 = cpu_seconds(proc.pid)
        subprocess.run(["socat", "-u", f"OPEN:{data}", f"TCP:127.0.0.1:{proc.tcp}"], check=True)
        out = finish(sink, 300)
        cpu = cpu_seconds(proc.pid) - cpu0
        peak = status_mib(proc.pid, "VmHWM")
    finally:
        stop(proc)
        sink.kill()
    if not out or int(out[1]) < n:
        return {"ok": False}
    secs = float(out[0]) - float(out[3])
    return {"ok": True, "lps": n / secs, "cpu": cpu, "idle": idle, "peak": peak}


def json_cri(n: int) -> bytes:
    ts = "2026-11-25T07:00:00.123456789Z stdout F "
    out = []
    for i in range(n):
        if i % 10 == 0:
            out.append(f'{ts}{{"level":40,"time":1795593180728,"pid":7,"hostname":"web-1",'
                       f'"msg":"slow request seq={i:08d}","path":"/api/v1/items","ms":{i % 900}}}')
        else:
            out.append(f"{ts}seq={i:08d} " + "y" * 150)
    return ("\n".join(out) + "\n").encode()


def multiline_run(work: Path, data: Path, lines: int, groups: int, on: bool,
                  structured: bool = False) -> dict:
    sink_port = free_port()
    want = groups if on else lines
    sink = start_sink(sink_port, want)
    env = {"KUBERNETES": "true", "KUBERNETES_LOG_PATH": str(data), "FILES_START_AT": "beginning",
           "MULTILINE_TIMEOUT": "0.2", "STRUCTURED_LOGS": "true" if structured else "false"}
    if on:
        cfg = work / "multiline.toml"
        cfg.write_text('[[multiline]]\nfiles = "*"\nmode = "java"\n')
        env["LOGTRAIN_CONFIG"] = str(cfg)
    t0 = time.monotonic()
    proc = start_agent(work, sink_port, env, "multiline")
    try:
        out = finish(sink, 300)
        cpu = cpu_seconds(proc.pid)
    finally:
        stop(proc)
        sink.kill()
    if not out or int(out[1]) < want:
        return {"ok": False, "got": int(out[1]) if out else 0, "want": want}
    secs = float(out[0]) - float(out[3])
    return {"ok": True, "lps": lines / secs, "cpu": cpu, "start": float(out[3]) - t0}


def med(rows: list[dict], key: str) -> float:
    vals = [r[key] for r in rows if r.get("ok") and key in r]
    return statistics.median(vals) if vals else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="redact,multiline,structured")
    args = ap.parse_args()
    only = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="logtrain-bench-transform-"))
    rows: dict[str, list[dict]] = {}
    relay = work / "relay.log"
    relay.write_bytes(relay_lines(args.lines))
    java, jlines, jgroups = java_cri(args.lines)
    jfile = work / "java.log"
    jfile.write_bytes(java)
    sfile = work / "json.log"
    sfile.write_bytes(json_cri(args.lines))
    for _ in range(args.runs):
        if "redact" in only:
            for on in (False, True):
                rows.setdefault(f"redact {'on' if on else 'off'}", []).append(
                    redact_run(work, relay, args.lines, on))
        if "multiline" in only:
            for on in (False, True):
                rows.setdefault(f"multiline {'on' if on else 'off'}", []).append(
                    multiline_run(work, jfile, jlines, jgroups, on))
        if "structured" in only:
            for on in (False, True):
                rows.setdefault(f"structured {'on' if on else 'off'}", []).append(
                    multiline_run(work, sfile, args.lines, args.lines, False, structured=on))
    print(f"{args.runs} runs, medians; {args.lines:,} relay lines, {jlines:,} Java trace lines "
          f"({jgroups:,} groups)")
    print(f"{'scenario':<16}{'lines/s':>12}{'CPU s':>8}{'idle MiB':>10}{'peak MiB':>10}"
          f"{'complete':>10}")
    for name, rs in rows.items():
        ok = sum(1 for r in rs if r.get("ok"))
        print(f"{name:<16}{med(rs, 'lps'):>12,.0f}{med(rs, 'cpu'):>8.2f}"
              f"{med(rs, 'idle'):>10.1f}{med(rs, 'peak'):>10.1f}{ok:>7}/{len(rs)}")
    if "redact" in only:
        on, off = rows["redact on"], rows["redact off"]
        print(f"redaction on / off throughput: x{med(on, 'lps') / med(off, 'lps'):.2f} "
              "(target at least x0.5)")
        print(f"redaction on / off agent CPU per line: x{med(on, 'cpu') / med(off, 'cpu'):.2f} "
              f"(throughput bound by CPU alone: x{med(off, 'cpu') / med(on, 'cpu'):.2f})")
        print(f"memory REDACT=default adds: idle {med(on, 'idle') - med(off, 'idle'):+.1f} MiB, "
              f"peak {med(on, 'peak') - med(off, 'peak'):+.1f} MiB")
    if "multiline" in only:
        on, off = rows["multiline on"], rows["multiline off"]
        print(f"multiline joining: {med(on, 'lps'):,.0f} Java trace lines/s (target 100,000); "
              f"x{med(on, 'lps') / med(off, 'lps'):.2f} of the same file unjoined")
    if "structured" in only:
        on, off = rows["structured on"], rows["structured off"]
        print(f"structured JSON detection: x{med(on, 'lps') / med(off, 'lps'):.2f} file "
              f"throughput, x{med(on, 'cpu') / med(off, 'cpu'):.2f} CPU (one line in ten JSON)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
