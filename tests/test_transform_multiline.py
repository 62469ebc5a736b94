"""Multiline joining on the output of real Java, Python, Go and Node.js
programs (tests/data/multiline, made by generate.sh from the programs in
src/), through the compiled CRI parser and the Joiner, and through the real
agent tailing container logs (a TOML rule, a pod annotation served by the
test Kubernetes API), with rotation and restarts: every group arrives whole,
once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from peers import wait_for
from test_kubernetes_files import Pod, k8s_agent

from logtrain.tail import CRIParser
from logtrain.transform.multiline import Joiner, check_rules, parse_spec

DATA = Path(__file__).resolve().parent / "data" / "multiline"
TS = "2026-11-25T07:00:00.000000001Z"


def cri(lines: list[str], stream: str = "stdout") -> bytes:
    return "".join(f"{TS} {stream} F {x}\n" for x in lines).encode()


def groups_of(mode: str, text: str, chunk: int = 7) -> tuple[list[str], Joiner]:
    """The program's output as CRI lines, parsed by the compiled parser and
    joined, fed ``chunk`` lines at a time as reads would cut them."""
    j = Joiner(parse_spec(mode, "test"), 1.0, 1 << 20, 1000)
    parser = CRIParser("h", "t")
    lines = text.splitlines()
    out, offset = [], 0
    for i in range(0, len(lines), chunk):
        raw = cri(lines[i:i + chunk]).split(b"\n")[:-1]
        packets, bad = parser.parse_batch(raw)
        assert bad == 0
        out += j.feed(packets, raw, offset)
        offset += sum(len(x) + 1 for x in raw)
        if j.pending:
            # the checkpoint may not pass the first line of the pending group
            start = j.pending_start()
            emitted = sum(p.message.count("\n") + 1 for p in out)
            assert start == sum(len(x) + 1 for x in cri(lines[:emitted]).split(b"\n")[:-1])
    out += j.flush()
    return [p.message for p in out], j


@pytest.mark.parametrize("mode,groups", [("java", 8), ("python", 5), ("go", 8), ("nodejs", 11)])
def test_real_program_output_is_joined_into_its_groups(mode, groups):
    text = (DATA / f"{mode}.txt").read_text()
    got, _ = groups_of(mode, text)
    assert "\n".join(got) == text.rstrip("\n")  # nothing lost, reordered or altered
    assert len(got) == groups, got
    traces = [g for g in got if "\n" in g]
    for g in traces:
        first = g.split("\n", 1)[0]
        assert not first[:1].isspace(), g
    if mode == "java":
        assert traces[0].startswith("ERROR request failed\njava.lang.IllegalStateException")
        assert traces[0].endswith("\t... 1 more") and "\nCaused by: " in traces[0]
        assert got[-1].startswith('Exception in thread "main" java.lang.ArrayIndex')
    if mode == "python":
        assert traces[0].startswith("20") and "ERROR worker: job x failed\nTraceback" in traces[0]
        assert traces[0].endswith("RuntimeError: bad job 'x'")
        assert "\nThe above exception was the direct cause" in traces[0]
    if mode == "go":
        assert "ERROR cannot handle request -1" in traces[0] and traces[0].count("\n") == 13
        assert got[-1].startswith("panic: assignment to entry in nil map\n\ngoroutine 6")
        assert got[-1].endswith("boom.go:40 +0x14a")
    if mode == "nodejs":
        assert traces[0].startswith("Error: cannot handle request -1\n    at handle")


def test_python_traceback_from_a_live_program():
    """python3 itself, run now, with a chained exception on stderr."""
    code = ("def f():\n    raise KeyError('k')\n"
            "try:\n    f()\nexcept KeyError as e:\n    raise ValueError('v') from e\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    text = "before\n" + r.stderr + "after\n"
    got, _ = groups_of("python", text, chunk=3)
    assert got[0] == "before\n" + r.stderr.rstrip("\n")  # stderr joined to the line before it
    assert got[1] == "after" and len(got) == 2


def test_custom_start_pattern_and_limits():
    j = Joiner(parse_spec(r"start:^\[\d{4}-", "t"), 1.0, 60, 3)
    parser = CRIParser("h", "t")
    lines = ["[2026-01] a", "  x", "  y", "  z", "[2026-02] b", "b" * 70, "[2026-03] c"]
    raw = cri(lines).split(b"\n")[:-1]
    packets, _ = parser.parse_batch(raw)
    got = [p.message for p in j.feed(packets, raw, 0) + j.flush()]
    # at most 3 lines a group; 60 bytes: the long line goes on its own
    assert got == ["[2026-01] a\n  x\n  y", "  z", "[2026-02] b", "b" * 70, "[2026-03] c"]
    assert j.limited == 2


def test_streams_are_joined_apart_and_bad_rules_refused():
    j = Joiner(parse_spec("java", "t"), 1.0, 1 << 20, 100)
    parser = CRIParser("h", "t")
    raw = (cri(["Exception in thread x"]) + cri(["warning on stderr"], "stderr")
           + cri(["\tat A.b(A.java:1)"])).split(b"\n")[:-1]
    packets, _ = parser.parse_batch(raw)
    got = sorted(p.message for p in j.feed(packets, raw, 0) + j.flush())
    assert got == ["Exception in thread x\n\tat A.b(A.java:1)", "warning on stderr"]
    for bad in ([{"files": "*", "mode": "cobol"}], [{"files": "*"}],
                [{"files": "*", "start": "(a)\\1"}], [{"mode": "java"}]):
        with pytest.raises(ValueError):
            check_rules(bad)


# ---------------------------------------------------------------- the real agent

def java_groups(copies: int, start: int = 0) -> list[list[str]]:
    """The Java program's output repeated, each group's first line numbered."""
    text = (DATA / "java.txt").read_text()
    got, _ = groups_of("java", text)
    out = []
    for k in range(start, start + copies):
        for n, g in enumerate(got):
            lines = g.split("\n")
            out.append([f"{lines[0]} #{k}.{n}"] + lines[1:])
    return out


def write_groups(path: Path, groups: list[list[str]], pause_every: int = 0) -> None:
    with open(path, "ab") as f:
        for i, g in enumerate(groups):
            f.write(cri(g))
            if pause_every and i % pause_every == pause_every - 1:
                f.flush()
                time.sleep(0.01)


def received_groups(out: Path) -> Counter:
    if not out.exists():
        return Counter()
    # newline framing writes a message's newlines as spaces
    return Counter(line.split(" - - - ", 1)[1] for line in out.read_text().splitlines())


def expected(groups: list[list[str]]) -> Counter:
    return Counter(" ".join(g) for g in groups)


def _toml(tmp_path: Path, body: str) -> str:
    p = tmp_path / "logtrain.toml"
    p.write_text(body)
    return str(p)


def test_agent_joins_with_rotation_and_restart(tmp_path):
    """A TOML rule (java for web-* pods); the file rotated while the writer
    goes on, the agent stopped (SIGTERM) and started between two halves of a
    group, and killed (SIGKILL) once: every group arrives whole, none is
    lost, and none twice except across the kill."""
    root = tmp_path / "logs"
    pod = Pod(root, "web-7d9f8c6b5-abc12")
    other = Pod(root, "db-5f6d7c8b9-xyz98")
    cfg = _toml(tmp_path, '[[multiline]]\nfiles = "*/web-*"\nmode = "java"\n')
    a, out = k8s_agent(tmp_path, LOGTRAIN_CONFIG=cfg, MULTILINE_TIMEOUT="0.3")
    a.start()
    try:
        first = java_groups(40)
        write_groups(pod.log, first[:200], pause_every=13)
        pod.rotate(compress_previous=False)
        write_groups(pod.log, first[200:])
        write_groups(other.log, [["\tnot joined"], ["\tnot joined either"]])
        want = expected(first)
        wait_for(lambda: sum(received_groups(out).values()) >= len(first) + 2, 20,
                 what="every group")
        got = received_groups(out)
        assert got["\tnot joined"] == 1 and got["\tnot joined either"] == 1  # no rule for db-*
        del got["\tnot joined"], got["\tnot joined either"]
        assert got == want
        # stopped between the lines of a group: its first half is not committed
        second = java_groups(3, start=40)
        trace = next(i for i, g in enumerate(second) if len(g) > 3)
        with open(pod.log, "ab") as f:
            f.write(cri(second[trace][:2]))
        time.sleep(0.1)
        a.stop()
        with open(pod.log, "ab") as f:
            f.write(cri(second[trace][2:]))
        write_groups(pod.log, second[trace + 1:])
        a.start()
        want += expected(second[trace:])
        wait_for(lambda: received_groups(out) - Counter(["\tnot joined", "\tnot joined either"])
                 == want, 20, what="the groups after the restart, whole and once")
        # killed: whole groups, maybe some twice, none lost
        third = java_groups(20, start=50)
        write_groups(pod.log, third, pause_every=7)
        time.sleep(0.2)
        os.kill(a.proc.pid, signal.SIGKILL)
        a.proc.wait()
        a.start()
        want += expected(third)
        wait_for(lambda: not (want - received_groups(out)), 20, what="every group after the kill")
        extra = received_groups(out) - want - Counter(["\tnot joined", "\tnot joined either"])
        assert set(extra) <= set(want), "a group was split or altered"
    finally:
        a.stop()


def test_pod_annotation_selects_the_mode(tmp_path):
    from peers import free_port, make_certs
    from test_kube_names import TOKEN, Api, kubeconfig, obj

    certs = make_certs(tmp_path / "certs")
    port = free_port()
    api = Api(tmp_path / "api", certs, port)
    api.set_objects([obj("Pod", "worker-0", "shop",
                         annotations={"logtrain.akkeris.io/multiline": "python"})])
    cfg = kubeconfig(tmp_path / "kubeconfig", f"https://127.0.0.1:{port}", certs["ca.pem"], TOKEN)
    api.start()
    pod = Pod(tmp_path / "logs", "worker-0", namespace="shop")
    plain = Pod(tmp_path / "logs", "plain-0", namespace="shop")
    a, out = k8s_agent(tmp_path, KUBE_CONFIG=str(cfg), MULTILINE_TIMEOUT="0.3")
    a.start()
    try:
        text = (DATA / "python.txt").read_text()
        got, _ = groups_of("python", text)
        # the API's answer renames the lines (worker.shop -> worker-0.shop) and
        # brings the annotation; the next rescan gives the file its joiner
        n = 0

        def resolved() -> bool:
            nonlocal n
            n += 1
            with open(pod.log, "ab") as f:
                f.write(cri([f"probe {n}"]))
            return out.exists() and " worker-0.shop " in out.read_text()

        wait_for(resolved, 15, 0.3, what="names from the API")
        time.sleep(1.5)
        with open(pod.log, "ab") as f:
            f.write(cri(text.splitlines()))
        with open(plain.log, "ab") as f:  # no annotation: line by line
            f.write(cri(text.splitlines()))
        wait_for(lambda: all(" ".join(g.split("\n")) in received_groups(out) for g in got), 15,
                 what="the Python groups joined")
        wait_for(lambda: received_groups(out)["RuntimeError: bad job 'x'"] == 1, 10,
                 what="the other pod's lines, one by one")
    finally:
        a.stop()
        api.stop()
