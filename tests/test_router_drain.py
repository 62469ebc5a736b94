"""Router and drain behaviour, from scenarios run in a gevent-patched child
process against real TCP receivers (see drain_scenarios.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(name: str) -> dict:
    out = subprocess.run([sys.executable, str(HERE / "drain_scenarios.py"), name],
                         capture_output=True, text=True, timeout=120, cwd=HERE.parent)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_routing_table():
    r = run("routing")
    assert r["exact"] == ["a", "e"]  # Web-1 matches web-1: hostnames are case-insensitive
    assert sorted(r["glob"]) == ["a", "b", "e"]  # web-* matches web-1 and WEB-2
    assert r["both"] == ["c", "f"]  # kept while the second datasource still has the route
    assert r["dead"] == 2  # "nobody", then "api.prod" once its last route was gone
    assert len(r["dead_logs"]) == 1 and "hostname=nobody" in r["dead_logs"][0]  # said once a minute
    assert r["opened"] == ["both.log", "exact.log", "glob.log"]  # drains only for used routes
    assert r["still"] is True and r["closed"] is True
    assert "unknown drain scheme 'kafka'" in r["errors"][0]
    assert r["errors"][1] == "no host in the URL"
    assert "Port out of range" in r["errors"][2]
    assert r["errors"][3] == "auth= must be basic, bearer or apikey"
    assert "no scheme" in r["errors"][4]


def test_ack_fires_once_when_every_drain_delivered():
    r = run("ack")
    assert r["immediate"] == []  # not before the drains wrote the batch
    assert r["calls"] == [[True, 10, 10]]  # once, with both drains' deliveries counted
    assert r["calls2"] == [False]  # the batch a full drain refused is reported not ok
    assert r["calls3"] == [True]  # nothing to deliver: at once
    assert r["received"] == [11, 10]


def test_buffer_bound_drops_and_counts():
    r = run("buffer_bound")
    assert r["dropped"] == 20  # 40 batches of ~1 KB, 20 KB of buffer
    assert r["delivered"] == 20 and r["sent"] == 20


def test_outage_logged_once_paused_and_recovered():
    r = run("failure_logging")
    assert r["delivered"] == 300
    assert (r["unreachable"], r["paused_logs"], r["recovered"]) == (1, 1, 1)
    assert r["log_lines"] <= 5  # not one per packet or per attempt
    assert r["errors"] >= 5
    assert r["paused_gauge"] and r["paused_gauge"][0].endswith(" 1")
    assert "user:****@" in r["paused_gauge"][0]
    assert r["password_logged"] is False


def test_pool_grows_under_pressure_and_shrinks_when_idle():
    r = run("pool")
    assert r["max_open"] == 3 and r["peak_writers"] == 3  # up to DRAIN_MAX_CONNECTIONS
    assert r["delivered"] == r["routed"] and r["dropped"] == 0
    assert r["writers_after"] == 1  # one writer stays, ready for the next line
    assert r["connections_after"] == 0 and r["open_after"] == 0  # idle connections closed


def test_rejected_packets_are_dropped_once_and_acked_false():
    r = run("rejected")
    # every packet reached the endpoint once (4xx is not retried)
    assert r["seen"] == ["bad-1", "bad-2", "good-1", "good-2", "good-3"]
    # counted once each: 3 sent, 2 dropped as rejected, nothing twice
    assert r["sent"] == 3 and r["dropped"] == 2 and r["dropped_rejected"] == 2
    # a batch that lost a packet is acknowledged as failed
    assert r["acks"] == {"good": True, "mixed": False, "bad": False}
    assert r["rejected_logs"] == 1  # logged by the drain, once, not again by the output
