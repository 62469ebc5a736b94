"""Filters (drain URL parameters and [[filters]] per hostname glob) and
redaction (REDACT, REDACT_PATTERNS, [[redact_hosts]]), through the real agent
fed by util-linux logger, and the classes on their own."""

from __future__ import annotations

import socket
import time
from urllib.parse import quote

import pytest
from peers import Agent, free_port, logger, wait_for

from logtrain.packet import Packet
from logtrain.transform.filters import Filter, parse_severity
from logtrain.transform.redact import Redactor, luhn, parse_selection


def _agent(tmp_path, routes: str, toml: str = "", **env) -> Agent:
    port = free_port()
    extra = {}
    if toml:
        (tmp_path / "logtrain.toml").write_text(toml)
        extra["LOGTRAIN_CONFIG"] = str(tmp_path / "logtrain.toml")
    a = Agent(tmp_path / "agent", {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(port),
                                   **extra, **env}, routes).start()
    a.tcp = port
    return a


_SEV = {"emerg": 0, "alert": 1, "crit": 2, "err": 3, "warning": 4, "notice": 5, "info": 6,
        "debug": 7}


def _send(a: Agent, host: str, prio: str, msg: str, tag: str = "app") -> None:
    """util-linux logger when the hostname is this machine's (logger cannot set
    another), else the same RFC5424 frame over a TCP connection."""
    if host == socket.gethostname():
        logger("--rfc5424=notq", "-T", "-n", "127.0.0.1", "-P", str(a.tcp), "-p", prio, "-t", tag,
               msg)
        return
    pri = 8 + _SEV[prio.split(".")[1]]
    frame = f"<{pri}>1 2026-11-25T07:00:00.000Z {host} {tag} - - - {msg}\n".encode()
    with socket.create_connection(("127.0.0.1", a.tcp)) as s:
        s.sendall(frame)


def _msgs(path) -> list[str]:
    if not path.exists():
        return []
    return [line.split(" ", 7)[7] for line in path.read_text().splitlines()]


def test_drain_url_filters_severity_match_exclude_tag(tmp_path):
    warn, match, excl, tag = (tmp_path / f"{n}.log" for n in ("warn", "match", "excl", "tag"))
    routes = (f"*  file://{warn}?min_severity=warning\n"
              f"*  file://{match}?match={quote('order [0-9]+ (paid|failed)')}\n"
              f"*  file://{excl}?exclude={quote('^GET /health')}&max_severity=notice\n"
              f"*  file://{tag}?tag=web,job-*\n")
    a = _agent(tmp_path, routes)
    me = socket.gethostname()
    try:
        _send(a, me, "user.err", "order 17 failed", tag="web")
        _send(a, me, "user.info", "order 18 paid", tag="worker")
        _send(a, me, "user.notice", "GET /health 200", tag="job-3")
        _send(a, me, "user.debug", "GET /items 200", tag="web")
        _send(a, me, "user.warning", "disk at 91%", tag="cron")
        wait_for(lambda: len(_msgs(excl)) >= 2 and len(_msgs(warn)) >= 2 and
                 len(_msgs(match)) >= 2 and len(_msgs(tag)) >= 3, 10, what="filtered lines")
        time.sleep(0.3)
        assert _msgs(warn) == ["order 17 failed", "disk at 91%"]
        assert _msgs(match) == ["order 17 failed", "order 18 paid"]
        # max_severity=notice keeps notice, info, debug; exclude drops the health check
        assert _msgs(excl) == ["order 18 paid", "GET /items 200"]
        assert _msgs(tag) == ["order 17 failed", "GET /health 200", "GET /items 200"]
        m = a.metrics()
        dropped = {k: v for k, v in m.items() if k.startswith("logtrain_filtered_total")}
        by_reason: dict[str, float] = {}
        for k, v in dropped.items():
            reason = k.split('reason="')[1].split('"')[0]
            by_reason[reason] = by_reason.get(reason, 0) + v
        assert by_reason == {"min_severity": 3, "match": 3, "exclude": 1, "max_severity": 2,
                             "tag": 2}
    finally:
        a.stop()


def test_catastrophic_pattern_from_a_route_does_not_stall(tmp_path):
    out, other = tmp_path / "out.log", tmp_path / "other.log"
    a = _agent(tmp_path, f"*  file://{out}?match={quote('(a+)+$')}\n*  file://{other}\n")
    try:
        long = "a" * 60000 + "!"
        t0 = time.monotonic()
        for _ in range(20):
            _send(a, "h1", "user.info", long)
        _send(a, "h1", "user.info", "aaaa")
        wait_for(lambda: len(_msgs(other)) == 21, 10, what="21 lines on the other drain")
        assert time.monotonic() - t0 < 8
        assert a.health_ms() < 100
        wait_for(lambda: _msgs(out) == ["aaaa"], 5, what="the one matching line")
    finally:
        a.stop()


def test_unboundable_pattern_is_refused_with_the_reason(tmp_path):
    backref = quote("(a)\\1")
    a = Agent(tmp_path / "agent", {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(free_port())},
              f"*  file://{tmp_path}/x.log?exclude={backref}\n")
    a.start(wait=False)
    assert a.proc.wait(15) != 0
    assert "exclude" in a.log() and "backreferences" in a.log()


def test_toml_filters_and_redaction_per_hostname_glob(tmp_path):
    out = tmp_path / "out.log"
    toml = """
redact = "default"
redact_patterns = { ticket = "TCK-[0-9]{6}" }
[[filters]]
hosts = "*.prod"
min_severity = "warning"
[[redact_hosts]]
hosts = ["crm.*"]
redact = "email"
"""
    a = _agent(tmp_path, f"*  file://{out}\n", toml)
    try:
        _send(a, "api.prod", "user.info", "routine")  # dropped: *.prod keeps warning and worse
        _send(a, "api.prod", "user.err", "db at postgres://app:Sup3rS3cret@db:5432/x down")
        _send(a, "crm.dev", "user.info", "mail to jane.doe@example.org re TCK-123456")
        _send(a, "api.dev", "user.info", "mail to jane.doe@example.org card 4111 1111 1111 1111")
        _send(a, "api.dev", "user.info", "Authorization: Bearer abcDEF123456789xyz key AKIAIOSFODNN7EXAMPLE")
        wait_for(lambda: len(_msgs(out)) == 4, 10, what="4 lines")
        assert _msgs(out) == [
            "db at postgres://app:[REDACTED:url_password]@db:5432/x down",
            "mail to [REDACTED:email] re [REDACTED:ticket]",
            "mail to jane.doe@example.org card [REDACTED:card_number]",
            "Authorization: Bearer [REDACTED:bearer_token] key [REDACTED:aws_access_key]",
        ]
        assert "Sup3rS3cret" not in out.read_text()
        assert a.metric("logtrain_redactions_total", pattern="url_password") == 1
        assert a.metric("logtrain_redactions_total", pattern="card_number") == 1
        assert a.metric("logtrain_redactions_total", pattern="ticket") == 1
        assert a.metric("logtrain_redactions_total", pattern="email", hosts="crm.*") == 1
        assert a.metric("logtrain_filtered_total", hosts="*.prod", reason="min_severity") == 1
    finally:
        a.stop()


def test_bad_transform_configuration_is_refused(tmp_path):
    for toml, words in (('redact = "default,passport"\n', "unknown redaction pattern"),
                        ('[[filters]]\nhosts = "*"\nmin_severity = "loud"\n', "min_severity"),
                        ('[[filters]]\nmin_severity = "err"\n', "hosts"),
                        ('redact_patterns = { x = "(?<=a)b" }\n', "refused")):
        (tmp_path / "c.toml").write_text(toml)
        a = Agent(tmp_path / "agent", {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(free_port()),
                                       "LOGTRAIN_CONFIG": str(tmp_path / "c.toml")}, "* stdout://\n")
        a.start(wait=False)
        assert a.proc.wait(15) != 0
        assert words in a.log(), a.log()


# ---------------------------------------------------------------- the classes alone

def _p(sev: int, msg: str, tag: str = "t") -> Packet:
    return Packet(sev, 1, "h", tag, "2026-11-25T00:00:00Z", msg)


def test_severity_names_and_bounds():
    assert parse_severity("warning", "x") == parse_severity("4", "x") == parse_severity(4, "x") == 4
    assert parse_severity("Err", "x") == 3
    for bad in ("8", "loud", -1, True):
        with pytest.raises(ValueError):
            parse_severity(bad, "min_severity")
    with pytest.raises(ValueError, match="no line could pass"):
        Filter({"min_severity": "crit", "max_severity": "err"}, lambda r, n: None)


def test_filter_keeps_order_and_counts():
    counts: dict[str, int] = {}
    f = Filter({"min_severity": "notice", "exclude": "secret"},
               lambda r, n: counts.__setitem__(r, counts.get(r, 0) + n))
    pkts = [_p(s, f"line {s} {'secret' if s == 2 else ''}") for s in range(8)]
    assert [p.severity for p in f.apply(pkts)] == [0, 1, 3, 4, 5]
    assert counts == {"min_severity": 2, "exclude": 1}


def test_redaction_builtins_on_real_lines():
    counts: dict[str, int] = {}
    r = Redactor(parse_selection("default,email"), {},
                 lambda n, k: counts.__setitem__(n, counts.get(n, 0) + k))
    lines = [
        "2026-11-25 07:45:13 INFO  Connecting to amqp://guest:guest123@rabbit:5672/ vhost=/",
        'curl -H "Authorization: Bearer ya29.a0AfH6SMBx-long_token" https://api',
        '{"level":"info","apiKey":"sk_live_51Habc","msg":"charged"}',
        "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
        "card 5555-5555-5555-4444 order 1234-5678-9012-3456 ts 20261125074513",
        "ticket from bob@example.com",
    ]
    pkts = r.apply([_p(6, x) for x in lines])
    assert [p.message for p in pkts] == [
        "2026-11-25 07:45:13 INFO  Connecting to amqp://guest:[REDACTED:url_password]@rabbit:5672/ vhost=/",
        'curl -H "Authorization: Bearer [REDACTED:bearer_token]" https://api',
        '{"level":"info","apiKey":"[REDACTED:api_key]","msg":"charged"}',
        "export AWS_ACCESS_KEY_ID=[REDACTED:aws_access_key]",
        "card [REDACTED:card_number] order 1234-5678-9012-3456 ts 20261125074513",
        "ticket from [REDACTED:email]",
    ]
    assert counts == {"url_password": 1, "bearer_token": 1, "api_key": 1, "aws_access_key": 1,
                      "card_number": 1, "email": 1}
    assert luhn(b"4111111111111111") and not luhn(b"4111111111111112")


def test_redaction_leaves_clean_batches_untouched():
    r = Redactor(parse_selection("default"), {}, lambda n, k: None)
    raw = b"<14>1 2026-11-25T00:00:00Z h t - - - GET /items 200 in 12 ms"
    p = Packet(6, 1, "h", "t", "2026-11-25T00:00:00Z", None, raw=raw, msg_at=raw.index(b"GET"))
    r.apply([p])
    assert p.raw is raw  # the frame is kept: a relay still copies it


def test_filters_on_routes_from_the_api_and_postgres(pg, tmp_path):
    """Routes others write (the routes API, rows in Postgres) carry filters; a
    pattern RE2 cannot bound is refused with the reason, the agent unharmed."""
    import json

    from test_postgres import AUTH, _api_agent

    db, agent, probe = _api_agent(pg, tmp_path, "filters")
    out = tmp_path / "api.log"
    try:
        url = f"file://{out}?min_severity=err&exclude={quote('(x+x+)+y')}"
        code, _, body = agent.request(
            "POST", "/routes", json.dumps({"hostname": "web", "endpoint": url}).encode(), AUTH)
        assert code == 201, body
        bad = f"file://{out}?match={quote('(?<=a)b')}"
        code, _, body = agent.request(
            "POST", "/routes", json.dumps({"hostname": "web", "endpoint": bad}).encode(), AUTH)
        assert code == 400 and b"match" in body and b"refused" in body, body
        pg.sql("insert into drains (drain, hostname, endpoint) values "
               "('00000000-0000-0000-0000-000000000001', 'db', %s)",
               (f"file://{out}?max_severity=zzz",), dbname=db)
        wait_for(lambda: "max_severity" in agent.log(), 10, what="the bad row refused in the log")
        s = socket.create_connection(("127.0.0.1", probe.sock.getpeername()[1]))
        s.sendall(b"<14>1 2026-11-25T00:00:00Z web app - - - info line\n"
                  b"<11>1 2026-11-25T00:00:00Z web app - - - " + b"x" * 30000 + b"\n"
                  b"<11>1 2026-11-25T00:00:00Z web app - - - error line\n")
        wait_for(lambda: out.exists() and "error line" in out.read_text(), 10, what="error line")
        text = out.read_text()
        # the long line has no "y": RE2 says so in linear time, and it passes
        assert "info line" not in text and "x" * 30000 in text
        assert agent.health_ms() < 100
    finally:
        agent.stop()


def test_file_lines_filtered_and_redacted_through_rotation_and_restart(tmp_path):
    """Container lines with card numbers, REDACT=default, one drain for all
    and one with ?min_severity=err (stderr lines): the file rotates and the
    agent restarts; each drain gets its lines once, redacted. Filtered lines
    are acknowledged, so the file's offset moves past them."""
    from collections import Counter

    from test_kubernetes_files import Pod

    root = tmp_path / "logs"
    pod = Pod(root, "pay-5f6d7c8b9-xyz98")
    all_out, err_out = tmp_path / "all.log", tmp_path / "err.log"
    a = Agent(tmp_path / "agent", {"KUBERNETES": "true", "FILES_START_AT": "beginning",
                                   "KUBERNETES_LOG_PATH": str(root / "containers"),
                                   "REDACT": "default"},
              f"*  file://{all_out}\n*  file://{err_out}?min_severity=err\n").start()

    def write(lo: int, hi: int) -> None:
        with open(pod.log, "ab") as f:
            for i in range(lo, hi):
                stream = "stderr" if i % 3 == 0 else "stdout"
                card = " card 4111-1111-1111-1111" if i % 5 == 0 else ""
                f.write(f"2026-11-25T07:00:00.000000001Z {stream} F line-{i}{card}\n".encode())

    def got(path) -> Counter:
        return Counter(_msgs(path))

    def want(lo: int, hi: int, only_err: bool = False) -> Counter:
        return Counter(f"line-{i}" + (" card [REDACTED:card_number]" if i % 5 == 0 else "")
                       for i in range(lo, hi) if not only_err or i % 3 == 0)

    try:
        write(0, 3000)
        pod.rotate(compress_previous=False)
        write(3000, 6000)
        wait_for(lambda: got(all_out) == want(0, 6000), 20, what="6000 lines")
        a.stop()
        write(6000, 9000)
        a.start()
        wait_for(lambda: got(all_out) == want(0, 9000), 20, what="9000 lines, once each")
        wait_for(lambda: got(err_out) == want(0, 9000, only_err=True), 10, what="stderr lines")
        assert "4111-1111" not in all_out.read_text() + err_out.read_text()
        assert a.metric("logtrain_redactions_total", pattern="card_number") == 600  # after restart
    finally:
        a.stop()
