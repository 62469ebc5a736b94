"""A hand-written HTTP/2 client for hostile gRPC tests: grpcio never sends
half a message nor ignores its own limits, so the tests that need that speak
HTTP/2 frames (RFC 9113) themselves. It honours flow control (SETTINGS
initial window, WINDOW_UPDATE) and acknowledges the server's SETTINGS, so
what it sends is what a well-behaved but hostile peer could send."""

from __future__ import annotations

import select
import socket
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + \
        struct.pack(">I", stream) + payload


def literal(name: str, value: str) -> bytes:
    """An HPACK header field, literal without indexing, new name (RFC 7541 6.2.2)."""
    out = b"\x00"
    for s in (name.encode(), value.encode()):
        assert len(s) < 127
        out += bytes([len(s)]) + s
    return out


def grpc_headers(path: str) -> bytes:
    return b"".join(literal(k, v) for k, v in (
        (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "logtrain"),
        ("content-type", "application/grpc"), ("te", "trailers")))


class Conn:
    """One HTTP/2 connection opening gRPC streams that send part of a message."""

    def __init__(self, port: int) -> None:
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.s.sendall(PREFACE + frame(4, 0, 0, b""))
        self.buf = b""
        self.conn_win = self.initial = 65535
        self.win: dict[int, int] = {}
        self.dead = False

    def pump(self, timeout: float) -> None:
        """Reads what the server sent: window updates, SETTINGS (acknowledged), GOAWAY."""
        if not select.select([self.s], [], [], timeout)[0]:
            return
        data = self.s.recv(1 << 20)
        if not data:
            self.dead = True
            return
        self.buf += data
        while len(self.buf) >= 9:
            n = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + n:
                break
            kind, flags = self.buf[3], self.buf[4]
            sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            payload, self.buf = self.buf[9:9 + n], self.buf[9 + n:]
            if kind == 4 and not flags & 1:
                for i in range(0, len(payload), 6):
                    key, value = struct.unpack(">HI", payload[i:i + 6])
                    if key == 4:  # SETTINGS_INITIAL_WINDOW_SIZE
                        for k in self.win:
                            self.win[k] += value - self.initial
                        self.initial = value
                self.s.sendall(frame(4, 1, 0, b""))
            elif kind == 8:
                inc = int.from_bytes(payload, "big") & 0x7FFFFFFF
                if sid == 0:
                    self.conn_win += inc
                elif sid in self.win:
                    self.win[sid] += inc
            elif kind == 7:
                self.dead = True

    def partial_message(self, sid: int, path: str, announced: int, send: int) -> int:
        """Opens stream ``sid`` and sends ``send`` bytes of a message announced
        as ``announced`` bytes long, as far as flow control lets it within a
        second; returns the bytes sent."""
        self.win[sid] = self.initial - 5
        self.conn_win -= 5
        self.s.sendall(frame(1, 4, sid, grpc_headers(path))
                       + frame(0, 0, sid, b"\x00" + struct.pack(">I", announced)))
        sent, stuck = 0, time.monotonic()
        while sent < send and not self.dead:
            room = min(self.win[sid], self.conn_win, 16384, send - sent)
            if room <= 0:
                self.pump(0.1)
                if time.monotonic() - stuck > 1.0:
                    break
                continue
            self.s.sendall(frame(0, 0, sid, b"\x0a" * room))
            sent += room
            self.win[sid] -= room
            self.conn_win -= room
            stuck = time.monotonic()
            self.pump(0)
        return sent

    def close(self) -> None:
        self.s.close()
