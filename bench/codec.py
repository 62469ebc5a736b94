"""Per-line work, Python reference against the compiled modules: lines per
second of each step on the same input, median of several runs, and the ratio;
then the memory a parsed packet holds (the frame it keeps included).

    python bench/codec.py [--lines 200000] [--runs 3]

Run by another checkout's interpreter (``/other/.venv/bin/python bench/codec.py``)
it measures that checkout's modules on the same data, for before/after figures.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable

from run import cri_lines, rfc5424_lines  # the same data as the relay benchmarks

from logtrain import serialize, syslog, tail


def timed(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    n = args.lines
    stream = rfc5424_lines(n, 200)
    chunks = [stream[i:i + 65536] for i in range(0, len(stream), 65536)]
    packets = syslog.parse_batch(syslog.Framer().feed(stream))[0]
    cri_text = cri_lines(n, 200)
    cri_chunks = [cri_text[i:i + 65536] for i in range(0, len(cri_text), 65536)]

    def frame_parse(framer_cls: type, parse_batch: Callable) -> Callable[[], object]:
        def run() -> None:
            f = framer_cls()
            for c in chunks:
                parse_batch(f.feed(c))
        return run

    def batches(fmt: Callable, *extra: object) -> Callable[[], object]:
        def run() -> None:
            for i in range(0, n, 500):
                fmt(packets[i:i + 500], *extra)
        return run

    def tail_parse(splitter_cls: type, parser_cls: type) -> Callable[[], object]:
        def run() -> None:
            s, p = splitter_cls(), parser_cls("node-1", "app")
            for c in cri_chunks:
                p.parse_batch(s.feed(c))
        return run

    steps = [
        ("frame + parse RFC5424", frame_parse(syslog.FramerPy, syslog.parse_batch_py),
         frame_parse(syslog.Framer, syslog.parse_batch)),
        ("format RFC5424 (newline)", batches(syslog.format_rfc5424_py),
         batches(syslog.format_rfc5424)),
        ("NDJSON packets", batches(serialize.ndjson_py), batches(serialize.ndjson)),
        ("Elasticsearch bulk", batches(serialize.es_bulk_py, "logs"),
         batches(serialize.es_bulk, "logs")),
        ("logplex body", batches(serialize.logplex_py), batches(serialize.logplex)),
        ("split + parse CRI lines", tail_parse(tail.LineSplitterPy, tail.CRIParserPy),
         tail_parse(tail.LineSplitter, tail.CRIParser)),
    ]
    print(f"{n:,} lines of about 200 bytes, median of {args.runs} runs"
          f" (logtrain from {syslog.__file__})")
    print(f"{'step':28s} {'Python lines/s':>15s} {'compiled lines/s':>17s} {'ratio':>7s}")
    for name, py, compiled in steps:
        a, b = timed(py, args.runs), timed(compiled, args.runs)
        print(f"{name:28s} {n / a:15,.0f} {n / b:17,.0f} {a / b:6.1f}x")
    relay = timed(lambda: [syslog.format_rfc5424(syslog.parse_batch(syslog.Framer().feed(c))[0])
                           for c in chunks], args.runs)
    print(f"{'relay: frame+parse+format':28s} {'':15s} {n / relay:17,.0f}")
    print(f"bytes held per parsed packet: {packet_bytes(stream[:20_000 * 201]):,.0f}")


def packet_bytes(stream: bytes) -> float:
    """Memory a batch of parsed packets holds, per packet: the packets, their
    fields, and the frames when they keep them (the frames list itself is freed)."""
    gc.collect()
    tracemalloc.start()
    frames = syslog.Framer().feed(stream)
    packets = syslog.parse_batch(frames)[0]
    del frames
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return held / len(packets)


if __name__ == "__main__":
    main()
