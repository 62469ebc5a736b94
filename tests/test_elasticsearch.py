"""Elasticsearch drains against a local server speaking the bulk API
(tests/esbulk.py), the agent running as a process: what arrives, where, with
which credentials, after failures, over TLS with an OpenSSL-made CA."""

from __future__ import annotations

import base64
import json
import re
import socket
import ssl
import time

import pytest
from esbulk import BulkServer
from peers import Agent, b64, free_port, make_certs, wait_for

HEAD = b"<14>1 2026-11-24T01:02:03.5+02:00 web-1 api - - - "
RFC3339_MICRO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


@pytest.fixture
def run_agent(tmp_path):
    started = []

    def start(routes: str, **env) -> Agent:
        port = free_port()
        a = Agent(tmp_path / f"agent{len(started)}",
                  {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(port), **env}, routes).start()
        a.tcp = port
        started.append(a)
        return a

    yield start
    for a in started:
        a.stop()


@pytest.fixture
def servers():
    made = []

    def make(**kw) -> BulkServer:
        s = BulkServer(**kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def send(port: int, messages: list[str], head: bytes = HEAD) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"".join(head + m.encode() + b"\n" for m in messages))


def actions(request: dict) -> list[dict]:
    return [json.loads(x) for x in request["body"].decode().splitlines()[0::2]]


def test_documents_index_and_basic_auth(run_agent, servers):
    named = servers(auth="Basic " + base64.b64encode(b"elastic:p%40ss s3cret").decode())
    by_host = servers()
    a = run_agent(f"*  es+http://elastic:p%2540ss%20s3cret@127.0.0.1:{named.port}/?index=app-logs\n"
                  f"*  elasticsearch+http://127.0.0.1:{by_host.port}/base/\n", LOG_LEVEL="debug")
    send(a.tcp, [f'doc-{i} "q" \\ é' for i in range(50)])
    send(a.tcp, ["from another host"], head=b"<11>1 2026-11-24T00:00:00Z DB-Primary pg - - - ")
    wait_for(lambda: len(named.docs()) == 51 and len(by_host.docs()) == 51, 10, what="51 + 51 docs")
    assert {i for i, _, _ in named.docs()} == {"app-logs"}
    # the packet's hostname in lower case (index names must be) when index= is not given
    assert {i for i, _, _ in by_host.docs()} == {"web-1", "db-primary"}
    docs = {d["message"]: d for _, _, d in named.docs()}
    assert sorted(docs) == sorted([f'doc-{i} "q" \\ é' for i in range(50)] + ["from another host"])
    d = docs["doc-7 \"q\" \\ é"]
    assert list(d) == ["@timestamp", "hostname", "tag", "message", "severity", "facility"]
    # RFC3339 with microseconds, in UTC: 01:02:03.5+02:00 is 23:02:03.500000Z the day before
    assert d["@timestamp"] == "2026-11-23T23:02:03.500000Z"
    assert (d["hostname"], d["tag"], d["severity"], d["facility"]) == ("web-1", "api", 6, 1)
    assert docs["from another host"]["@timestamp"] == "2026-11-24T00:00:00.000000Z"
    assert (docs["from another host"]["severity"], docs["from another host"]["facility"]) == (3, 1)
    for r in named.requests:
        assert r["path"].startswith("/_bulk?filter_path=")
        assert r["headers"]["content-type"] == "application/x-ndjson"
        for act in actions(r):
            assert list(act) == ["create"] and set(act["create"]) == {"_index", "_id"}  # no _source
    assert all(r["path"].startswith("/base/_bulk?") for r in by_host.requests)
    # the password never reaches the log or the metrics
    text = a.log() + json.dumps(a.metrics())
    assert "s3cret" not in text and "p%2540ss" not in text and "p@ss" not in text
    assert "elastic:****@" in text


def test_every_document_once_after_half_the_batches_failed(run_agent, servers):
    """503, 429 and answers lost after storing, every other request, and in
    the 200 answers (errors:true) 429 and 503 items to send again and 400
    mapping errors to drop: every good document arrives once, in its index,
    with the bearer token on every request; the mapping errors are counted
    and logged once with a sample reason."""

    def item_status(doc: dict, attempt: int) -> int:
        if doc["message"].startswith("bad"):
            return 400
        n = int(doc["message"].split()[0].split("-")[1])
        if attempt == 1 and n % 3 == 0:
            return 429
        if attempt == 1 and n % 3 == 1:
            return 503
        return 201

    plan = [503, "ok", 429, "ok", "store+503", "ok"] * 20
    srv = servers(plan=plan, auth="Bearer tok-123", item_status=item_status)
    a = run_agent(f"web-*  es+http://:tok-123@127.0.0.1:{srv.port}?auth=bearer&index=logs"
                  "&batch_size=64K\n", DRAIN_BACKOFF_MAX="0.05")
    pad = " " + "p" * 200
    good = [f"good-{i}{pad}" for i in range(2000)]
    bad = [f"bad-{i}" for i in range(20)]
    for k in range(20):
        send(a.tcp, good[k * 100:(k + 1) * 100] + bad[k:k + 1])
    wait_for(lambda: len(srv.docs()) == 2000 and a.metric(
        "logtrain_drain_dropped_total", reason="rejected") == 20, 30, what="2000 docs, 20 dropped")
    time.sleep(0.3)
    assert srv.messages() == sorted(good)  # each once: the same _id on every attempt
    assert {i for i, _, _ in srv.docs()} == {"logs"}
    failed = [r for r in srv.requests if r["plan"] != "ok"]
    assert len(srv.requests) >= 12 and len(failed) >= len(srv.requests) // 3
    assert srv.conflicts > 0  # documents stored before a lost answer came back as 409
    assert {r["headers"]["authorization"] for r in srv.requests} == {"Bearer tok-123"}
    assert a.metric("logtrain_drain_sent_total") == 2000
    assert a.metric("logtrain_drain_errors_total") >= 5
    logged = [x for x in a.log().splitlines() if "drain endpoint rejected data" in x]
    assert len(logged) == 1 and "mapper_parsing_exception" in logged[0]  # a sample reason
    assert "tok-123" not in a.log()


def test_connection_errors_are_retried_until_the_endpoint_listens(run_agent, servers):
    port = free_port()
    a = run_agent(f"*  elasticsearch+http://127.0.0.1:{port}\n", DRAIN_BACKOFF_MAX="0.2")
    send(a.tcp, [f"early-{i}" for i in range(30)])
    wait_for(lambda: a.metric("logtrain_drain_errors_total") >= 2, 10, what="connection errors")
    assert "drain unreachable, buffering" in a.log()
    srv = servers(port=port)
    wait_for(lambda: len(srv.docs()) == 30, 10, what="30 docs once it listens")
    assert srv.messages() == sorted(f"early-{i}" for i in range(30))
    assert a.metric("logtrain_drain_dropped_total") == 0


def test_daily_indices_and_data_streams(run_agent, servers):
    daily, stream, named_stream = servers(), servers(), servers()
    a = run_agent(f"*  es+http://127.0.0.1:{daily.port}?index=app&daily=true\n"
                  f"*  es+http://127.0.0.1:{stream.port}?data_stream=true\n"
                  f"*  es+http://127.0.0.1:{named_stream.port}?data_stream=true&index=logs-app-prod\n")
    send(a.tcp, ["late"], head=b"<14>1 2026-11-24T23:30:00.25-01:00 web-1 api - - - ")
    send(a.tcp, ["early"], head=b"<14>1 2026-11-24T00:10:00Z web-1 api - - - ")
    wait_for(lambda: all(len(s.docs()) == 2 for s in (daily, stream, named_stream)), 10)
    assert sorted((i, d["message"]) for i, _, d in daily.docs()) == [
        ("app-2026.11.24", "early"), ("app-2026.11.25", "late")]  # the UTC day
    assert {i for i, _, _ in stream.docs()} == {"logs-web-1-default"}
    assert {i for i, _, _ in named_stream.docs()} == {"logs-app-prod"}
    assert all(RFC3339_MICRO.fullmatch(d["@timestamp"]) for _, _, d in stream.docs())


def test_tls_self_signed_ca_verified_by_default(run_agent, servers, tmp_path):
    certs = make_certs(tmp_path / "certs")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(certs["server.pem"]), str(certs["server.key"]))
    with_ca, without, lax = servers(tls=ctx), servers(tls=ctx), servers(tls=ctx)
    ca = b64(certs["ca.pem"])
    a = run_agent(f"*  es+https://localhost:{with_ca.port}?ca={ca}\n"
                  f"*  es://localhost:{without.port}\n"
                  f"*  elasticsearch+https://localhost:{lax.port}?insecure=true\n",
                  DRAIN_BACKOFF_MAX="0.2")
    send(a.tcp, [f"tls-{i}" for i in range(20)])
    wait_for(lambda: len(with_ca.docs()) == 20 and len(lax.docs()) == 20, 10, what="TLS docs")
    wait_for(lambda: a.metric("logtrain_drain_errors_total",
                              drain=f"es://localhost:{without.port}") >= 2, 10)
    assert without.docs() == [] and "CERTIFICATE_VERIFY_FAILED" in a.log()
    assert with_ca.messages() == sorted(f"tls-{i}" for i in range(20))


def test_apikey_gzip_and_slow_answers(run_agent, servers):
    key = "Vk9IWGZ:ui2lp2axTNmsyakw9tvNnw"
    srv = servers(auth="ApiKey " + base64.b64encode(key.encode()).decode(),
                  plan=[("slow", 1.5), ("slow", 0.3)])
    a = run_agent(f"*  es+http://{key}@127.0.0.1:{srv.port}/?auth=apikey&gzip=true\n",
                  DRAIN_WRITE_TIMEOUT="1", DRAIN_BACKOFF_MAX="0.1")
    send(a.tcp, [f"slow-{i}" for i in range(100)])
    # the first answer takes longer than DRAIN_WRITE_TIMEOUT: the batch is sent
    # again, and what the server had already stored comes back as 409
    wait_for(lambda: srv.conflicts == 100 and a.metric("logtrain_drain_sent_total") == 100, 15)
    assert srv.messages() == sorted(f"slow-{i}" for i in range(100))
    assert all(r["headers"]["content-encoding"] == "gzip" for r in srv.requests)
    assert len(srv.requests) == 2 and a.metric("logtrain_drain_errors_total") == 1


def test_batches_by_size_and_by_time(run_agent, servers):
    srv = servers()
    a = run_agent(f"*  es+http://127.0.0.1:{srv.port}?batch_size=64K\n")
    send(a.tcp, ["small"])
    t0 = time.monotonic()
    wait_for(lambda: srv.docs(), 5, what="the first document")
    assert time.monotonic() - t0 < 2.5  # flushed within about a second
    big = [f"big-{i:05d} " + "x" * 300 for i in range(3000)]  # ~1.3 MB of documents
    send(a.tcp, big)
    wait_for(lambda: len(srv.docs()) == 3001, 15, what="3001 docs")
    sizes = [len(r["body"]) for r in srv.requests[1:]]
    assert len(sizes) >= 10 and max(sizes) < 200 << 10, sizes  # about 64 KiB each
    assert srv.messages() == sorted(big + ["small"])


@pytest.mark.parametrize("url, error", [
    ("es+http://h?auth=token", "auth= must be basic, bearer or apikey"),
    ("es+http://h?index=Logs", "is not a valid Elasticsearch index name"),
    ("es+http://h?daily=true&data_stream=true", "daily=true does not apply to data_stream"),
    ("es+http://h?batch_size=10", "batch_size='10': expected 64K to 100M bytes"),
    ("es+http://h?auth=bearer", "auth=bearer needs the token"),
    ("es+https://h?ca=bm90IGEgY2VydA==", "ca= is not a base64-encoded PEM certificate"),
])
def test_bad_urls_are_refused_with_the_reason(url, error):
    from logtrain.config import load
    from logtrain.log import Log, RateLimit
    from logtrain.metrics import Metrics
    from logtrain.outputs import create_output
    from logtrain.runtime import Runtime

    rt = Runtime(load(env={"SYSLOG_TCP": "true", "ROUTES_FILE": "/dev/null"}), Log("info"),
                 Metrics(), RateLimit(60.0))
    with pytest.raises(ValueError) as e:
        create_output(url, rt)
    assert error in str(e.value)
