"""Receivers and senders the fault-injection tests (test_faults.py) and the
outage benchmark drive: a syslog TCP receiver that counts numbered lines and
can go down, never read, or reset its connections; a sender at a steady rate.

The receiver goes down the way a syslog server stopping cleanly does: it stops
listening, half-closes each connection (FIN) and reads until the sender has
closed its side, so that every line a sender wrote is counted; a "reset" is an
RST (SO_LINGER 0) after reading what had arrived.
"""

from __future__ import annotations

import random
import re
import socket
import struct
import threading
import time
from collections import Counter

SEQ = re.compile(rb"seq=(\d+)")
LINE = re.compile(rb"line-(\d+)")  # tests/logwriter.py's lines


class CountingSink:
    """Counts ``seq=N`` of every line received on 127.0.0.1:``port``."""

    def __init__(self, port: int = 0, never_read: bool = False, reset_every: float = 0.0,
                 pattern: re.Pattern = SEQ) -> None:
        self.port = port
        self.pattern = pattern
        self.never_read = never_read
        self.reset_every = reset_every  # mean seconds between RSTs of a connection
        self.seen: Counter = Counter()
        self.lock = threading.Lock()
        self.conns: set[socket.socket] = set()
        self.resets = 0
        self.connections = 0
        self.sock: socket.socket | None = None
        self.up = threading.Event()
        self.reading = threading.Event()  # cleared: accepts, never reads (until resume)
        if not never_read:
            self.reading.set()
        self.start()

    def start(self) -> CountingSink:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.never_read:  # before listen(), or the window is already scaled
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.up.set()
        threading.Thread(target=self._accept, args=(self.sock,), daemon=True).start()
        return self

    def resume(self) -> None:
        """Starts reading the connection it left unread, and listening again."""
        self.reading.set()
        self.start()

    def stop(self) -> None:
        """Down: no more connections; open ones half-closed and read to their end."""
        self.up.clear()
        try:  # wakes the accepting thread (a bare close would leave it listening)
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for c in list(self.conns):
            try:
                c.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _accept(self, lsock: socket.socket) -> None:
        while True:
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            self.connections += 1
            self.conns.add(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()
            if not self.reading.is_set():
                # One stuck connection, later ones refused: a hung receiver,
                # not a kernel that keeps accepting into fresh buffers.
                lsock.shutdown(socket.SHUT_RDWR)
                lsock.close()
                return

    def _read(self, conn: socket.socket) -> None:
        rest = b""
        next_reset = time.monotonic() + random.expovariate(1 / self.reset_every) \
            if self.reset_every else None
        try:
            while not self.reading.wait(0.2):
                pass
            conn.settimeout(0.2)
            while True:
                try:
                    chunk = conn.recv(1 << 16)
                except TimeoutError:
                    chunk = None
                if chunk == b"":
                    break
                if chunk:
                    data = rest + chunk
                    cut = data.rfind(b"\n") + 1
                    rest = data[cut:]
                    found = self.pattern.findall(data[:cut])
                    with self.lock:
                        self.seen.update(map(int, found))
                if next_reset and time.monotonic() > next_reset:
                    self._reset(conn, rest)
                    return
        finally:
            self.conns.discard(conn)
            conn.close()

    def _reset(self, conn: socket.socket, rest: bytes) -> None:
        """An RST after reading what had arrived (a partial last line is lost
        with the connection, as a real receiver loses it)."""
        conn.setblocking(False)
        try:
            while chunk := conn.recv(1 << 16):
                data = rest + chunk
                cut = data.rfind(b"\n") + 1
                rest = data[cut:]
                with self.lock:
                    self.seen.update(map(int, self.pattern.findall(data[:cut])))
        except OSError:
            pass
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.resets += 1

    def count(self) -> tuple[int, int]:
        """(distinct lines, duplicates)."""
        with self.lock:
            return len(self.seen), sum(self.seen.values()) - len(self.seen)

    def missing(self, n: int) -> list[int]:
        with self.lock:
            return [i for i in range(n) if i not in self.seen]


class RateSender(threading.Thread):
    """Writes numbered RFC5424 lines into a TCP input at ``rate`` lines/s, in
    writes of ``rate / 100`` lines, until ``finish``."""

    def __init__(self, port: int, rate: int, host: str = "faulthost") -> None:
        super().__init__(daemon=True)
        self.port, self.rate, self.host = port, rate, host.encode()
        self.sent = 0
        self.halt = threading.Event()
        self.stalled = 0.0  # seconds the input held the sender back

    def run(self) -> None:
        per = max(1, self.rate // 100)
        with socket.create_connection(("127.0.0.1", self.port)) as s:
            start = time.monotonic()
            while not self.halt.is_set():
                due = start + self.sent / self.rate
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                lines = b"".join(b"<14>1 2026-11-25T00:00:00Z %s app - - - seq=%d pad=%s\n"
                                 % (self.host, i, b"x" * 100)
                                 for i in range(self.sent, self.sent + per))
                t = time.monotonic()
                try:
                    s.sendall(lines)
                except OSError:  # the agent went away (a test killed it)
                    return
                self.stalled += max(0.0, time.monotonic() - t - 0.05)
                self.sent += per

    def finish(self) -> int:
        self.halt.set()
        self.join(10)
        return self.sent
