"""KUBERNETES=true against real files: a log directory laid out as kubelet
lays it out (symlinks in containers/ into pods/), written by separate writer
processes (tests/logwriter.py) in CRI and Docker formats, rotated the way
kubelet rotates (rename, reopen by the runtime, gzip of the older file), by
copytruncate, and with the agent killed (SIGKILL) and restarted mid-stream.
The receiver (a file:// drain) must have every line."""

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

HERE = Path(__file__).resolve().parent
CID = "0123456789abcdef" * 4


class Pod:
    """One container's log as kubelet keeps it, and its writer process."""

    def __init__(self, root: Path, pod: str, namespace: str = "default", container: str = "app"):
        self.dir = root / "pods" / f"{namespace}_{pod}_uid" / container
        self.dir.mkdir(parents=True)
        self.log = self.dir / "0.log"
        self.log.touch()
        self.link = root / "containers" / f"{pod}_{namespace}_{container}-{CID}.log"
        self.link.parent.mkdir(exist_ok=True)
        os.symlink(self.log, self.link)
        self.writer: subprocess.Popen | None = None
        self.rotations = 0

    def write(self, count: int, rate: float, fmt: str = "cri", start: int = 0) -> None:
        self.writer = subprocess.Popen(
            [sys.executable, str(HERE / "logwriter.py"), str(self.log), str(count), str(rate), fmt,
             str(start)], stdout=subprocess.PIPE, text=True)

    def wait(self) -> None:
        assert self.writer is not None
        out, _ = self.writer.communicate(timeout=120)
        assert out.startswith("done"), out

    def rotate(self, compress_previous: bool = True) -> Path:
        """kubelet: rename 0.log to 0.log.<time>, the runtime reopens 0.log,
        and the rotated file before it is gzip-compressed."""
        self.rotations += 1
        rotated = self.dir / f"0.log.2026112{self.rotations}-000000"
        os.rename(self.log, rotated)
        if self.writer is not None and self.writer.poll() is None:
            self.writer.send_signal(signal.SIGUSR1)
        else:
            self.log.touch()
        if compress_previous:
            for old in sorted(self.dir.glob("0.log.*")):
                if old != rotated and not old.name.endswith(".gz"):
                    compress(old)
        return rotated


def compress(path: Path) -> None:
    with open(path, "rb") as src, gzip.open(str(path) + ".gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    path.unlink()


def received(out: Path) -> Counter:
    if not out.exists():
        return Counter()
    return Counter(line.rsplit(" ", 1)[-1] for line in out.read_text().splitlines())


def expect(counts: Counter, n: int, start: int = 0) -> tuple[list[str], int]:
    """Missing lines, and how many arrived more than once."""
    missing = [f"line-{i}" for i in range(start, start + n) if counts[f"line-{i}"] == 0]
    return missing, sum(v - 1 for v in counts.values() if v > 1)


def k8s_agent(tmp_path: Path, **env: str) -> tuple[Agent, Path]:
    out = tmp_path / "out.log"
    a = Agent(tmp_path / "agent", {"KUBERNETES": "true",
                                   "KUBERNETES_LOG_PATH": str(tmp_path / "logs" / "containers"),
                                   "FILES_START_AT": "beginning", **env},
              f"*  file://{out}\n")
    return a, out


@pytest.mark.parametrize("fmt", ["cri", "docker"])
def test_two_quick_rotations_at_20000_lines_a_second_lose_nothing(tmp_path, fmt):
    """Two kubelet rotations in quick succession while the writer appends
    20,000 lines/s: every line arrives, none twice (no kill)."""
    root = tmp_path / "logs"
    pod = Pod(root, "web-7d9f8c6b5-abc12")
    a, out = k8s_agent(tmp_path)
    a.start()
    try:
        n = 60_000
        pod.write(n, 20_000, fmt)
        time.sleep(1.0)
        pod.rotate()
        time.sleep(0.2)
        pod.rotate()  # the first rotated file is compressed now
        pod.wait()
        wait_for(lambda: sum(received(out).values()) >= n, 30, what=f"{n} lines")
        time.sleep(0.5)
        missing, dups = expect(received(out), n)
        assert missing == [] and dups == 0, f"{len(missing)} missing, {dups} duplicated"
        assert a.metric("logtrain_file_rotations_total") >= 2
        # stderr lines (every tenth) are severity 3: <11>; stdout 6: <14>
        text = out.read_text()
        assert "<11>1 " in text and "<14>1 " in text
        assert " web.default web-7d9f8c6b5-abc12 " in text.splitlines()[0]
    finally:
        a.stop()


def test_sigkill_restart_with_rotation_and_compression_while_down(tmp_path):
    """The agent is killed mid-stream; while it is down the file is rotated
    twice and the first rotated file compressed. After the restart every
    line arrives (duplicates, from the commit window before the kill, are
    reported, not failed)."""
    root = tmp_path / "logs"
    pod = Pod(root, "api-5f6d7c8b9-xyz98", namespace="shop")
    a, out = k8s_agent(tmp_path)
    a.start()
    try:
        pod.write(20_000, 10_000)
        pod.wait()
        wait_for(lambda: sum(received(out).values()) >= 5_000, 20, what="some lines")
        a.stop(signal.SIGKILL)
        pod.write(5_000, 20_000, start=20_000)
        pod.wait()
        pod.rotate()
        pod.write(5_000, 20_000, start=25_000)
        pod.wait()
        pod.rotate()  # the first rotated file (lines up to 25,000) is compressed
        pod.write(5_000, 20_000, start=30_000)
        pod.wait()
        assert list(pod.dir.glob("0.log.*.gz")), "the first rotated file was compressed"
        a.start()
        wait_for(lambda: not expect(received(out), 35_000)[0], 30, what="every line")
        missing, dups = expect(received(out), 35_000)
        print(f"after SIGKILL and two rotations while down: {dups} duplicates")
        assert missing == []
    finally:
        a.stop()


def test_copytruncate_and_new_files_and_names(tmp_path):
    """A file truncated in place (copytruncate) is read again from its start,
    and the lines written after the last read come from the copy; a container
    log appearing later is read from its first line; names that are not
    container logs are skipped."""
    root = tmp_path / "logs"
    pod = Pod(root, "job-x1y2z")
    (root / "containers" / "not-a-container-log.txt").write_text("ignored\n")
    a, out = k8s_agent(tmp_path, LOG_LEVEL="debug")
    a.start()
    try:
        pod.write(100, 1000)
        pod.wait()
        wait_for(lambda: sum(received(out).values()) >= 100, 10, what="100 lines")
        # copytruncate as logrotate does it, right after lines the agent has
        # not read yet: they are read from the copy
        with open(pod.log, "a") as f:
            f.write("".join(f"2026-11-25T00:00:00.000000Z stdout F line-{i}\n"
                            for i in range(2000, 2050)))
        shutil.copyfile(pod.log, str(pod.log) + ".1")
        os.truncate(pod.log, 0)
        pod.write(100, 1000, start=100)
        pod.wait()
        later = Pod(root, "late-abcde")
        later.write(50, 1000, start=1000)
        later.wait()
        wait_for(lambda: not expect(received(out), 100, 100)[0]
                 and not expect(received(out), 50, 1000)[0]
                 and not expect(received(out), 50, 2000)[0], 10, what="lines after truncation")
        missing, dups = expect(received(out), 200)
        assert missing == [] and dups == 0
        assert a.metric("logtrain_file_rotations_total", kind="copytruncate") == 1
        assert "not-a-container-log.txt" in a.log()
        assert "ignored" not in out.read_text()
    finally:
        a.stop()


def test_names_from_the_api_after_it_comes_back(tmp_path):
    """The agent tails with file-name names while the Kubernetes API is down,
    keeps tailing, and later lines get the Deployment's names once it answers
    (the real agent, a kubeconfig, the test API server over TLS)."""
    from peers import free_port, make_certs
    from test_kube_names import TOKEN, Api, kubeconfig, obj

    certs = make_certs(tmp_path / "certs")
    port = free_port()
    api = Api(tmp_path / "api", certs, port)
    api.set_objects([obj("Deployment", "store", "shop"),
                     obj("ReplicaSet", "web-7d4b9c", "shop", ("Deployment", "store")),
                     obj("Pod", "web-7d4b9c-x2x9z", "shop", ("ReplicaSet", "web-7d4b9c"))])
    cfg = kubeconfig(tmp_path / "kubeconfig", f"https://127.0.0.1:{port}", certs["ca.pem"], TOKEN)
    root = tmp_path / "logs"
    pod = Pod(root, "web-7d4b9c-x2x9z", namespace="shop")
    a, out = k8s_agent(tmp_path, KUBE_CONFIG=str(cfg), DATASOURCE_BACKOFF_MAX="0.5")
    a.start()
    try:
        pod.write(10, 100)
        pod.wait()
        wait_for(lambda: sum(received(out).values()) >= 10, 10, what="lines while the API is down")
        assert " web.shop web-7d4b9c-x2x9z " in out.read_text()
        api.start()
        deadline = time.monotonic() + 20
        i = 10
        while " store.shop " not in out.read_text() and time.monotonic() < deadline:
            pod.write(1, 100, start=i)
            pod.wait()
            i += 1
            time.sleep(0.3)
        assert " store.shop web-7d4b9c-x2x9z " in out.read_text()
        missing, dups = expect(received(out), i)
        assert missing == [] and dups == 0
        assert TOKEN not in a.log()
    finally:
        api.stop()
        a.stop()


def test_a_down_drain_makes_its_files_wait_and_others_flow(tmp_path):
    """While the drain of one pod's lines is down, its file is the buffer:
    nothing is dropped, memory stays flat, another pod's lines keep flowing;
    once the receiver is up every waiting line arrives."""
    from peers import LineSink, free_port

    root = tmp_path / "logs"
    slow, fast = Pod(root, "aaa-7d9f8c6b5-abc12"), Pod(root, "bbb-6c8d7e9f4-xyz12")
    port = free_port()
    out = tmp_path / "out.log"
    a = Agent(tmp_path / "agent", {"KUBERNETES": "true",
                                   "KUBERNETES_LOG_PATH": str(root / "containers"),
                                   "FILES_START_AT": "beginning", "DRAIN_BACKOFF_MAX": "0.3",
                                   "DRAIN_PAUSE_INTERVAL": "0.5"},
              f"aaa.default syslog+tcp://127.0.0.1:{port}\nbbb.default file://{out}\n").start()
    try:
        slow.write(100_000, 50_000)
        slow.wait()
        fast.write(2_000, 2_000)
        fast.wait()
        wait_for(lambda: not expect(received(out), 2_000)[0], 15, what="the other pod's lines")
        lag = a.metric("logtrain_file_lag_bytes", file=str(slow.link))
        peak = a.peak_rss_mib()
        assert lag > 1 << 20, f"the down drain's file is not waiting (lag {lag:.0f} bytes)"
        assert a.metric("logtrain_drain_dropped_total") == 0
        assert peak < 40, f"peak RSS {peak:.1f} MiB while 5 MB wait in the file"
        sink = LineSink(port)
        lines = sink.wait_lines(100_000, 60)
        got = Counter(x.rsplit(b" ", 1)[-1].decode() for x in lines)
        missing, dups = expect(got, 100_000)
        print(f"down drain: lag {lag / 1e6:.1f} MB while down, peak RSS {peak:.1f} MiB, "
              f"{dups} duplicates after it came back")
        assert missing == []
        assert a.metric("logtrain_drain_dropped_total") == 0
    finally:
        a.stop()



def polled_lines_arrive(tmp_path, pod_name: str, sysctl: str) -> None:
    """With inotify refused, 2,000 lines written across a rotation all arrive,
    once, and one warning names ``sysctl``."""
    pod = Pod(tmp_path / "logs", pod_name)
    a, out = k8s_agent(tmp_path)
    a.start()
    try:
        pod.write(1000, 2000)
        pod.wait()
        pod.rotate(compress_previous=False)
        pod.write(1000, 2000, start=1000)
        pod.wait()
        wait_for(lambda: not expect(received(out), 2000)[0], 15, what="polled lines")
        missing, dups = expect(received(out), 2000)
        assert missing == [] and dups == 0
        assert f"raise the sysctl {sysctl}" in a.log()
        assert a.log().count("inotify refused") == 1
    finally:
        a.stop()


def every_inotify_instance() -> list:
    """Every inotify instance this user may still have (max_user_instances)."""
    from logtrain.tail import Inotify

    held = []
    try:
        while True:
            held.append(Inotify())
    except OSError:
        return held


def test_without_inotify_the_files_are_polled(tmp_path):
    """When the kernel refuses an inotify instance (the original README's
    "too many open files"), one warning names the sysctl to raise and the
    files are polled: lines and rotations still arrive. The test takes every
    instance this user may have (fs.inotify.max_user_instances) first."""
    held = every_inotify_instance()
    try:
        assert held, "could not create any inotify instance"
        polled_lines_arrive(tmp_path, "poll-7d9f8c6b5-abc12", "fs.inotify.max_user_instances")
    finally:
        for i in held:
            i.close()


def test_when_inotify_watches_run_out_the_files_are_polled(tmp_path):
    """When the kernel refuses more watches (fs.inotify.max_user_watches),
    one warning names that sysctl and the files that could not be watched
    are polled: lines and a rotation still arrive, none lost or repeated.
    The test uses up this user's watches first, leaving it one instance."""
    from logtrain import _tail

    limit = int(Path("/proc/sys/fs/inotify/max_user_watches").read_text())
    held = every_inotify_instance()
    assert len(held) > 1, "could not create inotify instances"
    held.pop().close()  # the agent's
    spare = tmp_path / "spare"
    spare.mkdir()
    per = limit // len(held) + 1
    targets = []
    for i in range(per):
        f = spare / str(i)
        f.touch()
        targets.append(str(f))
    try:
        refused = False
        for ino in held:  # the same files, watched once per instance
            for path in targets:
                try:
                    ino.add_watch(path, _tail.IN_MODIFY)
                except OSError:
                    refused = True
                    break
            if refused:
                break
        assert refused, f"the kernel took {limit} watches and more"
        polled_lines_arrive(tmp_path, "nowatch-7d9f8c6b5-abc12", "fs.inotify.max_user_watches")
    finally:
        for i in held:
            i.close()


def test_long_cri_lines_are_joined_up_to_the_limit_then_split_and_counted(tmp_path):
    """CRI partial lines (P) are joined up to the closing F; a joined line
    past 1 MiB is emitted as it is, the rest follows as another packet, and
    the split is counted. Nothing of it is lost."""
    root = tmp_path / "logs"
    pod = Pod(root, "big-7d9f8c6b5-abc12")
    piece = "x" * 60_000
    with open(pod.log, "a") as f:
        f.write("2026-11-25T00:00:00.000000Z stdout P start-")
        f.write(piece + "\n")
        for _ in range(24):  # 25 pieces of 60 KB: 1.5 MB joined
            f.write(f"2026-11-25T00:00:00.000000Z stdout P {piece}\n")
        f.write("2026-11-25T00:00:00.000000Z stdout F -end\n")
        f.write("2026-11-25T00:00:01.000000Z stdout F short-line\n")
    a, out = k8s_agent(tmp_path, MAX_FRAME_SIZE="2M")
    a.start()
    try:
        wait_for(lambda: out.exists() and "short-line" in out.read_text(), 10, what="the lines")
        text = out.read_text()
        bodies = [line.split(" - - - ", 1)[1] for line in text.splitlines()]
        joined = "".join(b for b in bodies if b != "short-line")
        assert joined == "start-" + piece * 25 + "-end"
        assert len(bodies) == 3  # 1 MiB and more, the rest, the short line
        assert a.metric("logtrain_file_lines_split_total") == 1
    finally:
        a.stop()


def test_akkeris_lines_leave_as_the_original_sends_them(tmp_path):
    """AKKERIS=true: Akkeris names (app-space, dyno.podid) and, as the original
    logtrain sends container lines, severity 0 and facility 0 for both streams;
    without it stdout is 6 and stderr 3 (test_two_quick_rotations checks)."""
    root = tmp_path / "logs"
    pod = Pod(root, "myapp--web-7d9f8c6b5-abc12", namespace="prod")
    a, out = k8s_agent(tmp_path, AKKERIS="true")
    a.start()
    try:
        pod.write(20, 1000)  # every tenth line is stderr
        pod.wait()
        wait_for(lambda: not expect(received(out), 20)[0], 10, what="20 lines")
        lines = out.read_text().splitlines()
        assert all(line.startswith("<0>1 ") for line in lines), lines[:3]
        assert " myapp-prod web.7d9f8c6b5-abc12 " in lines[0]
    finally:
        a.stop()
