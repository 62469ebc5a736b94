"""The Kubernetes datasource (KUBERNETES_DATASOURCE=true), end to end: the real
agent (`python -m logtrain`) reads annotations from the local fake API server
(tests/kubeapi.py, the API's list/watch wire protocol), lines go into its
syslog TCP input, and real TCP receivers show where they arrive.

Annotations are untrusted routes: the receivers are on 127.0.0.1, which the
default DRAIN_DENY_NETWORKS refuses, so these agents allow 127.0.0.1/32.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kube_fake import LIVE, TOKEN, FakeAPI, drained, obj
from peers import ROOT, Agent, LineSink, free_port, wait_for

API = "api-Token-0c3b"


@pytest.fixture(autouse=True)
def _stop_servers():
    yield
    while LIVE:
        LIVE.pop().stop()


class Probe:
    """Sends numbered lines for a hostname into the agent's TCP input."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.n = 0

    def send(self, host: str) -> bytes:
        self.n += 1
        mark = f"mark-{self.n}-{host}"
        self.sock.sendall(f"<14>1 2026-11-25T00:00:00Z {host} app - - - {mark}\n".encode())
        return mark.encode()

    def arrives(self, host: str, sink: LineSink, timeout: float = 5.0) -> float:
        """Seconds until a line sent for ``host`` now (and every 10 ms) reaches ``sink``."""
        start = time.monotonic()
        marks: list[bytes] = []

        def seen() -> bool:
            marks.append(self.send(host))
            data = b"".join(sink.data)
            return any(m + b"\n" in data for m in marks)

        wait_for(seen, timeout, 0.01, what=f"a line for {host} at port {sink.port}")
        return time.monotonic() - start

    def not_arriving(self, host: str, sinks: list[LineSink], settle: float = 0.5) -> None:
        mark = self.send(host)
        time.sleep(settle)
        for s in sinks:
            assert mark + b"\n" not in b"".join(s.data), (host, s.port)


def url(sink: LineSink) -> str:
    return f"syslog+tcp://127.0.0.1:{sink.port}"


@pytest.fixture
def sinks():
    made = [LineSink() for _ in range(4)]
    yield made
    for s in made:
        s.close()


def start(tmp: Path, api: FakeAPI, wait: bool = True, **env: str) -> tuple[Agent, Probe | None]:
    tcp = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    base = {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(tcp), "KUBERNETES_DATASOURCE": "true",
            "KUBE_CONFIG": str(api.kubeconfig(tmp / "kubeconfig.json")),
            "DRAIN_ALLOW_NETWORKS": "127.0.0.1/32", "DATASOURCE_BACKOFF_MAX": "0.5",
            "API_TOKEN": API, "KUBERNETES_API_TIMEOUT": "2"}
    base.update(env)
    agent = Agent(tmp / "agent", base).start(wait)
    return agent, (Probe(tcp) if wait else None)


def routes_for(agent: Agent, host: str) -> list[dict]:
    status, _, body = agent.request("GET", f"/routes?hostname={host}",
                                    headers={"Authorization": f"Bearer {API}"})
    assert status == 200, body
    answer = json.loads(body)
    assert answer["hostname"] == host
    return answer["routes"]


def test_add_update_delete_through_the_agent(tmp_path: Path, sinks: list[LineSink]):
    a, b, c, d = sinks
    api = FakeAPI(tmp_path / "api", [
        # semicolons, as the original's code splits, with spaces and an invalid URL
        drained("Deployment", "web", f" {url(a)} ; {url(b)};bogus://nowhere "),
        # commas, as the original's README writes them; AKKERIS-free default naming
        drained("DaemonSet", "agent", f"{url(c)},{url(d)}", ns="infra"),
        drained("StatefulSet", "db", url(c), host="primary.prod"),
        drained("ReplicaSet", "web-5d4f8", url(d)),
        drained("Pod", "job-x1", url(a), ns="batch"),
        obj("Deployment", "plain"),
    ]).start()
    agent, probe = start(tmp_path, api)
    try:
        for host, sink in (("web.prod", a), ("web.prod", b), ("agent.infra", c),
                           ("agent.infra", d), ("primary.prod", c), ("web-5d4f8.prod", d),
                           ("job-x1.batch", a)):
            probe.arrives(host, sink)
        log = agent.log()
        assert "bogus://nowhere" in log and "Deployment prod/web" in log
        assert agent.metric("logtrain_route_errors_total", source="kubernetes") == 1
        web = routes_for(agent, "web.prod")
        assert sorted((r["endpoint"], r["datasource"].split()[0], r["object"]["kind"],
                       r["object"]["name"], "error" in r) for r in web) == sorted([
            (url(a), "kubernetes", "Deployment", "web", False),
            (url(b), "kubernetes", "Deployment", "web", False),
            ("bogus://nowhere", "kubernetes", "Deployment", "web", True)])
        out = subprocess.run([sys.executable, "-m", "logtrain", "routes", "web.prod"],
                             env=agent.env, cwd=str(ROOT), capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0, out.stderr
        assert f"web.prod  {url(a)}  kubernetes" in out.stdout
        assert "Deployment prod/web" in out.stdout and "REFUSED" in out.stdout

        # an update adds and removes exactly the difference: b is kept as it is
        connections_b = len(b.data)
        api.apply(drained("Deployment", "web", f"{url(b)};{url(c)}"))
        latency = probe.arrives("web.prod", c)
        print(f"annotation change to first line at the new drain: {latency * 1000:.0f} ms")
        assert latency < 1.0
        probe.not_arriving("web.prod", [a])
        probe.arrives("web.prod", b)
        assert len(b.data) == connections_b  # never closed and reopened
        assert "job-x1.batch" in json.dumps(routes_for(agent, "job-x1.batch"))

        # deleting removes its routes; a drain whose last route is gone is closed
        api.delete("Deployment", "web")
        wait_for(lambda: not routes_for(agent, "web.prod"), 5, what="web.prod's routes gone")
        probe.not_arriving("web.prod", [b, c])
        wait_for(lambda: f"127.0.0.1:{b.port}" in "".join(
            x for x in agent.log().splitlines() if "no route uses it" in x), 5,
            what="drain b closed")
        api.apply(obj("Pod", "job-x1", ns="batch"))  # the annotation removed
        wait_for(lambda: not routes_for(agent, "job-x1.batch"), 5, what="pod's route gone")
        probe.arrives("primary.prod", c)  # the others are untouched
    finally:
        agent.stop()
        api.stop()


def test_expiry_bookmarks_restart_and_a_slow_stream(tmp_path: Path, sinks: list[LineSink]):
    a, b, c, _ = sinks
    api = FakeAPI(tmp_path / "api", [drained("Deployment", "web", url(a)),
                                     drained("DaemonSet", "agent", url(b), ns="infra")]).start()
    api.call("/_config", {"bookmark_interval": 0.2})
    agent, probe = start(tmp_path, api, KUBERNETES_WATCH_TIMEOUT="1")
    try:
        probe.arrives("web.prod", a)
        # bookmarks carry the resourceVersion forward: after a compaction, a
        # watch renewed from a bookmark is not 410 and nothing is listed again
        lists = api.lists("deployments")
        for i in range(3):
            api.apply(obj("Pod", f"noise-{i}"))
        time.sleep(0.6)
        api.call("/_compact", {})
        time.sleep(2.5)  # two watch renewals at least
        assert api.lists("deployments") == lists
        assert api.call("/_counts").get("/apis/apps/v1/deployments?watch", 0) >= 3

        # 410 Gone in the stream: listed again, only differences applied
        connections = len(a.data)
        api.call("/_compact", {"expire": True})
        wait_for(lambda: api.lists("deployments") > lists, 5, what="a new list")
        wait_for(lambda: "kubernetes watch expired; listing again" in agent.log(), 5)
        probe.arrives("web.prod", a)
        assert len(a.data) == connections  # the unchanged route's drain was not touched

        # the API server goes away: routes in effect stay; changes made while
        # it was down are reconciled when it is back
        api.stop()
        probe.arrives("web.prod", a)
        api.set_objects([drained("DaemonSet", "agent", url(b), ns="infra"),
                         drained("StatefulSet", "db", url(c))])
        api.start()
        probe.arrives("db.prod", c, timeout=10)
        wait_for(lambda: not routes_for(agent, "web.prod"), 5, what="web.prod's route gone")
        probe.not_arriving("web.prod", [a])
        probe.arrives("agent.infra", b)
        assert "kubernetes watch failed; routes in effect are kept" in agent.log()

        # a slow stream (events in 7-byte pieces) starves neither the other
        # kinds nor /health, and its events still apply
        api.call("/_config", {"slow": {"deployments": 0.02}})
        time.sleep(1.2)  # the deployments watch renews onto the slow stream
        api.apply(drained("Deployment", "slow", url(a)))
        api.apply(drained("DaemonSet", "quick", url(b), ns="infra"))
        assert probe.arrives("quick.infra", b) < 1.0
        assert agent.health_ms() < 100
        probe.arrives("slow.prod", a, timeout=15)
    finally:
        agent.stop()
        api.stop()


def test_a_hostile_watch_stream_is_dropped_and_listed_again(tmp_path: Path,
                                                           sinks: list[LineSink]):
    a, b, _, _ = sinks
    api = FakeAPI(tmp_path / "api", [drained("Deployment", "web", url(a))]).start()
    agent, probe = start(tmp_path, api, KUBERNETES_WATCH_TIMEOUT="1")
    try:
        probe.arrives("web.prod", a)
        lists = api.lists("deployments")
        api.call("/_config", {"junk": {"deployments": "big"}})
        wait_for(lambda: "an event is longer than" in agent.log(), 10, what="the big event")
        api.call("/_config", {"junk": {"deployments": "bad"}})
        wait_for(lambda: "an event is not JSON" in agent.log(), 10, what="the bad event")
        wait_for(lambda: api.lists("deployments") >= lists + 2, 5, what="two lists again")
        api.apply(drained("Deployment", "web", url(b)))
        probe.arrives("web.prod", b)
        assert agent.peak_rss_mib() < 48
        assert agent.metric("logtrain_datasource_errors_total", source="kubernetes") >= 2
    finally:
        agent.stop()


def test_missing_permission_fails_start_naming_verb_and_resource(tmp_path: Path):
    api = FakeAPI(tmp_path / "api", []).start()
    api.call("/_config", {"deny": ["watch replicasets"]})
    agent, _ = start(tmp_path, api, wait=False)
    try:
        assert agent.proc.wait(30) == 2
        err = agent.log()
        assert "verb 'watch' on resource 'replicasets' (group apps)" in err
        assert "list' on resource 'replicasets" not in err
        assert TOKEN not in err
    finally:
        agent.stop()
        api.stop()


def test_untrusted_annotations_and_hostname_claims(tmp_path: Path, sinks: list[LineSink]):
    a, b, _, _ = sinks
    objects = [
        drained("Deployment", "local", f"file://{tmp_path}/stolen.log;stdout://", ns="team-a"),
        drained("Deployment", "meta", "syslog+tcp://169.254.169.254:514", ns="team-a"),
        drained("Deployment", "thief", url(a), ns="team-a", host="billing.team-b"),
        drained("Deployment", "own", url(b), ns="team-a", host="*.team-a"),
    ]
    api = FakeAPI(tmp_path / "api", objects).start()
    try:
        agent, probe = start(tmp_path, api)
        try:
            assert agent.metric("logtrain_routes_refused_total", source="kubernetes",
                                reason="local_drain") == 2
            assert not (tmp_path / "stolen.log").exists()
            # link-local is refused where the drain connects (the resolved address)
            probe.send("meta.team-a")
            wait_for(lambda: agent.metric("logtrain_routes_refused_total", source="kubernetes",
                                          reason="denied_network") >= 1, 5,
                     what="denied_network")
            # a claim outside the namespace is refused; a claim inside (a glob) works
            assert agent.metric("logtrain_routes_refused_total", source="kubernetes",
                                reason="hostname_claim") == 1
            probe.not_arriving("billing.team-b", [a])
            probe.arrives("web.team-a", b)
            claimed = routes_for(agent, "billing.team-b")
            assert [(r["object"]["name"], r["error"]) for r in claimed] == [
                ("thief", "hostname_claim")]
            assert "outside the object's namespace" in agent.log()
        finally:
            agent.stop()
        agent, probe = start(tmp_path / "any", api, KUBERNETES_HOSTNAME_POLICY="any")
        try:
            probe.arrives("billing.team-b", a)
            assert agent.metric("logtrain_routes_refused_total", reason="hostname_claim") == 0
        finally:
            agent.stop()
    finally:
        api.stop()


def test_api_unreachable_at_start_then_back(tmp_path: Path, sinks: list[LineSink]):
    a = sinks[0]
    api = FakeAPI(tmp_path / "api", [drained("Deployment", "web", url(a))])
    api.port = free_port()  # nobody listens there yet
    started = time.monotonic()
    agent, probe = start(tmp_path, api)
    try:
        assert time.monotonic() - started < 10  # starts without the API
        assert "cannot check permissions" in agent.log()
        probe.not_arriving("web.prod", [a])
        api.start()
        probe.arrives("web.prod", a, timeout=10)
        wait_for(lambda: agent.metric("logtrain_datasource_connected", source="kubernetes") == 1,
                 5, what="every kind watched")
        env = dict(agent.env, API_TOKEN="")
        out = subprocess.run([sys.executable, "-m", "logtrain", "routes", "web.prod"], env=env,
                             cwd=str(ROOT), capture_output=True, text=True, timeout=30)
        assert out.returncode == 2 and "set API_TOKEN" in out.stderr
    finally:
        agent.stop()
