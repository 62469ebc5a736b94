"""A container runtime's log writer, as a separate process: appends numbered
lines in CRI format (or Docker json-file) to a file at a given rate, and
reopens the file on SIGUSR1, as containerd does when kubelet rotates a log.

    python tests/logwriter.py PATH COUNT RATE [cri|docker] [START]

Prints "done N" when it has written COUNT lines."""

from __future__ import annotations

import json
import signal
import sys
import time
from datetime import UTC, datetime


def main() -> None:
    path, count, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    fmt = sys.argv[4] if len(sys.argv) > 4 else "cri"
    start = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    state = {"f": open(path, "ab", buffering=0), "reopen": False}

    def reopen(*_: object) -> None:
        state["reopen"] = True

    signal.signal(signal.SIGUSR1, reopen)
    t0 = time.monotonic()
    batch = max(1, int(rate // 200))  # lines per write: 200 writes a second
    i = start
    while i < start + count:
        if state["reopen"]:
            state["reopen"] = False
            state["f"].close()
            state["f"] = open(path, "ab", buffering=0)
        ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        chunk = []
        for _ in range(min(batch, start + count - i)):
            stream = "stderr" if i % 10 == 9 else "stdout"
            if fmt == "docker":
                chunk.append(json.dumps({"log": f"line-{i}\n", "stream": stream, "time": ts}) + "\n")
            else:
                chunk.append(f"{ts} {stream} F line-{i}\n")
            i += 1
        state["f"].write("".join(chunk).encode())
        ahead = (i - start) / rate - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)
    state["f"].close()
    print(f"done {i - start}", flush=True)


if __name__ == "__main__":
    main()
