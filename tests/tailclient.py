"""A live-tail client for the tests: GET /tail with the standard library's
http.client (a real HTTP/1.1 client decoding the chunked body), read by a
thread into ``data`` until the stream ends or ``close`` is called."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from urllib.parse import urlencode


class TailClient:
    def __init__(self, port: int, hostnames: list[str], accept: str | None = None,
                 headers: dict | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        h = dict(headers or {})
        if accept:
            h["Accept"] = accept
        self.conn.request("GET", "/tail?" + urlencode([("hostname", x) for x in hostnames]),
                          headers=h)
        self.sock = self.conn.sock  # http.client lets go of it for a Connection: close answer
        self.resp = self.conn.getresponse()  # the head: the tail is attached from now on
        self.status = self.resp.status
        self.headers = dict(self.resp.headers)
        self.chunks: list[bytes] = []
        self.ended = False
        if self.status == 200:
            self.sock.settimeout(None)
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()
        else:
            self.chunks.append(self.resp.read())
            self.ended = True

    def _read(self) -> None:
        try:
            while data := self.resp.read1(65536):
                self.chunks.append(data)
        except (OSError, ValueError, http.client.HTTPException):
            pass
        self.ended = True

    @property
    def data(self) -> bytes:
        return b"".join(list(self.chunks))

    def lines(self) -> list[bytes]:
        return self.data.split(b"\n")[:-1]

    def json_lines(self) -> list[dict]:
        return [json.loads(x) for x in self.lines()]

    def events(self) -> list[tuple[str, dict]]:
        """Server-Sent Events as (event type, JSON data); comments skipped."""
        out = []
        for block in self.data.split(b"\n\n")[:-1]:
            kind, payload = "message", None
            for line in block.split(b"\n"):
                if line.startswith(b"event: "):
                    kind = line[7:].decode()
                elif line.startswith(b"data: "):
                    payload = json.loads(line[6:])
            if payload is not None:
                out.append((kind, payload))
        return out

    def wait(self, predicate, timeout: float = 20, what: str = "tail data") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; got {len(self.data)} bytes")
            time.sleep(0.05)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.conn.close()
