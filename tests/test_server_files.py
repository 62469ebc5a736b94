"""FILES (plain log files on servers) against real files: a glob in the TOML
file's [[files]] tables and in the environment's compact form, logrotate-style
rotation while a writer appends, a restart with SIGKILL, and bad entries
refused with the setting and entry named."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from peers import Agent, wait_for

from logtrain.config import ConfigError, load


def write(path: Path, start: int, n: int) -> None:
    with open(path, "ab") as f:
        f.write(b"".join(b"plain line-%d\n" % i for i in range(start, start + n)))


def received(out: Path) -> Counter:
    if not out.exists():
        return Counter()
    return Counter(line.rsplit(" ", 1)[-1] for line in out.read_text().splitlines())


def missing(out: Path, n: int) -> list[int]:
    c = received(out)
    return [i for i in range(n) if not c[f"line-{i}"]]


def test_toml_files_rotation_and_sigkill(tmp_path):
    logs = tmp_path / "var-log"
    logs.mkdir()
    app = logs / "app.log"
    write(app, 0, 1000)
    (logs / "other.txt").write_text("not matched\n")
    out = tmp_path / "out.log"
    conf = tmp_path / "logtrain.toml"
    conf.write_text(f'files_start_at = "beginning"\n\n[[files]]\npath = "{logs}/*.log"\n'
                    f'hostname = "web-1"\ntag = "app"\n')
    a = Agent(tmp_path / "agent", {"LOGTRAIN_CONFIG": str(conf)}, f"web-1 file://{out}\n")
    a.start()
    try:
        wait_for(lambda: not missing(out, 1000), 10, what="the first 1,000 lines")
        first = out.read_text().splitlines()[0]
        assert " web-1 app - - - plain line-0" in first and first.startswith("<14>1 ")
        # logrotate: rename, create, compress the older one
        write(app, 1000, 500)
        os.rename(app, logs / "app.log.1")
        write(app, 1500, 500)
        wait_for(lambda: not missing(out, 2000), 10, what="lines across the rotation")
        a.stop(signal.SIGKILL)
        write(app, 2000, 500)
        os.rename(logs / "app.log.1", logs / "app.log.2")
        with open(logs / "app.log.2", "rb") as src, gzip.open(logs / "app.log.2.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        (logs / "app.log.2").unlink()
        os.rename(app, logs / "app.log.1")
        write(app, 2500, 500)  # a new app.log, created while the agent is down
        a.start()
        wait_for(lambda: not missing(out, 3000), 15, what="every line after the restart")
        c = received(out)
        dups = sum(v - 1 for v in c.values() if v > 1)
        print(f"server files: {dups} duplicates after SIGKILL and a rotation while down")
        assert "not matched" not in out.read_text()
        assert a.metric("logtrain_files_watched", input="files") >= 1
    finally:
        a.stop()


def test_environment_form_and_new_files(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    out = tmp_path / "out.log"
    a = Agent(tmp_path / "agent", {"FILES": f"{logs}/*.log db-1 postgres; {logs}/x/y.txt h2 t2"},
              f"db-1 file://{out}\n").start()
    try:
        write(logs / "late.log", 0, 100)  # appears after the start: read from its first line
        wait_for(lambda: not missing(out, 100), 10, what="a file created later")
        assert " db-1 postgres " in out.read_text()
    finally:
        a.stop()


@pytest.mark.parametrize("env,message", [
    ({"FILES": "/var/log/*.log web-1"}, "FILES (environment): entry 1 '/var/log/*.log web-1': "
                                        "expected 'GLOB HOSTNAME TAG'"),
    ({"FILES": "relative/*.log h t"}, "path must be an absolute file name or glob"),
])
def test_bad_entries_name_the_setting(env, message):
    with pytest.raises(ConfigError) as e:
        load(env={"ROUTES_FILE": "/x", **env})
    assert message in str(e.value)


def test_check_config_shows_the_entries(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text('routes_file = "/dev/null"\n[[files]]\npath = "/var/log/a/*.log"\n'
                    'hostname = "h"\ntag = "t"\n')
    r = subprocess.run([sys.executable, "-m", "logtrain", "check-config", "--config", str(conf)],
                       capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    assert r.returncode == 0, r.stderr
    assert "FILES=/var/log/a/*.log h t  (file)" in r.stdout
    time.sleep(0)


def test_files_first_seen_at_a_restart(tmp_path):
    """At a restart, a file with no checkpoint is read from its start when it
    was created after the last run, and from its end when it was there then
    (here: not followed last run, because the glob changed)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    write(logs / "a.log", 0, 10)
    write(logs / "b.log", 100, 10)  # there during the first run, not followed by it
    out = tmp_path / "out.log"
    env = {"FILES": f"{logs}/a.log h t", "FILES_START_AT": "beginning"}
    a = Agent(tmp_path / "agent", env, f"h file://{out}\n").start()
    wait_for(lambda: not missing(out, 10), 10, what="a.log")
    a.stop()
    time.sleep(1.1)  # inode times have a coarse clock: after the last run, clearly
    write(logs / "c.log", 200, 10)  # created while the agent is down
    a.env["FILES"] = f"{logs}/*.log h t"
    a.start()
    try:
        wait_for(lambda: all(received(out)[f"line-{i}"] for i in range(200, 210)), 10,
                 what="c.log from its start")
        time.sleep(0.5)
        assert not any(received(out)[f"line-{i}"] for i in range(100, 110)), "b.log from its start"
        write(logs / "b.log", 110, 5)  # what it gets from now on arrives
        wait_for(lambda: all(received(out)[f"line-{i}"] for i in range(110, 115)), 10,
                 what="b.log's new lines")
    finally:
        a.stop()
