"""The static executable (``make test-binary`` sets LOGTRAIN_TEST_BINARY) in an
empty chroot: a directory holding only the binary, /tmp, /proc (the one-file
launchers read /proc/self/exe) and the test's files, which is what a scratch
image gives it. Inside, it receives syslog from util-linux ``logger`` on TCP and
UDP and forwards by a routes file to rsyslog outside the chroot, over TCP and
over TLS verified with the CA bundle the chroot carries at
/etc/ssl/certs/ca-certificates.crt (logtrain/cabundle.py); a server whose
certificate another CA signed is refused. Like a container runtime, the test
gives the chroot an /etc/hosts (names resolve inside it)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from peers import Rsyslog, free_port, logger, make_certs, wait_for

BINARY = os.environ.get("LOGTRAIN_TEST_BINARY")
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"
pytestmark = [
    pytest.mark.skipif(not BINARY, reason="set by make test-binary"),
    pytest.mark.skipif(os.geteuid() != 0, reason="chroot and mount need root"),
]


@pytest.fixture
def chroot(tmp_path: Path):
    """An empty root: /logtrain, /tmp, /proc, nothing else (files are added by the test)."""
    root = tmp_path / "root"
    (root / "tmp").mkdir(parents=True)
    (root / "tmp").chmod(0o1777)
    (root / "proc").mkdir()
    shutil.copy2(BINARY, root / "logtrain")
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root / "proc")], check=False)


def in_chroot(root: Path, *args: str, env: dict | None = None, timeout: float = 60):
    return subprocess.run([CHROOT, str(root), "/logtrain", *args], capture_output=True,
                          text=True, timeout=timeout, env=env or {})


def test_it_is_static():
    r = subprocess.run(["readelf", "-lW", BINARY], capture_output=True, text=True, check=True)
    assert "INTERP" not in r.stdout and "DYNAMIC" not in r.stdout, r.stdout


def test_version_and_check_config_in_an_empty_chroot(chroot: Path):
    r = in_chroot(chroot, "--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("logtrain ")
    (chroot / "routes").write_text("* syslog+tcp://127.0.0.1:514\n")
    env = {"SYSLOG_TCP": "true", "ROUTES_FILE": "/routes"}
    r = in_chroot(chroot, "check-config", env=env)
    assert r.returncode == 0, r.stderr
    assert "# /routes: 1 route(s)\nconfiguration OK\n" in r.stdout
    # nothing in the chroot names a CA bundle: said, not hidden
    assert "CA certificates for TLS drains: none found (set SSL_CERT_FILE)" in r.stdout
    (chroot / "routes").write_text("* nosuch://x\n")
    r = in_chroot(chroot, "check-config", env=env)
    assert r.returncode == 2 and "nosuch" in r.stderr, r.stderr
    # the launchers cleaned up what they extracted
    assert list((chroot / "tmp").iterdir()) == []


def test_relays_syslog_out_of_the_chroot_over_tcp_and_verified_tls(chroot: Path, tmp_path: Path):
    certs = make_certs(tmp_path / "certs")
    stranger = make_certs(tmp_path / "stranger")  # another CA, unknown in the chroot
    plain = Rsyslog(tmp_path / "plain").start()
    tls = Rsyslog(tmp_path / "tls", certs=certs).start()
    untrusted = Rsyslog(tmp_path / "untrusted", certs=stranger).start()
    me = socket.gethostname()  # what logger puts in its messages
    bundle = chroot / "etc/ssl/certs/ca-certificates.crt"
    bundle.parent.mkdir(parents=True)
    shutil.copy(certs["ca.pem"], bundle)
    # as a container runtime mounts it into every container, a scratch image's too
    (chroot / "etc/hosts").write_text("127.0.0.1 localhost\n")
    (chroot / "routes").write_text(
        f"{me} syslog+tcp://127.0.0.1:{plain.tcp_port}\n"
        f"tlshost syslog+tls://localhost:{tls.tls_port}\n"
        f"strangerhost syslog+tls://localhost:{untrusted.tls_port}\n")
    tcp, udp, http = free_port(), free_port(), free_port()
    env = {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(tcp), "SYSLOG_UDP": "true",
           "SYSLOG_UDP_PORT": str(udp), "HTTP_PORT": str(http), "BIND_ADDRESS": "127.0.0.1",
           "METRICS": "true", "ROUTES_FILE": "/routes", "STATE_DIR": "/state"}
    log = open(tmp_path / "agent.log", "wb")
    proc = subprocess.Popen([CHROOT, str(chroot), "/logtrain", "run"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)

    def get(path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{http}{path}", timeout=2) as r:
            return r.read().decode()

    def healthy() -> bool:
        try:
            return get("/health") is not None
        except OSError:
            return proc.poll() is not None

    try:
        wait_for(healthy, 30, 0.1, what="the agent in the chroot")
        assert proc.poll() is None, (tmp_path / "agent.log").read_text()
        # util-linux logger names this machine; the two TLS routes' hostnames come in raw frames
        for transport, port in (("-T", tcp), ("-d", udp)):
            logger(transport, "--rfc5424", "-n", "127.0.0.1", "-P", str(port), "-t", "app",
                   f"via {transport}")
        with socket.create_connection(("127.0.0.1", tcp)) as s:
            for host in ("tlshost", "strangerhost"):
                s.sendall(f"<14>1 2026-11-25T08:00:00Z {host} app - - - to {host}\n".encode())
        got = plain.wait_lines(2)
        assert sorted(got) == [f"{me} app via -T", f"{me} app via -d"], got
        assert tls.wait_lines(1) == ["tlshost app to tlshost"]

        wait_for(lambda: _errors(get("/metrics")) > 0, 20, 0.2,
                 what="the untrusted TLS drain's connection errors")
        time.sleep(0.5)
        assert untrusted.lines() == []
        text = (tmp_path / "agent.log").read_text(errors="replace")
        assert "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text, text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(20) == 0, (tmp_path / "agent.log").read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
            for r in (plain, tls, untrusted):
                r.stop()


def _errors(metrics: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("logtrain_drain_errors_total{") and "localhost" in line:
            total += float(line.rpartition(" ")[2])
    return total
