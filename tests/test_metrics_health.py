"""/metrics, /healthz and /readyz of the real agent: every series the issue
lists, the original logtrain's histograms, no credential in any label, every
series the Grafana dashboard under deployments/ queries, and readiness that
waits for a datasource's routes."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

from faultpeers import CountingSink
from peers import Agent, free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
SERIES = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? '
                    r'[-+0-9.eE]+(Inf)?$|^[-+]?(NaN)$')


def scrape(agent: Agent) -> str:
    return agent.request("GET", "/metrics")[2].decode()


def test_metrics_of_inputs_drains_files_process_and_the_original_names(tmp_path):
    sink = CountingSink()
    port = free_port()
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("".join(f"file line {i}\n" for i in range(100)))
    url = f"syslog+tcp://user:hunter2@127.0.0.1:{sink.port}/?token=s3cr3t"
    agent = Agent(tmp_path / "agent", {
        "SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(port), "METRICS_ORIGINAL_INTERVAL": "0.3",
        "FILES": f"{logs}/*.log filehost app", "FILES_START_AT": "beginning",
    }, f"*  {url}\n").start()
    try:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"".join(b"<14>1 2026-11-25T00:00:00Z web app - - - seq=%d\n" % i
                               for i in range(500)))
            s.sendall(b"<999>garbage\n")
        wait_for(lambda: sink.count()[0] >= 500, 10, what="500 lines")
        time.sleep(1)
        text = scrape(agent)
        names = set()
        for line in text.splitlines():
            if line.startswith("#"):
                assert line.startswith(("# HELP ", "# TYPE ")), line
                continue
            assert SERIES.match(line), f"not Prometheus text: {line!r}"
            names.add(line.split("{")[0].split(" ")[0])
        assert "hunter2" not in text and "s3cr3t" not in text
        wanted = {
            "logtrain_input_frames_total", "logtrain_input_rejected_total",
            "logtrain_drain_sent_total", "logtrain_drain_buffer_bytes", "logtrain_drain_spool_bytes",
            "logtrain_drain_connections", "logtrain_drain_paused", "logtrain_drain_state",
            "logtrain_datasource_routes", "logtrain_file_lag_bytes",
            "process_resident_memory_bytes", "process_cpu_seconds_total",
            # the original's histograms
            "logtrain_connections_bucket", "logtrain_pressure_bucket", "logtrain_packets_sent_sum",
            "logtrain_errors_count", "logtrain_deadpackets_count",
        }
        assert wanted <= names, wanted - names
        m = agent.metrics()
        sent = agent.metric("logtrain_drain_sent_total")
        assert sent >= 600  # 500 from TCP, 100 from the file
        # the original's packets_sent histogram adds up to what was sent
        assert sum(v for k, v in m.items() if k.startswith("logtrain_packets_sent_sum")) == sent
        assert agent.metric("logtrain_input_rejected_total", input="syslog_tcp") >= 1
        assert agent.metric("logtrain_datasource_routes") == 1
        assert 5 << 20 < agent.metric("process_resident_memory_bytes") < 200 << 20
        # label values carry the masked URL
        assert any('syslog="syslog+tcp://user:' in k for k in m), [k for k in m if "syslog=" in k]
        # and every series the dashboard queries is served
        dash = json.loads((ROOT / "deployments/grafana/logtrain-dashboard.json").read_text())
        exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
        queried = {n for e in exprs for n in re.findall(r"\b((?:logtrain|process)_[a-z_]+)\b", e)}
        missing = queried - names
        # counters that stay absent until they first count
        missing -= {"logtrain_drain_dropped_total", "logtrain_drain_errors_total",
                    "logtrain_drain_retries_total", "logtrain_dead_packets_total"}
        assert not missing, missing
        print(f"\n/metrics: {len(names)} series names, dashboard queries {len(queried)}")
    finally:
        assert agent.stop() == 0
        sink.stop()


def test_healthz_and_readyz_wait_for_a_datasource(tmp_path):
    dead = free_port()  # no Postgres there: routes cannot load
    agent = Agent(tmp_path / "agent", {
        "SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(free_port()), "POSTGRES": "true",
        "DATABASE_URL": f"postgres://u:pw@127.0.0.1:{dead}/db?connect_timeout=1",
        "DATASOURCE_BACKOFF_MAX": "0.5"}).start()
    try:
        assert agent.request("GET", "/healthz")[0] == 200
        code, _, body = agent.request("GET", "/readyz")
        assert code == 503 and b"has not loaded its routes" in body and b"pw" not in body
    finally:
        assert agent.stop() == 0
    ok = Agent(tmp_path / "ok", {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(free_port())},
               "* stdout://\n").start()
    try:
        assert ok.request("GET", "/readyz") == (200, ok.request("GET", "/readyz")[1], b"ready\n")
        assert ok.request("GET", "/healthz")[0] == 200
    finally:
        assert ok.stop() == 0
