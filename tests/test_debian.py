"""The Debian package (packaging/build-deb.sh, from the executable that
LOGTRAIN_TEST_BINARY names; ``make test-binary``), installed for real with
dpkg on this machine: lintian finds no error; the package installs
/usr/bin/logtrain, a unit systemd-analyze accepts, conffiles in /etc/logtrain,
the logtrain system user and /var/lib/logtrain; the installed executable, run
as that user with the packaged settings, forwards util-linux logger's lines by
the routes file to a receiver; an upgrade keeps the edited conffile; purge
leaves nothing of it behind."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest
from peers import ROOT, LineSink, free_port, logger, wait_for

BINARY = os.environ.get("LOGTRAIN_TEST_BINARY")
pytestmark = [
    pytest.mark.skipif(not BINARY, reason="set by make test-binary"),
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("dpkg"),
                       reason="installs a package with dpkg: root on Debian"),
]


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"{args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def build(tmp_path: Path, revision: int) -> Path:
    r = subprocess.run(["bash", "packaging/build-deb.sh"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300, check=True,
                       env={**os.environ, "LOGTRAIN_BINARY": BINARY,
                            "LOGTRAIN_DIST": str(tmp_path), "LOGTRAIN_DEB_REVISION": str(revision)})
    deb = Path(r.stdout.strip())
    assert deb.exists() and deb.name.endswith(f"-{revision}_amd64.deb"), r.stdout
    return deb


def installed_version() -> str | None:
    r = sh("dpkg-query", "-W", "-f=${Status} ${Version}", "logtrain", check=False)
    return r.stdout.split()[-1] if r.stdout.startswith("install ok installed") else None


def env_file() -> dict[str, str]:
    out = {}
    for line in Path("/etc/logtrain/logtrain.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            k, _, v = line.partition("=")
            out[k] = v
    return out


def test_install_run_upgrade_purge(tmp_path: Path):
    if installed_version():
        pytest.skip("a logtrain package is installed on this machine already")
    first, second = build(tmp_path, 1), build(tmp_path, 2)
    if shutil.which("lintian"):
        r = sh("lintian", "--fail-on", "error", str(first), check=False)
        assert r.returncode == 0 and not any(x.startswith("E:") for x in r.stdout.splitlines()), \
            r.stdout + r.stderr
    contents = sh("dpkg-deb", "-c", str(first)).stdout
    for path in ("./usr/bin/logtrain", "./lib/systemd/system/logtrain.service",
                 "./etc/logtrain/logtrain.env", "./etc/logtrain/routes"):
        assert path in contents
    try:
        sh("dpkg", "-i", str(first))
        assert installed_version() == first.name.split("_")[1]
        # conffiles, the user, the state directory, the unit
        conffiles = sh("dpkg-query", "-W", "-f=${Conffiles}", "logtrain").stdout
        assert "/etc/logtrain/logtrain.env" in conffiles and "/etc/logtrain/routes" in conffiles
        user = pwd.getpwnam("logtrain")
        assert user.pw_uid < 1000 and user.pw_shell.endswith("nologin")
        state = os.stat("/var/lib/logtrain")
        assert state.st_uid == user.pw_uid and oct(state.st_mode & 0o777) == "0o750"
        assert os.stat("/etc/logtrain/routes").st_gid == user.pw_gid
        if shutil.which("systemd-analyze"):
            r = sh("systemd-analyze", "verify", "/lib/systemd/system/logtrain.service",
                   check=False)
            assert r.returncode == 0 and "logtrain.service" not in r.stderr, r.stderr
        unit = Path("/lib/systemd/system/logtrain.service").read_text()
        for option in ("User=logtrain", "ProtectSystem=strict", "NoNewPrivileges=yes",
                       "PrivateTmp=yes", "StateDirectory=logtrain", "CapabilityBoundingSet=\n"):
            assert option in unit

        # the installed executable, run as the service runs it, against the routes file
        sink = LineSink()
        Path("/etc/logtrain/routes").write_text(
            f"# edited by the operator\n* syslog+tcp://127.0.0.1:{sink.port}\n")
        _run_installed(sink)

        # an upgrade keeps the edited conffile, silently (it did not change in the package)
        edited = Path("/etc/logtrain/routes").read_text()
        sh("dpkg", "-i", str(second))
        assert installed_version() == second.name.split("_")[1]
        assert Path("/etc/logtrain/routes").read_text() == edited
        assert not list(Path("/etc/logtrain").glob("*.dpkg-*"))
        sh("/usr/bin/logtrain", "--version")
    finally:
        sh("dpkg", "--purge", "logtrain", check=False)
    assert installed_version() is None
    for gone in ("/usr/bin/logtrain", "/etc/logtrain", "/var/lib/logtrain",
                 "/lib/systemd/system/logtrain.service", "/usr/share/doc/logtrain"):
        assert not os.path.exists(gone), gone
    assert "logtrain" not in sh("dpkg", "-l").stdout.split()


def _run_installed(sink: LineSink) -> None:
    """/usr/bin/logtrain as the logtrain user with the packaged settings
    (ports moved to free ones: the test shares the machine)."""
    env = {**env_file(), "PATH": "/usr/bin:/bin"}
    tcp, http = free_port(), free_port()
    env.update(SYSLOG_TCP_PORT=str(tcp), SYSLOG_UDP_PORT=str(free_port()), HTTP_PORT=str(http))
    as_service = {"user": "logtrain", "group": "logtrain", "extra_groups": ["adm"]}
    r = subprocess.run(["/usr/bin/logtrain", "check-config"], env=env, capture_output=True,
                       text=True, timeout=60, **as_service)
    assert r.returncode == 0 and "configuration OK" in r.stdout, r.stderr
    proc = subprocess.Popen(["/usr/bin/logtrain", "run"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, **as_service)

    def healthy() -> bool:
        if proc.poll() is not None:
            return True
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/health", timeout=1):
                return True
        except OSError:
            return False

    try:
        wait_for(healthy, 30, 0.1, what="/usr/bin/logtrain")
        assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
        logger("-T", "--rfc5424", "-n", "127.0.0.1", "-P", str(tcp), "-t", "pkgtest",
               "from the installed package")
        (line,) = sink.wait_lines(1)
        assert b"pkgtest" in line and line.endswith(b"from the installed package"), line
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            sink.close()
