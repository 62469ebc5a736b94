"""A connection of the HTTP server and the request body read from it.

``Conn`` holds the socket, its receive buffer and the state the server's
connection management looks at; ``Body`` reads a request body from it in
pieces, within the route's limit, decoding chunked framing with
``logtrain.http11.ChunkedReader``; ``Stream`` is a response body written as it
is made (live tails), in place of bytes.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from logtrain.http11 import ChunkedReader, HTTPError, Request

READ = 32 << 10  # bytes per read: one piece of a body
CHUNK_WINDOW = 8 << 10  # wire bytes of a chunked body decoded per read


class Conn:
    """A connection, its receive buffer and what the server knows of it."""

    __slots__ = ("sock", "peer", "buf", "pos", "state", "since", "evicted", "reserve")

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.buf = bytearray()
        self.pos = 0
        self.state = "head"  # head, idle (between requests), busy, linger
        self.since = time.monotonic()
        self.evicted = False
        self.reserve = False  # over MAX_CONNECTIONS: one bodiless GET, then closed

    def cut(self, reason: str) -> None:
        """The inputs' shared budget is over (a stream input found it so) and
        this connection holds the most: its greenlet sees EOF and closes it."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def compact(self) -> None:
        if self.pos == len(self.buf):
            self.buf = bytearray()  # gives a grown buffer's memory back
        elif self.pos:
            del self.buf[:self.pos]
        self.pos = 0


class Body:
    """A request body as a handler reads it: ``read(size)`` returns the next
    piece (at most ``size`` bytes; b"" at the end), sending ``100 Continue`` first if the
    client waits for it. Raises HTTPError past the route's limit (the wire bytes
    of chunk framing count) or for a malformed or truncated body."""

    __slots__ = ("conn", "left", "chunks", "limit", "wire", "expect", "done")

    def __init__(self, conn: Conn, req: Request, limit: int, max_trailer: int) -> None:
        self.conn = conn
        self.left = req.length
        self.chunks = ChunkedReader(max_trailer) if req.chunked else None
        self.limit = limit
        self.wire = 0
        self.expect = req.expect_continue
        self.done = not req.chunked and not req.length

    def read(self, size: int = READ) -> bytes:
        if self.done:
            return b""
        conn = self.conn
        if self.expect:
            conn.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.expect = False
        if self.chunks is None:
            have = len(conn.buf) - conn.pos
            if have:
                n = min(have, self.left, size)
                data = bytes(conn.buf[conn.pos:conn.pos + n])
                conn.pos += n
            else:
                data = conn.sock.recv(min(size, self.left))
                if not data:
                    raise HTTPError("400 Bad Request", "truncated", "body shorter than its Content-Length")
            self.left -= len(data)
            self.done = not self.left
            return data
        chunks = self.chunks
        while True:
            if conn.pos < len(conn.buf):
                # a window at a time: one-byte chunks cost a loop turn each,
                # and the caller yields between reads
                data, pos = chunks.read(conn.buf, conn.pos, min(len(conn.buf), conn.pos + min(size, CHUNK_WINDOW)))
                self.wire += pos - conn.pos
                conn.pos = pos
                if self.wire > self.limit:
                    raise HTTPError("413 Content Too Large", "body_too_large",
                                    f"body over the limit ({self.limit} bytes, chunk framing included)")
                if data or chunks.done:
                    self.done = chunks.done
                    return data
            conn.compact()
            more = conn.sock.recv(size)
            if not more:
                raise HTTPError("400 Bad Request", "truncated", "chunked body ended early")
            conn.buf += more

    def read_all(self) -> bytes:
        parts = []
        while not self.done:
            parts.append(self.read())
        return b"".join(parts)


class Stream:
    """A response whose body is written as it is made, for as long as the
    client stays (a live tail). A handler returns one in place of the body's
    bytes; the server sends the head (chunked on HTTP/1.1, delimited by the
    connection's close on HTTP/1.0), calls ``run`` with the socket and a
    function that sends one piece, ends the body, and closes the connection."""

    def run(self, sock: socket.socket, send: Callable[[bytes], None]) -> None:
        raise NotImplementedError

    def serve(self, conn: Conn, chunked: bool, status: str, headers: list[tuple[str, str]]) -> None:
        sock = conn.sock
        head = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers]
        head += ["Transfer-Encoding: chunked"] if chunked else []
        conn.state = "stream"  # never evicted: it holds a request, not an idle slot
        sock.sendall(("\r\n".join(head + ["Connection: close"]) + "\r\n\r\n").encode("latin-1"))

        def send(data: bytes) -> None:
            if data:
                sock.sendall(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)

        self.run(sock, send)
        if chunked:
            sock.sendall(b"0\r\n\r\n")  # ended by the agent (shutting down): a clean end
