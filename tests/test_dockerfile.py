"""packaging/Dockerfile: FROM scratch, everything it copies exists after the
build (``make test-binary`` builds first and sets LOGTRAIN_TEST_BINARY), ports
and volumes that match the settings' defaults, a non-root default user. No
container engine runs here, so the image's file system is laid out by
following the Dockerfile's COPY lines into a directory, and the entry point
runs there in a chroot as the image's user with the image's environment: a
stand-in for ``docker run`` (tests/test_static.py runs the relay in a chroot)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from peers import ROOT

from logtrain.settings import SETTINGS

DOCKERFILE = ROOT / "packaging" / "Dockerfile"
BINARY = os.environ.get("LOGTRAIN_TEST_BINARY")


def instructions() -> list[tuple[str, list[str]]]:
    """(INSTRUCTION, words) per line, continuation lines joined, comments dropped."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            # JSON form (VOLUME, ENTRYPOINT, CMD) kept whole, else shell words
            out.append((word.upper(), json.loads(rest) if rest.startswith("[") else
                        shlex.split(rest)))
    return out


def copies() -> list[tuple[dict[str, str], str, str]]:
    """(flags, source, destination) of every COPY."""
    out = []
    for word, args in instructions():
        if word == "COPY":
            flags = dict(a[2:].split("=", 1) for a in args if a.startswith("--"))
            src, dst = [a for a in args if not a.startswith("--")]
            out.append((flags, src, dst))
    return out


def test_from_scratch_non_root_ports_and_volumes():
    ins = instructions()
    assert ins[0] == ("FROM", ["scratch"])
    (user,) = [a for w, a in ins if w == "USER"]
    uid, _, gid = user[0].partition(":")
    assert int(uid) != 0 and int(gid) != 0
    passwd = (ROOT / "packaging/image/passwd").read_text()
    assert f"logtrain:x:{uid}:{gid}:" in passwd
    defaults = {s.name: s.default for s in SETTINGS}
    (exposed,) = [a for w, a in ins if w == "EXPOSE"]
    assert set(exposed) == {f"{defaults['HTTP_PORT']}/tcp", f"{defaults['ENVOY_PORT']}/tcp",
                            f"{defaults['SYSLOG_TCP_PORT']}/tcp",
                            f"{defaults['SYSLOG_UDP_PORT']}/udp",
                            f"{defaults['SYSLOG_TLS_PORT']}/tcp"}
    env = dict(a.split("=", 1) for w, args in ins if w == "ENV" for a in args)
    (volumes,) = [a for w, a in ins if w == "VOLUME"]
    assert env["STATE_DIR"] in volumes
    assert os.path.dirname(env["ROUTES_FILE"]) in volumes
    # the state volume belongs to the default user: it must write checkpoints there
    (state,) = [f for f, _, d in copies() if d == env["STATE_DIR"]]
    assert state["chown"] == user[0]


@pytest.mark.skipif(not BINARY, reason="set by make test-binary (after the build)")
def test_everything_copied_exists_after_the_build():
    for _, src, _ in copies():
        assert (ROOT / src).exists(), f"{src} (COPY in packaging/Dockerfile) is missing"
    assert (ROOT / "dist/logtrain").samefile(BINARY)
    assert os.stat(ROOT / "dist/image/tmp").st_mode & 0o1777 == 0o1777
    assert b"BEGIN CERTIFICATE" in (ROOT / "dist/image/ca-certificates.crt").read_bytes()


@pytest.mark.skipif(not BINARY or os.geteuid() != 0, reason="make test-binary, as root")
def test_the_image_layout_runs_its_entry_point_as_its_user(tmp_path: Path):
    root = tmp_path / "image"
    root.mkdir()
    for flags, src, dst in copies():
        target = root / dst.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / src).is_dir():
            shutil.copytree(ROOT / src, target)
            shutil.copystat(ROOT / src, target)
        else:
            shutil.copy2(ROOT / src, target)
        if "chown" in flags:
            uid, _, gid = flags["chown"].partition(":")
            os.chown(target, int(uid), int(gid))
    ins = instructions()
    env = dict(a.split("=", 1) for w, args in ins if w == "ENV" for a in args)
    (user,) = [a for w, a in ins if w == "USER"]
    uid, gid = (int(x) for x in user[0].partition(":")[::2])
    (entry,) = [a for w, a in ins if w == "ENTRYPOINT"]
    (root / "etc/logtrain").mkdir()
    (root / "etc/logtrain/routes").write_text("* syslog+tls://logs.example.com:6514\n")
    (root / "proc").mkdir()
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    try:
        def run(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([shutil.which("chroot") or "/usr/sbin/chroot",
                                   f"--userspec={uid}:{gid}", str(root), *entry, *args],
                                  env={**env, "SYSLOG_TCP": "true"}, capture_output=True,
                                  text=True, timeout=60)

        r = run("--version")
        assert r.returncode == 0 and r.stdout.startswith("logtrain "), r.stderr
        r = run("check-config")
        assert r.returncode == 0, r.stderr
        assert "# CA certificates for TLS drains: /etc/ssl/certs/ca-certificates.crt" in r.stdout
        assert "# /etc/logtrain/routes: 1 route(s)" in r.stdout
    finally:
        subprocess.run(["umount", "-l", str(root / "proc")], check=False)
