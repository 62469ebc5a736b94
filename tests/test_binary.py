"""The one-file executable (``make test-binary``, which sets LOGTRAIN_TEST_BINARY):
its build is quiet, and its memory is counted over every process it runs
(staticx's launcher, PyInstaller's launcher as its child, then the agent)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from peers import ROOT, Agent, free_port, status_kib

BINARY = os.environ.get("LOGTRAIN_TEST_BINARY")
pytestmark = pytest.mark.skipif(not BINARY, reason="set by make test-binary")


def test_build_prints_one_line_and_warns_of_nothing(tmp_path: Path):
    # make test-binary records what its own build printed (build/binary.out,
    # .err): checked here instead of building a second time (90 s of CI)
    recorded = os.environ.get("LOGTRAIN_BUILD_OUTPUT")
    if recorded:
        out, err = (Path(recorded + ext).read_text() for ext in (".out", ".err"))
        dist, log = Path(BINARY).parent, ROOT / "build" / "pyinstaller" / "build.log"
    else:
        r = subprocess.run(["bash", "packaging/build-binary.sh"], cwd=ROOT, capture_output=True,
                           text=True, timeout=600,
                           env={**os.environ, "LOGTRAIN_DIST": str(tmp_path / "dist"),
                                "LOGTRAIN_BUILD": str(tmp_path / "build")})
        assert r.returncode == 0, r.stdout + r.stderr
        out, err = r.stdout, r.stderr
        dist, log = tmp_path / "dist", tmp_path / "build" / "build.log"
    assert err == ""
    lines = out.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"built {dist}/logtrain (logtrain "), lines
    text = log.read_text()
    assert "Building EXE" in text  # the whole log is kept there
    assert "mx.DateTime" not in text and "Hidden import" not in text


def test_memory_is_counted_over_the_launcher_and_the_agent(tmp_path: Path):
    tcp = free_port()
    agent = Agent(tmp_path, {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(tcp)},
                  routes="* stdout://\n").start()
    try:
        time.sleep(1)
        pids = agent.pids()
        # staticx's launcher, PyInstaller's launcher, the agent
        assert len(pids) == 3 and pids[0] == agent.proc.pid, pids
        rss = [status_kib(p, "VmRSS") for p in pids]
        assert all(r > 64 for r in rss), rss  # KiB: no launcher is free
        assert agent.rss_mib() * 1024 == pytest.approx(sum(rss), abs=256)
    finally:
        agent.stop()
