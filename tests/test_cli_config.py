"""Configuration and the command line, through the real entry points."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from logtrain import __version__
from logtrain.config import ConfigError, load
from logtrain.urls import mask_url

SCRIPT = Path(sys.executable).with_name("logtrain")


def cli(*args: str, env: dict | None = None, script: bool = False) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    cmd = [str(SCRIPT)] if script else [sys.executable, "-m", "logtrain"]
    return subprocess.run(cmd + list(args), env={**base, **(env or {})}, capture_output=True,
                          text=True, timeout=30)


@pytest.fixture
def routes(tmp_path):
    p = tmp_path / "routes"
    p.write_text("# comment\n\n*  stdout://\nweb-*  syslog+tcp://127.0.0.1:514  # trailing\n")
    return p


def test_defaults_are_the_originals():
    cfg = load(env={"SYSLOG_TCP": "true", "ROUTES_FILE": "/x"})
    assert (cfg.http_port, cfg.envoy_port, cfg.syslog_tcp_port, cfg.syslog_udp_port,
            cfg.syslog_tls_port) == (9000, 9001, 9002, 9003, 9004)
    assert (cfg.kubernetes_log_path, cfg.http_events_path, cfg.http_syslog_path,
            cfg.persistent_path) == ("/var/log/containers", "/events", "/syslog", "/logs/")
    assert cfg.bind_address == "0.0.0.0" and cfg.log_level == "info"


def test_precedence_flags_env_file_defaults(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('syslog_tcp = true\nhttp_port = 7000\nsyslog_tcp_port = 7002\n'
                 'routes_file = "routes"\nmax_frame_size = "128K"\n')
    cfg = load(env={"HTTP_PORT": "8000"}, config_file=str(f), flags={"HTTP_PORT": None})
    assert (cfg.http_port, cfg.syslog_tcp_port, cfg.max_frame_size) == (8000, 7002, 128 << 10)
    assert cfg.routes_file == str(tmp_path / "routes")  # relative to the file
    assert (cfg.origin("HTTP_PORT"), cfg.origin("SYSLOG_TCP_PORT"), cfg.origin("ENVOY_PORT")) == (
        "environment", "file", "default")
    f.write_text(f.read_text() + 'syslog_tls_ca_pem = """-----BEGIN CERTIFICATE-----\nAA==\n"""\n'
                 'syslog_tls_key_pem = "tls/key.pem"\n')
    cfg = load(env={}, config_file=str(f))
    assert cfg.syslog_tls_ca_pem.startswith("-----BEGIN")  # PEM text stays text
    assert cfg.syslog_tls_key_pem == str(tmp_path / "tls" / "key.pem")
    cfg = load(env={"HTTP_PORT": "8000", "LOGTRAIN_CONFIG": str(f)}, flags={"HTTP_PORT": "6000"})
    assert cfg.http_port == 6000 and cfg.origin("HTTP_PORT") == "flag"


@pytest.mark.parametrize("env,message", [
    ({"SYSLOG_TCP_PORT": "abc"}, "SYSLOG_TCP_PORT (environment): expected a whole number, got 'abc'"),
    ({"HTTP_PORT": "70000"}, "HTTP_PORT: 70000 is not a port number"),
    ({"SYSLOG_TCP": "maybe"}, "SYSLOG_TCP (environment): expected true or false"),
    ({"SYSLOG_TLS": "true"}, "SYSLOG_TLS_CERT_PEM: required when SYSLOG_TLS=true"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL: 'loud' is not one of"),
    ({"HTTP_EVENTS_PATH": "events"}, "HTTP_EVENTS_PATH: must start with '/'"),
    ({"KUBERNETES_HOSTNAME_POLICY": "anyone"}, "KUBERNETES_HOSTNAME_POLICY: 'anyone' is not one of"),
    ({"ENVOY_MAX_MESSAGE": "10"}, "ENVOY_MAX_MESSAGE"),
    ({"DRAIN_BUFFER_SIZE": "0"}, "DRAIN_BUFFER_SIZE: must be greater than zero"),
])
def test_invalid_values_name_the_setting(env, message):
    with pytest.raises(ConfigError) as e:
        load(env={"SYSLOG_TCP": "true", "ROUTES_FILE": "/x", **env})
    assert message in str(e.value)


def test_no_input_and_no_datasource_are_explained():
    with pytest.raises(ConfigError, match="no input is enabled: set at least one of SYSLOG_TCP"):
        load(env={"ROUTES_FILE": "/x"})
    with pytest.raises(ConfigError, match="no datasource of routes is configured: set ROUTES_FILE"):
        load(env={"SYSLOG_TCP": "true"})


def test_bad_toml_and_unknown_keys(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("syslog_tcp = true\nsyslog_tcpp = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'syslog_tcpp'"):
        load(env={}, config_file=str(f))
    f.write_text("syslog_tcp = [\n")
    with pytest.raises(ConfigError, match="config file"):
        load(env={}, config_file=str(f))
    with pytest.raises(ConfigError, match="No such file"):
        load(env={}, config_file=str(tmp_path / "missing.toml"))


def test_check_config_prints_effective_config_with_secrets_masked(routes, tmp_path):
    key = tmp_path / "k.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n")
    r = cli("check-config", "--syslog-udp", "--http-port", "9100", env={
        "SYSLOG_TCP": "true", "ROUTES_FILE": str(routes),
        "DATABASE_URL": "postgres://app:pgpass123@db:5432/logs",
        "SYSLOG_TLS_KEY_PEM": key.read_text()})
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "HTTP_PORT=9100  (flag)" in out and "SYSLOG_UDP=true  (flag)" in out
    assert "SYSLOG_TCP=true  (environment)" in out and "ENVOY_PORT=9001  (default)" in out
    assert "DATABASE_URL=postgres://app:****@db:5432/logs" in out
    assert "SYSLOG_TLS_KEY_PEM=********" in out
    assert "pgpass123" not in out and "c2VjcmV0" not in out
    assert "2 route(s)" in out and "configuration OK" in out


def test_check_config_and_run_reject_a_bad_routes_file(tmp_path):
    p = tmp_path / "routes"
    p.write_text("*  stdout://\nweb  kafka://broker:9092\nonly-one-field\n")
    env = {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": "0", "HTTP_PORT": "0", "ROUTES_FILE": str(p)}
    r = cli("check-config", env=env)
    assert r.returncode == 2
    assert f"{p}:2: route web -> kafka://broker:9092: unknown drain scheme 'kafka'" in r.stderr
    assert f"{p}:3: expected 'HOSTNAME-OR-GLOB DRAIN-URL'" in r.stderr
    r = cli("run", env=env)
    assert r.returncode == 2 and f"{p}:2:" in r.stderr and "ROUTES_FILE" in r.stderr


def test_run_reports_bad_settings_and_busy_ports(routes):
    r = cli(env={"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": "x", "ROUTES_FILE": str(routes)})
    assert r.returncode == 2
    assert "configuration error: SYSLOG_TCP_PORT (environment): expected a whole number" in r.stderr
    r = cli(env={"ROUTES_FILE": str(routes)})
    assert r.returncode == 2 and "no input is enabled" in r.stderr
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = cli(env={"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(port), "BIND_ADDRESS": "127.0.0.1",
                     "HTTP_PORT": "0", "ROUTES_FILE": str(routes)})
    assert r.returncode == 2
    assert f"SYSLOG_TCP: cannot listen for syslog_tcp on 127.0.0.1:{port}" in r.stderr


def test_version_both_entry_points():
    for script in (False, True):
        assert cli("--version", script=script).stdout.strip() == f"logtrain {__version__}"
        assert cli("version", script=script).stdout.strip() == f"logtrain {__version__}"
    assert "--syslog-tcp" in cli("--help", script=True).stdout


def test_log_level_filters_the_agents_own_log(routes, tmp_path):
    import signal
    import time

    from peers import free_port

    def start(level):
        p = subprocess.Popen([sys.executable, "-m", "logtrain"], stderr=subprocess.PIPE, text=True,
                             env={"PATH": os.environ["PATH"], "SYSLOG_TCP": "true",
                                  "SYSLOG_TCP_PORT": str(free_port()), "HTTP_PORT": str(free_port()),
                                  "BIND_ADDRESS": "127.0.0.1", "ROUTES_FILE": str(routes),
                                  "LOG_LEVEL": level})
        time.sleep(1.5)
        p.send_signal(signal.SIGINT)
        assert p.wait(10) == 0
        return p.stderr.read()

    info = start("info")
    assert "level=info msg=\"logtrain started\"" in info and "level=info msg=stopping signal=SIGINT" in info
    assert start("error") == ""


def test_mask_url():
    assert mask_url("syslog+tls://u:p4ss@h:1/x?token=abc&framing=octet") == \
        "syslog+tls://u:****@h:1/x?token=****&framing=octet"
    assert mask_url("https://TOKEN123@h/") == "https://****@h/"
    assert mask_url("stdout://") == "stdout://"
    assert mask_url("file:///var/log/x.log") == "file:///var/log/x.log"


@pytest.mark.skipif("COVERAGE_PROCESS_CONFIG" in os.environ,
                    reason="under make coverage, coverage itself imports inspect and dataclasses")
def test_pprint_is_deferred_until_used():
    """The agent keeps pprint (and the dataclasses/inspect/ast it imports) out
    until something uses it; when something does, it is the real module."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from logtrain import cli\n"
        "cli.main(['version'])\n"
        "import gevent, socket\n"
        "gevent.get_hub().threadpool\n"
        "socket.getaddrinfo('127.0.0.1', 9)\n"
        "assert 'dataclasses' not in sys.modules and 'inspect' not in sys.modules\n"
        "import pprint\n"
        "assert pprint.pformat({'a': [1]}) == \"{'a': [1]}\"\n"
        "assert 'dataclasses' in sys.modules\n"
        "assert gevent.get_hub().format_context({'x': 1}) == \"{'x': 1}\"\n"
        "print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr
