"""Helpers of the route-scale tests and bench/routes.py: a TCP receiver that
records when it first sees each hostname, and a sender that writes a line for
each of its hostnames every 10 ms into the agent's syslog TCP input,
reconnecting until the input listens."""

from __future__ import annotations

import socket
import threading
import time


class Sink:
    """A TCP receiver recording when it first sees each hostname."""

    def __init__(self) -> None:
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.first: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            c, _ = self.srv.accept()
            threading.Thread(target=self._read, args=(c,), daemon=True).start()

    def _read(self, c: socket.socket) -> None:
        buf = b""
        while data := c.recv(65536):
            now = time.monotonic()
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                parts = line.split(b" ", 3)
                if len(parts) > 2:
                    host = parts[2].decode()
                    self.first.setdefault(host, now)
                    self.counts[host] = self.counts.get(host, 0) + 1


class Sender:
    """Writes a line for each of ``hosts`` every 10 ms, reconnecting as needed."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.hosts: list[str] = []
        self.stop = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        s = None
        while not self.stop:
            try:
                if s is None:
                    s = socket.create_connection(("127.0.0.1", self.port), timeout=1)
                for h in list(self.hosts):
                    s.sendall(f"<14>1 2026-11-25T00:00:00Z {h} bench - - - probe\n".encode())
            except OSError:
                if s is not None:
                    s.close()
                s = None
            time.sleep(0.01)


def wait_first(sink: Sink, host: str, since: float, timeout: float) -> float | None:
    """Seconds from ``since`` to the first line of ``host`` at the sink; None after ``timeout``."""
    deadline = since + timeout
    while time.monotonic() < deadline:
        t = sink.first.get(host)
        if t is not None:
            return t - since
        time.sleep(0.005)
    return None
