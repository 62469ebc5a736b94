"""Hostile HTTP clients at full size: the agent's peak RSS and /health latency.

Attacks (each against a fresh agent, its routes to a file:// drain):

  events    one 10 MiB NDJSON POST to /events
  syslog    10 MiB of short syslog lines POSTed to /syslog
  chunks    one chunked body of one-byte chunks, 36 MB on the wire
  chunks5   five of those at once
  heads     500 connections each sending 99 headers of 8 KiB, never finishing
  trickle   1,024 connections trickling a header byte every 2 s for 20 s

For each: peak RSS (VmHWM), RSS once the clients closed, /health latency
(median and max of samples on new connections), and the answers. HTTP_MAX_BODY
is 16 MiB for the two 10 MiB bodies and the default otherwise.

    python bench/hostile.py [--root TREE] [--only events,heads]

``--root`` runs the agent of another checkout (for before/after figures): its
tests/peers.py starts ``python -m logtrain`` from that tree.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

LINE = b"<14>1 2026-11-25T00:00:00Z web-1 api - - - "


def load_peers(root: Path):  # noqa: ANN201 - the peers module of that tree
    spec = importlib.util.spec_from_file_location("peers", root / "tests" / "peers.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def raw_post(port: int, head: bytes, chunks, out: list) -> None:  # noqa: ANN001
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    try:
        s.sendall(head)
        for c in chunks:
            s.sendall(c)
    except OSError:
        pass
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            got = s.recv(65536)
            if not got:
                break
            data += got
    except OSError:
        pass
    out.append(data[9:12].decode() or "closed")
    s.close()


def events_body() -> bytes:
    lines, n, size = [], 0, 0
    while size < 10 << 20:
        line = json.dumps({"hostname": "web-1", "tag": "api", "message": f"nd-{n:07d} " + "x" * 60})
        lines.append(line.encode() + b"\n")
        size += len(lines[-1])
        n += 1
    return b"".join(lines)


def one_byte_chunks(total: int):  # noqa: ANN201
    piece = b"1\r\nx\r\n" * 10000
    for _ in range(total // len(piece)):
        yield piece
    yield b"0\r\n\r\n"


def attack(name: str, port: int, out: list, stop: threading.Event) -> list[threading.Thread]:
    def t(fn, *a) -> threading.Thread:  # noqa: ANN001
        return threading.Thread(target=fn, args=a, daemon=True)

    if name == "events":
        body = events_body()
        head = b"POST /events HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body)
        return [t(raw_post, port, head, [body], out)]
    if name == "syslog":
        one = LINE + b"s\n"
        body = one * ((10 << 20) // len(one))
        head = b"POST /syslog HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body)
        return [t(raw_post, port, head, [body], out)]
    if name in ("chunks", "chunks5"):
        head = b"POST /syslog HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        return [t(raw_post, port, head, one_byte_chunks(36_000_000), out)
                for _ in range(5 if name == "chunks5" else 1)]
    if name == "heads":
        def heads() -> None:
            socks = []
            for _ in range(500):
                try:
                    s = socket.create_connection(("127.0.0.1", port), timeout=10)
                    s.sendall(b"GET /health HTTP/1.1\r\n")
                    for i in range(99):
                        s.sendall(b"X-Pad-%d: %s\r\n" % (i, b"p" * 8180))
                except OSError:
                    pass
                socks.append(s)
            out.append(f"{len(socks)} connections")
            time.sleep(3)
            for s in socks:
                s.close()
        return [t(heads)]
    if name == "trickle":
        def trickle() -> None:
            socks = []
            for _ in range(1024):
                try:
                    socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
                except OSError:
                    pass
            request = b"POST /syslog HTTP/1.1\r\nContent-Length: 5\r\nX: y\r\n"
            for b in request[:10]:
                for s in socks:
                    try:
                        s.send(bytes([b]))
                    except OSError:
                        pass
                time.sleep(2)
            out.append(f"{len(socks)} connections")
            for s in socks:
                s.close()
        return [t(trickle)]
    raise ValueError(name)


def run(peers, name: str) -> dict:  # noqa: ANN001
    d = Path(tempfile.mkdtemp(prefix=f"hostile-{name}-"))
    env = {"HTTP_EVENTS": "true", "HTTP_SYSLOG": "true", "STATS_INTERVAL": "0"}
    if name in ("events", "syslog"):
        env["HTTP_MAX_BODY"] = "16M"
    agent = peers.Agent(d, env, routes=f"* file://{d / 'out.log'}\n").start()
    try:
        out: list = []
        stop = threading.Event()
        threads = attack(name, agent.http_port, out, stop)
        for th in threads:
            th.start()
        samples = []
        while any(th.is_alive() for th in threads):
            samples.append(agent.health_ms(timeout=5))
            time.sleep(0.1)
        time.sleep(1)
        return {"attack": name, "peak_mib": round(agent.peak_rss_mib(), 1),
                "rss_after_mib": round(agent.rss_mib(), 1),
                "health_median_ms": round(statistics.median(samples), 1) if samples else None,
                "health_max_ms": round(max(samples), 1) if samples else None,
                "answers": sorted(set(map(str, out)))}
    finally:
        agent.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    ap.add_argument("--only", default="events,syslog,chunks,chunks5,heads,trickle")
    args = ap.parse_args()
    peers = load_peers(Path(args.root))
    for name in args.only.split(","):
        print(json.dumps(run(peers, name)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
