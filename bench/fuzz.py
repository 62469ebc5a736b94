"""Fuzzes every parser with atheris (libFuzzer for Python) for a bounded time.

Each target feeds fuzzer-made input to a compiled parser and to its Python
reference and fails on a crash, on an exception other than the documented
ValueError, or on any difference between the two. The Python references are
instrumented for coverage; the compiled modules are exercised through them.

    python bench/fuzz.py                      # every target, 60 s each
    python bench/fuzz.py --seconds 300 framer cri
    python bench/fuzz.py --list

Needs atheris (pip install '.[fuzz]'). A failing input is written to
fuzz-crashes/ (libFuzzer's crash-* file) and the run exits non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

TARGETS = ("framer", "parse", "sd", "line_splitter", "cri", "docker", "json")
ROOT = Path(__file__).resolve().parent.parent


def _target(name: str):  # noqa: C901 - one small function per target
    import atheris

    with atheris.instrument_imports():
        from logtrain import sd, serialize, syslog, tail
        from logtrain.packet import Packet

    now = "2026-11-24T12:00:00.000000Z"
    syslog.now_rfc3339 = lambda: now  # both versions take the same 'now'
    syslog._syslog._bind(Packet, lambda: now, syslog._local_rfc3339)

    def chunks(fdp, data: bytes) -> list[bytes]:
        out, pos = [], 0
        while pos < len(data):
            step = fdp.ConsumeIntInRange(1, 64)
            out.append(data[pos:pos + step])
            pos += step
        return out

    def framer(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        max_frame = fdp.ConsumeIntInRange(1, 300)
        stream = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 4096))
        parts = chunks(fdp, stream)
        results = []
        for cls in (syslog.Framer, syslog.FramerPy):
            f = cls(max_frame=max_frame)
            frames = [x for c in parts for x in f.feed(c)] + f.finish()
            results.append((frames, f.errors.take()))
        f = syslog.Framer(max_frame=max_frame)
        whole = f.feed(stream) + f.finish()
        if results[0] != results[1] or whole != results[0][0]:
            raise AssertionError(f"framer mismatch on {stream!r} cut as {parts!r}")

    def parse(data: bytes) -> None:
        out = []
        for fn in (syslog.parse, syslog.parse_py):
            try:
                p = fn(data)
                out.append((p.to_dict(), p.raw, syslog.format_rfc5424([p], True),
                            syslog.format_rfc5424_py([p], True)))
            except ValueError as e:
                out.append(str(e))
        if out[0] != out[1] or (not isinstance(out[0], str) and out[0][2] != out[0][3]):
            raise AssertionError(f"parse or format mismatch on {data!r}: {out}")

    def sd_target(data: bytes) -> None:
        text = data.decode("utf-8", "surrogateescape")
        out = []
        for fn in (sd.parse_sd, sd.parse_sd_py):
            try:
                out.append(fn(text))
            except ValueError as e:
                out.append(str(e))
        if out[0] != out[1]:
            raise AssertionError(f"parse_sd mismatch on {text!r}: {out}")

    def line_splitter(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        m = fdp.ConsumeIntInRange(1, 100)
        stream = fdp.ConsumeBytes(4096)
        parts = chunks(fdp, stream)
        res = []
        for cls in (tail.LineSplitter, tail.LineSplitterPy):
            s = cls(m)
            res.append(([x for c in parts for x in s.feed(c)], s.cuts, s.flush()))
        if res[0] != res[1]:
            raise AssertionError(f"splitter mismatch on {stream!r}")

    def container(a_cls, b_cls):
        def run(data: bytes) -> None:
            fdp = atheris.FuzzedDataProvider(data)
            cap = fdp.ConsumeIntInRange(1, 64)
            lines = fdp.ConsumeBytes(8192).split(b"\n")
            a, b = a_cls("h", "t", cap), b_cls("h", "t", cap)
            for i in range(0, len(lines), 4):
                pa, ba = a.parse_batch(lines[i:i + 4])
                pb, bb = b.parse_batch(lines[i:i + 4])
                if [p.to_dict() for p in pa] != [p.to_dict() for p in pb] or ba != bb:
                    raise AssertionError(f"container parser mismatch on {lines[i:i + 4]!r}")
        return run

    def json_target(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        s = fdp.ConsumeUnicodeNoSurrogates(64) if fdp.ConsumeBool() else fdp.ConsumeUnicode(64)
        out = serialize.json_string(s)
        if out != serialize.json_string_py(s):
            raise AssertionError(f"json_string mismatch on {s!r}")
        back = json.loads(out.encode("utf-8"))
        if back != s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass"):
            raise AssertionError(f"json round trip lost {s!r}")
        p = Packet(6, 1, s, s[:5], now, s)
        if json.loads(serialize.ndjson([p]))["message"] != back:
            raise AssertionError(f"ndjson lost {s!r}")

    return {
        "framer": framer,
        "parse": parse,
        "sd": sd_target,
        "line_splitter": line_splitter,
        "cri": container(tail.CRIParser, tail.CRIParserPy),
        "docker": container(tail.DockerParser, tail.DockerParserPy),
        "json": json_target,
    }[name]


def run_one(name: str, seconds: int, crashes: Path) -> None:
    import atheris

    test = _target(name)
    crashes.mkdir(exist_ok=True)
    atheris.Setup([sys.argv[0], f"-max_total_time={seconds}", "-print_final_stats=1",
                   f"-artifact_prefix={crashes}/{name}-"], test)
    atheris.Fuzz()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("targets", nargs="*", default=list(TARGETS))
    ap.add_argument("--seconds", type=int, default=60, help="per target")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    crashes = ROOT / "fuzz-crashes"
    if args.list:
        print("\n".join(TARGETS))
        return 0
    if args.child:
        run_one(args.child, args.seconds, crashes)
        return 0
    failed = []
    for name in args.targets:
        if name not in TARGETS:
            ap.error(f"unknown target {name!r} (known: {', '.join(TARGETS)})")
        print(f"== {name}: {args.seconds} s", flush=True)
        # libFuzzer ends the process when its time is up: one process per target
        r = subprocess.run([sys.executable, __file__, "--child", name, "--seconds",
                            str(args.seconds)], env=dict(os.environ), cwd=ROOT,
                           capture_output=True, text=True)
        stats = [line for line in r.stderr.splitlines() if line.startswith(("stat::", "Done"))]
        print("\n".join(stats) or r.stderr[-2000:], flush=True)
        if r.returncode != 0:
            failed.append(name)
            print(r.stderr[-4000:], flush=True)
    print("failed: " + ", ".join(failed) if failed else "no crash, no mismatch")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
