"""Outage benchmark: a receiver that goes away for most of the run, the agent
beside rsyslog with a disk-assisted queue, in the same run.

Each relay gets 20,000 numbered RFC5424 lines/s into its syslog TCP input for
60 s and forwards them over TCP to a receiver that counts each line's number;
the receiver is down for the middle 40 s (10 s to 50 s: it stops listening,
half-closes its connections and reads them to their end, as a syslog server
stopping cleanly does). Then the bench waits for the relay to deliver what it
kept. Printed per relay: lines sent, received (distinct), lost, duplicates,
peak resident memory (VmHWM), the most disk its queue used, and the seconds
from the receiver's return to the last line.

The agent runs with its defaults (memory buffer 8 MiB, then its disk spool
under STATE_DIR; pauses growing from 2 s). rsyslog runs imtcp -> omfwd with a
disk-assisted action queue (LinkedList, 50,000 messages in memory, then
queue files; 256 MiB on disk like the agent's default spool cap), retried for
ever every 2 s.

    bash bench/install-peers.sh
    python bench/outage.py [--rate 20000] [--seconds 60] [--down 10:50] [--only logtrain,rsyslog]

Public tools only: Python, Debian's rsyslog.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from faultpeers import CountingSink  # noqa: E402
from run import RSYSLOGD, AgentRelay, Relay, status_mib  # noqa: E402

SENDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[4])
    from faultpeers import RateSender
    s = RateSender(int(sys.argv[1]), int(sys.argv[2]), host="outagehost")
    s.start(); time.sleep(float(sys.argv[3])); print(s.finish(), flush=True)
""")


class AgentDefaults(AgentRelay):
    name = "logtrain"


class RsyslogDA(Relay):
    name = "rsyslog-DA"

    def start_relay(self, file: Path | None = None, idle: bool = False) -> None:
        d = self.work
        (d / "queue").mkdir()
        out = (f'action(type="omfwd" target="127.0.0.1" port="{self.sink_port}" protocol="tcp" '
               'template="RSYSLOG_SyslogProtocol23Format" '
               f'queue.type="LinkedList" queue.filename="fwdq" queue.spoolDirectory="{d}/queue" '
               'queue.size="50000" queue.maxDiskSpace="256m" queue.saveOnShutdown="on" '
               'queue.dequeueBatchSize="1024" '
               'action.resumeRetryCount="-1" action.resumeInterval="2")')
        conf = [f'global(workDirectory="{d}" maxMessageSize="64k")',
                'module(load="imtcp")',
                f'input(type="imtcp" port="{self.tcp_port}" ruleset="fwd")',
                'ruleset(name="fwd") {', "  " + out, "}"]
        (d / "rsyslog.conf").write_text("\n".join(conf) + "\n")
        self.proc = subprocess.Popen([RSYSLOGD, "-n", "-f", str(d / "rsyslog.conf"),
                                      "-i", str(d / "pid")])
        self.wait_listening()


def disk_bytes(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, f))
            except OSError:
                pass
    return total


def run_one(cls: type[Relay], rate: int, seconds: float, down: tuple[float, float],
            work: Path) -> dict:
    sink = CountingSink()
    relay = cls(work, sink.port)
    relay.start_relay()
    queue_dir = relay.work
    sender = subprocess.Popen([sys.executable, "-c", SENDER, str(relay.tcp_port), str(rate),
                               str(seconds), str(ROOT / "tests")], stdout=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    peak_disk = 0
    stopped = back = None
    while sender.poll() is None:
        now = time.monotonic() - t0
        if stopped is None and now >= down[0]:
            sink.stop()
            stopped = time.monotonic()
        if back is None and now >= down[1]:
            sink.start()
            back = time.monotonic()
        peak_disk = max(peak_disk, disk_bytes(queue_dir))
        time.sleep(0.5)
    sent = int(sender.stdout.read().strip() or 0)
    # wait for the relay to deliver what it kept: until all arrived, or no
    # progress for 30 s (at most 300 s)
    last, last_change = -1, time.monotonic()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        got = sink.count()[0]
        if got >= sent:
            break
        if got != last:
            last, last_change = got, time.monotonic()
        elif time.monotonic() - last_change > 30:
            break
        peak_disk = max(peak_disk, disk_bytes(queue_dir))
        time.sleep(0.5)
    done = time.monotonic()
    time.sleep(1)  # anything later would be a duplicate
    got, dups = sink.count()
    peak = status_mib(relay.proc.pid, "VmHWM")
    relay.stop()
    sink.stop()
    return {"relay": cls.name, "sent": sent, "received": got, "lost": sent - got,
            "duplicates": dups, "peak_rss_mib": peak, "peak_disk_mib": peak_disk / (1 << 20),
            "catch_up_s": done - back if back else 0.0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=int, default=20000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--down", default="10:50", help="receiver down from:to, seconds")
    ap.add_argument("--only", default="logtrain,rsyslog-DA")
    args = ap.parse_args()
    down = tuple(float(x) for x in args.down.split(":"))
    relays = [c for c in (AgentDefaults, RsyslogDA) if c.name in args.only.split(",")]
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"logtrain-outage-{os.getpid()}"
    work.mkdir(parents=True)
    print(f"outage: {args.rate} lines/s for {args.seconds:g} s into TCP, receiver down "
          f"{down[0]:g}-{down[1]:g} s")
    rows = [run_one(c, args.rate, args.seconds, down, work) for c in relays]
    head = (f"{'relay':<12} {'sent':>9} {'received':>9} {'lost':>7} {'dups':>7} "
            f"{'peak RSS MiB':>12} {'peak disk MiB':>13} {'catch-up s':>10}")
    print(head)
    for r in rows:
        print(f"{r['relay']:<12} {r['sent']:>9} {r['received']:>9} {r['lost']:>7} "
              f"{r['duplicates']:>7} {r['peak_rss_mib']:>12.1f} {r['peak_disk_mib']:>13.1f} "
              f"{r['catch_up_s']:>10.1f}")
    if len(rows) == 2 and rows[1]["peak_rss_mib"]:
        a, b = rows
        print(f"logtrain / rsyslog-DA: peak RSS x{a['peak_rss_mib'] / b['peak_rss_mib']:.2f}, "
              f"lost {a['lost']} vs {b['lost']}, duplicates {a['duplicates']} vs {b['duplicates']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
