"""Fault injection against the real agent (``pytest -m faults``; part of
``make test``): a receiver down for 30 s under 5,000 lines/s, a receiver that
never reads, one that resets its connections, STATE_DIR full, the agent
SIGKILLed every few seconds while container logs are written, Postgres
restarted while lines flow to a persistent:// drain.

Every test prints one line of the figures it checked (fault, lines sent,
received, duplicates, peak resident memory); ``-s`` shows them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from faultpeers import LINE, SEQ, CountingSink, RateSender
from peers import Agent, free_port, wait_for

pytestmark = pytest.mark.faults

HERE = Path(__file__).resolve().parent


def report(fault: str, sent: int, received: int, dups: int, peak: float, **more: object) -> None:
    extra = " ".join(f"{k}={v}" for k, v in more.items())
    print(f"\nFAULT {fault}: sent={sent} received={received} duplicates={dups} "
          f"peak_rss_mib={peak:.1f} {extra}")


def tcp_agent(tmp: Path, url: str, **env: str) -> Agent:
    port = free_port()
    a = Agent(tmp / "agent", {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(port), **env},
              f"*  {url}\n")
    a.tcp = port
    return a.start()


def poll(agent: Agent, name: str, seconds: float, **labels: str) -> float:
    """The highest value of a metric seen while polling for ``seconds``."""
    best = 0.0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            best = max(best, agent.metric(name, **labels))
        except OSError:
            pass
        time.sleep(0.5)
    return best


def test_receiver_down_30s_at_5000_lines_a_second_loses_nothing(tmp_path):
    """5,000 lines/s for 38 s; the receiver is down from 3 s to 33 s. Every
    line arrives, the outage spools (memory stays small), the drain pauses
    and recovers with one log line per change of state."""
    sink = CountingSink()
    agent = tcp_agent(tmp_path, f"syslog+tcp://127.0.0.1:{sink.port}",
                      DRAIN_BACKOFF_MAX="1", DRAIN_PAUSE_INTERVAL="1", DRAIN_PAUSE_MAX="4")
    sender = RateSender(agent.tcp, 5000)
    try:
        sender.start()
        time.sleep(3)
        sink.stop()
        spooled = poll(agent, "logtrain_drain_spool_bytes", 30)
        state = agent.metric("logtrain_drain_state")
        sink.start()
        time.sleep(5)
        sent = sender.finish()
        wait_for(lambda: sink.count()[0] >= sent, 60, 0.5, what=f"{sent} lines at the sink")
        time.sleep(1)
        got, dups = sink.count()
        peak = agent.peak_rss_mib()
        report("receiver down 30 s at 5000 lines/s", sent, got, dups, peak,
               spool_peak_bytes=int(spooled), stalled_s=round(sender.stalled, 1))
        assert sink.missing(sent) == []
        assert spooled > 10 << 20  # the outage went to disk, not memory
        assert state == 2  # paused, in metrics
        wait_for(lambda: agent.metric("logtrain_drain_spool_bytes") == 0, 10, what="spool emptied")
        assert agent.metric("logtrain_drain_dropped_total") == 0
        assert peak < 48
        log = agent.log()
        assert log.count("drain unreachable") == 1 and log.count("drain paused") == 1
        assert log.count("drain recovered") == 1
        assert sender.stalled < 2  # the input never pushed back on a failing drain
    finally:
        sender.halt.set()
        assert agent.stop() == 0
        sink.stop()


def test_receiver_that_never_reads_spools_within_the_memory_budget(tmp_path):
    """A receiver accepts and never reads: its socket buffers fill, writes
    time out, the drain spools. 5,000 lines/s for 15 s; then the receiver
    starts reading (what sat in its socket buffers included) and gets every
    line."""
    sink = CountingSink(never_read=True)
    agent = tcp_agent(tmp_path, f"syslog+tcp://127.0.0.1:{sink.port}", DRAIN_WRITE_TIMEOUT="1",
                      DRAIN_BACKOFF_MAX="1", DRAIN_PAUSE_INTERVAL="1", DRAIN_PAUSE_MAX="2")
    sender = RateSender(agent.tcp, 5000)
    try:
        sender.start()
        rss = []
        for _ in range(15):
            time.sleep(1)
            rss.append(agent.rss_mib())
        spooled = agent.metric("logtrain_drain_spool_bytes")
        sent = sender.finish()
        sink.resume()
        wait_for(lambda: sink.count()[0] >= sent, 60, 0.5, what=f"{sent} lines at the sink")
        got, dups = sink.count()
        peak = agent.peak_rss_mib()
        report("receiver never reads", sent, got, dups, peak, spool_bytes=int(spooled),
               rss_first_last=f"{rss[2]:.1f}/{rss[-1]:.1f}")
        assert spooled > 5 << 20
        assert sink.missing(sent) == []
        assert peak < 48
        assert rss[-1] - rss[2] < 8  # flat while the spool grew by megabytes
    finally:
        sender.halt.set()
        assert agent.stop() == 0
        sink.stop()


def test_receiver_resetting_connections_at_random(tmp_path):
    """Each connection is reset (RST) after 0.3 s on average; 3,000 lines/s
    for 10 s. The agent reconnects every time; plain TCP syslog has no
    acknowledgements, so only lines in flight at a reset may be lost."""
    sink = CountingSink(reset_every=0.3)
    agent = tcp_agent(tmp_path, f"syslog+tcp://127.0.0.1:{sink.port}", DRAIN_BACKOFF_MAX="0.5")
    sender = RateSender(agent.tcp, 3000)
    try:
        sender.start()
        time.sleep(10)
        sent = sender.finish()
        try:
            wait_for(lambda: sink.count()[0] >= sent, 20, 0.5)
        except AssertionError:
            pass
        got, dups = sink.count()
        peak = agent.peak_rss_mib()
        report("receiver resets connections", sent, got, dups, peak, resets=sink.resets,
               connections=sink.connections)
        assert sink.connections >= sink.resets >= 10  # reconnected after every reset
        assert got >= sent * 0.99, f"lost {sent - got} of {sent}"
        assert agent.healthy()
    finally:
        sender.halt.set()
        assert agent.stop() == 0
        sink.stop()


def test_state_dir_full_is_an_error_not_a_crash_and_recovers(tmp_path):
    """STATE_DIR on a 6 MiB tmpfs holding a 4 MiB ballast file; the receiver
    is down and 3,000 lines/s come in for 8 s (~3.6 MB): the spool fills the
    disk, the agent says so and keeps running; the ballast is removed (space
    returns), the receiver comes back, and lines flow and spool again."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    state = tmp_path / "state"
    state.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(state)],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    sink = CountingSink()
    sink.stop()
    sender = None
    agent = None
    try:
        ballast = state / "ballast"
        ballast.write_bytes(b"\0" * (4 << 20))
        agent = tcp_agent(tmp_path, f"syslog+tcp://127.0.0.1:{sink.port}", STATE_DIR=str(state),
                          DRAIN_BACKOFF_MAX="1", DRAIN_PAUSE_INTERVAL="1", DRAIN_PAUSE_MAX="2",
                          DRAIN_BUFFER_SIZE="2M")
        sender = RateSender(agent.tcp, 3000)
        sender.start()
        wait_for(lambda: "No space left on device" in agent.log(), 20, 0.5,
                 what="the spool's full-disk error")
        time.sleep(2)
        assert agent.healthy()
        ballast.unlink()  # space returns
        time.sleep(2)
        sink.start()
        time.sleep(3)
        sent = sender.finish()
        dropped = agent.metric("logtrain_drain_dropped_total")
        wait_for(lambda: sink.count()[0] + dropped >= sent, 60, 0.5, what="every line accounted")
        got, dups = sink.count()
        peak = agent.peak_rss_mib()
        log = agent.log()
        report("STATE_DIR full", sent, got, dups, peak, dropped_counted=int(dropped),
               spool_errors=int(agent.metric("logtrain_spool_errors_total")))
        assert log.count("spool: cannot write") <= 3  # one line per change, not per batch
        assert "spool writable again" in log
        assert got + dropped >= sent  # nothing lost silently
        assert agent.proc.poll() is None
    finally:
        if sender is not None:
            sender.halt.set()
        if agent is not None:
            agent.stop()
        sink.stop()
        subprocess.run(["umount", "-l", str(state)], check=False)


def test_sigkill_every_few_seconds_while_containers_write(tmp_path):
    """Three container logs written at 1,500 lines/s each for 16 s, routed to
    two receivers, the second down until the end (its lines spool, the first
    keeps getting the files' lines: a dead drain stalls nobody). The agent is
    SIGKILLed every 3 s and restarted; at the end both receivers have every
    line."""
    from test_kubernetes_files import Pod

    root = tmp_path / "logs"
    pods = [Pod(root, f"web-{i}-7d9f8c6b5-abc1{i}") for i in range(3)]
    live = CountingSink(pattern=LINE)
    dead = CountingSink(pattern=LINE)
    dead.stop()
    routes = (f"*  syslog+tcp://127.0.0.1:{live.port}\n"
              f"*  syslog+tcp://127.0.0.1:{dead.port}\n")
    a = Agent(tmp_path / "agent", {"KUBERNETES": "true",
                                   "KUBERNETES_LOG_PATH": str(root / "containers"),
                                   "FILES_START_AT": "beginning", "DRAIN_BACKOFF_MAX": "1",
                                   "DRAIN_PAUSE_INTERVAL": "1", "DRAIN_PAUSE_MAX": "2"}, routes)
    per, rate = 24_000, 1500
    kills = 0
    peak = 0.0
    try:
        a.start()
        for i, p in enumerate(pods):
            p.write(per, rate, start=i * 1_000_000)
        end = time.monotonic() + per / rate
        while time.monotonic() < end:
            time.sleep(3)
            peak = max(peak, a.peak_rss_mib())
            a.stop(signal.SIGKILL)
            kills += 1
            a.start()
        for p in pods:
            p.wait()
        n = per * len(pods)
        wanted = [i * 1_000_000 + j for i in range(3) for j in range(per)]
        wait_for(lambda: live.count()[0] >= n, 60, 0.5, what="every line at the live receiver")
        at_live_before = live.count()[0]
        dead.start()
        wait_for(lambda: dead.count()[0] >= n, 90, 0.5, what="every line at the receiver that was down")
        time.sleep(1)
        peak = max(peak, a.peak_rss_mib())
        got, dups = live.count()
        got2, dups2 = dead.count()
        report("SIGKILL every 3 s, 3 container logs", n, got, dups, peak, kills=kills,
               down_receiver_received=got2, down_receiver_duplicates=dups2)
        assert kills >= 4
        assert at_live_before >= n
        missing = [i for i in wanted if i not in live.seen]
        missing2 = [i for i in wanted if i not in dead.seen]
        assert missing == [] and missing2 == []
    finally:
        for p in pods:
            if p.writer is not None and p.writer.poll() is None:
                p.writer.kill()
        a.stop()
        live.stop()
        dead.stop()


def test_postgres_restarted_while_lines_flow_to_a_persistent_drain(pg, tmp_path):
    """500 lines/s for 12 s into persistent://flow; Postgres is stopped at 3 s
    and started again 4 s later. Every line is in the store, in order."""
    if pg.external:
        pytest.skip("restarting needs the tests' own server")
    db = pg.new_database("faults_flow")
    port = free_port()
    a = Agent(tmp_path / "agent", {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(port),
                                   "PERSISTENT": "true", "PERSISTENT_DATABASE_URL": pg.url(db),
                                   "DRAIN_BACKOFF_MAX": "0.5", "DRAIN_PAUSE_INTERVAL": "1",
                                   "DRAIN_PAUSE_MAX": "2"},
              "faulthost persistent://flow\n").start()
    sender = RateSender(port, 500)
    try:
        sender.start()
        time.sleep(3)
        pg.stop()
        time.sleep(4)
        pg.start_again()
        pg.wait_ready()
        time.sleep(5)
        sent = sender.finish()

        def stored() -> list[int]:
            status, _, body = a.request("GET", "/logs/flow")
            return [int(x) for x in SEQ.findall(body)] if status == 200 else []

        seqs = wait_for(lambda: (lambda s: s if len(set(s)) >= sent else None)(stored()), 60, 1,
                        what=f"{sent} lines in the persistent store")
        dups = len(seqs) - len(set(seqs))
        report("Postgres restarted under persistent://", sent, len(set(seqs)), dups,
               a.peak_rss_mib(), errors=int(a.metric("logtrain_drain_errors_total")))
        assert set(seqs) == set(range(sent))
        seen: set[int] = set()
        firsts = [s for s in seqs if not (s in seen or seen.add(s))]
        assert firsts == sorted(firsts)  # in order
        assert a.metric("logtrain_drain_errors_total") >= 1
    finally:
        sender.halt.set()
        assert a.stop() == 0
