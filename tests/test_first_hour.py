"""What a new user meets in the first hour (issue 20), each kept fixed: the
README's commands as written, check-config's verdict, the command line's help
and errors, the start line's addresses, the agent's own log and metrics help,
one timestamp form. The agent runs as a process, as a user runs it."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from peers import ROOT, Agent, free_port, logger, wait_for

from logtrain.config import ConfigError, load
from logtrain.log import Log, RateLimit

README = (ROOT / "README.md").read_text()
RFC3339_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run([sys.executable, "-m", "logtrain", *args], env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=30)


# ----------------------------------------------------------------------------- the README


def test_readme_commands_work_as_written_after_the_set_up_command():
    """The README's `logtrain ...` commands are typed in a shell whose PATH
    has only the system's directories: its own PATH line makes them work."""
    if not (ROOT / ".venv" / "bin" / "logtrain").exists():
        pytest.skip("no .venv in the checkout (make setup makes it)")
    lines = [x.strip() for x in README.splitlines() if x.strip().startswith("export PATH=")]
    assert lines, "the README says nowhere how to put logtrain on PATH"
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")}
    script = "command -v logtrain"
    before = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True)
    assert before.returncode != 0, "logtrain was on PATH already: the test shows nothing"
    script = "\n".join([lines[0], "set -e", "logtrain version", "logtrain --help",
                        "logtrain check-config --config examples/logtrain.toml"])
    r = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("logtrain ") and r.stdout.rstrip().endswith("configuration OK")


# ----------------------------------------------------------------------------- check-config


def test_check_config_prints_errors_first_and_nothing_that_reads_as_a_pass(tmp_path):
    p = tmp_path / "routes"
    # line 2 fails the URL check, line 3 the syntax check: reported in file order
    p.write_text("*  stdout://\nweb  kafka://broker:9092\nonly-one-field\n")
    env = {"SYSLOG_TCP": "true", "ROUTES_FILE": str(p)}
    r = cli("check-config", env=env)
    assert r.returncode == 2
    assert r.stdout == ""  # no settings, no "1 route(s)", no OK
    err = r.stderr.splitlines()
    assert err[0].startswith(f"logtrain: configuration error: ROUTES_FILE: {p}:2: route web -> "
                             "kafka://broker:9092: unknown drain scheme 'kafka'")
    assert err[1].startswith(f"logtrain: configuration error: ROUTES_FILE: {p}:3: expected")
    assert "FAILED: 2 error(s)" in err[-1]

    r = cli("check-config", env={**env, "ROUTES_FILE": str(tmp_path / "missing")})
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(f"logtrain: configuration error: ROUTES_FILE: {tmp_path}/missing: "
                               "No such file")

    p.write_text("*  stdout://\n")
    r = cli("check-config", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(f"# {p}: 1 route(s)\nconfiguration OK\n")


def test_check_config_reports_the_routes_and_tls_errors_together(tmp_path):
    p = tmp_path / "routes"
    p.write_text("web  kafka://broker:9092\n")
    bad = tmp_path / "cert.pem"
    bad.write_text("not a certificate\n")
    r = cli("check-config", env={"SYSLOG_TLS": "true", "SYSLOG_TLS_CERT_PEM": str(bad),
                                 "SYSLOG_TLS_KEY_PEM": str(bad), "ROUTES_FILE": str(p)})
    assert r.returncode == 2 and r.stdout == ""
    assert "FAILED: 2 error(s)" in r.stderr and "kafka" in r.stderr


# ----------------------------------------------------------------------------- the command line


@pytest.mark.parametrize("raw", ["8X", "8.5M", "M"])
def test_size_errors_say_that_suffixes_are_accepted(raw):
    with pytest.raises(ConfigError) as e:
        load(env={"SYSLOG_TCP": "true", "ROUTES_FILE": "/x", "DRAIN_BUFFER_SIZE": raw})
    assert "K, M or G suffix" in str(e.value) and repr(raw) in str(e.value)
    cfg = load(env={"SYSLOG_TCP": "true", "ROUTES_FILE": "/x", "DRAIN_BUFFER_SIZE": "8m"})
    assert cfg.drain_buffer_size == 8 << 20
    with pytest.raises(ConfigError) as e:  # a count is not a size: no suffix offered
        load(env={"SYSLOG_TCP": "true", "ROUTES_FILE": "/x", "DRAIN_PAUSE_AFTER": "8X"})
    assert "suffix" not in str(e.value)


def test_each_command_has_its_own_help():
    run = cli("run", "--help")
    assert run.returncode == 0
    assert run.stdout.startswith("usage: logtrain run ")
    assert "Runs the agent" in run.stdout and "--syslog-tcp" in run.stdout
    assert "commands:" not in run.stdout
    check = cli("check-config", "-h")
    assert check.stdout.startswith("usage: logtrain check-config ") and "Validates" in check.stdout
    version = cli("version", "--help")
    assert version.stdout.startswith("usage: logtrain version") and "--syslog-tcp" not in version.stdout
    general = cli("--help")
    assert general.stdout.startswith("usage: logtrain [COMMAND]")
    assert "commands:" in general.stdout and "check-config" in general.stdout
    assert "--syslog-tcp" in general.stdout  # a bare `logtrain --flags` is `logtrain run --flags`


# ----------------------------------------------------------------------------- the start line


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_start_line_names_the_addresses_actually_bound(tmp_path):
    """Ports of 0 take free ones: the start line must say which, and the HTTP
    server, on with only SYSLOG_TCP, serves /health there (no /metrics)."""
    routes = tmp_path / "routes"
    routes.write_text("* stdout://\n")
    p = subprocess.Popen([sys.executable, "-m", "logtrain", "run"], stderr=subprocess.PIPE, text=True,
                         env={"PATH": os.environ["PATH"], "SYSLOG_TCP": "true",
                              "SYSLOG_TCP_PORT": "0", "HTTP_PORT": "0", "METRICS": "false",
                              "BIND_ADDRESS": "127.0.0.1", "ROUTES_FILE": str(routes),
                              "STATE_DIR": str(tmp_path / "state")})
    try:
        line = p.stderr.readline()
        assert 'msg="logtrain started"' in line, line
        http = re.search(r" http=127\.0\.0\.1:(\d+) ", line)
        tcp = re.search(r"syslog_tcp on 127\.0\.0\.1:(\d+)", line)
        assert http and tcp, line
        assert int(http[1]) != 0 and int(tcp[1]) != 0
        # the status page and live tails are on by default (STATUS_PAGE, MAX_TAILS)
        assert "http_serves=/,/health,/healthz,/readyz,/session,/status.json,/tail" in line
        assert "/metrics" not in line
        assert _get(f"http://127.0.0.1:{http[1]}/health") == 200
        assert _get(f"http://127.0.0.1:{http[1]}/metrics") == 404
        socket.create_connection(("127.0.0.1", int(tcp[1])), timeout=5).close()
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
        p.stderr.close()


def test_http_inputs_are_described_with_the_bound_address(tmp_path):
    port = free_port()
    a = Agent(tmp_path, {"HTTP_SYSLOG": "true", "HTTP_EVENTS": "true", "HTTP_PORT": str(port)},
              routes="* stdout://\n").start()
    try:
        start = next(x for x in a.log().splitlines() if "logtrain started" in x)
        assert f"http_syslog on 127.0.0.1:{port}/syslog" in start
        assert f"http_events on 127.0.0.1:{port}/events" in start
        assert (f"http=127.0.0.1:{port} http_serves=/,/events,/health,/healthz,/metrics,"
                "/readyz,/session,/status.json,/syslog,/tail") in start
    finally:
        a.stop()


# ----------------------------------------------------------------------------- the agent's log


def test_rate_limited_warnings_leave_out_a_zero_count():
    out = io.StringIO()
    log, limit = Log("info", out), RateLimit(interval=0.2)
    for _ in range(3):
        held = limit.allow("k")
        if held is not None:
            log.warning("frame rejected", reason="oversized", rejections_since_last_report=held)
    time.sleep(0.25)
    held = limit.allow("k")
    log.warning("frame rejected", reason="oversized", rejections_since_last_report=held)
    first, second = out.getvalue().splitlines()
    assert first.endswith("reason=oversized") and "since_last_report" not in first
    assert second.endswith("reason=oversized rejections_since_last_report=2")


def test_first_report_of_a_real_rejection_has_no_zero_count(tmp_path):
    tcp = free_port()
    a = Agent(tmp_path, {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(tcp), "MAX_FRAME_SIZE": "100"},
              routes="* stdout://\n").start()
    try:
        with socket.create_connection(("127.0.0.1", tcp)) as s:
            s.sendall(b"<13>1 - h t - - - " + b"x" * 200 + b"\n")
            s.sendall(b"<13>1 - h t - - - " + b"y" * 200 + b"\n")
        wait_for(lambda: "rejected" in a.log(), what="the rejection's warning")
        warning = next(x for x in a.log().splitlines() if "reason=oversized" in x)
        assert "level=warning" in warning and "since_last_report" not in warning, warning
    finally:
        a.stop()


def test_reload_warnings_list_lines_in_file_order(tmp_path):
    a = Agent(tmp_path, {"HTTP_EVENTS": "true"}, routes="* stdout://\n").start()
    try:
        a.set_routes("* stdout://\nweb kafka://x:1\nonly-one-field\nweb2 nope://y\n")
        wait_for(lambda: "routes file reloaded" in a.log(), what="the reload")
        skipped = [x for x in a.log().splitlines() if "skipped route" in x]
        numbers = [int(re.search(r"routes:(\d+):", x)[1]) for x in skipped]
        assert numbers == [2, 3, 4], skipped
    finally:
        a.stop()


# ----------------------------------------------------------------------------- metrics


def test_every_metric_has_a_help_text_of_its_own():
    from logtrain.metrics import HELP as OURS
    from logtrain.metrics import Metrics
    from logtrain.origmetrics import HELP as ORIGINAL

    HELP = {**OURS, **ORIGINAL}
    names = set()
    for path in (ROOT / "logtrain").rglob("*.py"):
        names.update(re.findall(r"\"(logtrain_[a-z_]+)\"", path.read_text()))
    names -= {n for n in names if n.endswith("_")}  # prefixes, not metrics
    assert "logtrain_input_udp_kernel_drops" in names
    missing = sorted(n for n in names if not HELP.get(n) or HELP[n] == n)
    assert not missing, f"metrics without a help text: {missing}"
    m = Metrics()
    m.gauge("logtrain_input_udp_kernel_drops", lambda: 0, input="syslog_udp")
    text = m.render()
    assert "# HELP logtrain_input_udp_kernel_drops Datagrams the kernel dropped" in text


def test_udp_kernel_drops_help_on_a_running_agent(tmp_path):
    udp = free_port()
    a = Agent(tmp_path, {"SYSLOG_UDP": "true", "SYSLOG_UDP_PORT": str(udp)},
              routes="* stdout://\n").start()
    try:
        _, _, body = a.request("GET", "/metrics")
        helps = [x for x in body.decode().splitlines() if x.startswith("# HELP ")]
        assert helps and all(len(x.split(" ", 3)) == 4 and x.split(" ", 3)[3] != x.split(" ")[2]
                             for x in helps), helps
        assert any(x.startswith("# HELP logtrain_input_udp_kernel_drops Datagrams") for x in helps)
    finally:
        a.stop()


# ----------------------------------------------------------------------------- timestamps


def test_times_the_agent_writes_are_utc_with_z(tmp_path):
    """Reception times, RFC3164 stamps (in the agent's zone, converted) and the
    agent's own log: one form, RFC3339 in UTC ending in Z. An RFC5424 stamp is
    the sender's and leaves as written."""
    tcp, udp = free_port(), free_port()
    out = tmp_path / "out.log"
    a = Agent(tmp_path, {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(tcp), "SYSLOG_UDP": "true",
                         "SYSLOG_UDP_PORT": str(udp), "HTTP_EVENTS": "true",
                         "TZ": "Asia/Kolkata"},  # +05:30: a conversion is visible
              routes=f"* file://{out}\n").start()
    try:
        logger("-d", "-n", "127.0.0.1", "-P", str(udp), "--rfc3164", "-t", "app", "from 3164")
        with socket.create_connection(("127.0.0.1", tcp)) as s:
            s.sendall(b"<13>Nov 24 10:00:00 host app: stamped 3164\n"
                      b"<13>1 2026-11-24T10:00:00+00:00 host app - - - sender's own\n")
        status, _, _ = a.post("/events", b'{"hostname":"h","tag":"t","message":"no time"}')
        assert status == 200
        wait_for(lambda: out.exists() and len(out.read_text().splitlines()) >= 4, what="4 lines")
        stamps = {x.split(" ", 7)[-1]: x.split(" ")[1] for x in out.read_text().splitlines()}
    finally:
        a.stop()
    assert stamps["sender's own"] == "2026-11-24T10:00:00+00:00"  # as the sender wrote it
    for msg in ("from 3164", "stamped 3164", "no time"):
        assert RFC3339_Z.fullmatch(stamps[msg]), (msg, stamps[msg])
    assert stamps["stamped 3164"].endswith("-11-24T04:30:00Z")  # 10:00 in Kolkata
    for line in a.log().splitlines():
        assert RFC3339_Z.fullmatch(line.split(" ", 1)[0].removeprefix("time="))


def test_rfc3164_stamp_is_converted_to_utc_in_any_zone(monkeypatch):
    from datetime import UTC, datetime

    from logtrain import syslog

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        now = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
        assert syslog._local_rfc3339(7, 1, 8, 0, 0, now) == "2026-07-01T12:00:00Z"  # EDT, -04:00
    finally:
        monkeypatch.undo()
        time.tzset()


# ----------------------------------------------------------------------------- coverage


@pytest.mark.skipif("COVERAGE_PROCESS_CONFIG" in os.environ, reason="already under make coverage")
def test_make_coverage_measures_the_agent_processes_the_tests_start(tmp_path):
    """`make coverage` runs the suite under pytest-cov; the agent runs as a
    process in most tests, so its lines count only if subprocesses are measured."""
    dry = subprocess.run(["make", "-n", "coverage"], cwd=ROOT, capture_output=True, text=True)
    assert dry.returncode == 0 and "pytest" in dry.stdout and "--cov" in dry.stdout, dry.stdout
    test = "tests/test_first_hour.py::test_start_line_names_the_addresses_actually_bound"
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--cov",
                        "--cov-report=term", test], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, env={**os.environ, "COVERAGE_FILE": str(tmp_path / ".coverage")})
    assert r.returncode == 0, r.stdout + r.stderr
    row = re.search(r"^logtrain/agent\.py\s+(\d+)\s+(\d+)\s+([\d.]+)%", r.stdout, re.M)
    assert row, r.stdout
    assert float(row[3]) > 50  # run in the agent process, not in pytest's
    assert re.search(r"^TOTAL\s+\d+\s+\d+\s+[\d.]+%", r.stdout, re.M)


def test_readme_says_what_http_serves_and_quotes_the_coverage_figure():
    text = " ".join(README.split())
    assert ("with only `SYSLOG_TCP` on and `METRICS` off it serves the probes: "
            "`GET /health`") in text
    assert re.search(r"make coverage.*\*\*\d+\.\d%\*\* of the statements of `logtrain/`", text)
    assert "every memory figure below counts all three" in text.lower()  # the executable's processes
