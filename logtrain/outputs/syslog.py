"""syslog+tcp://, syslog+tls:// and syslog+udp:// (also syslog://): RFC5424 on the wire.

Query options: ``framing=newline|octet`` (streams), ``ca=BASE64PEM`` and
``insecure=true`` (TLS), ``maxlen=BYTES`` (UDP payload limit, default
UDP_MAX_PAYLOAD).
"""

from __future__ import annotations

import select
import socket
from typing import Any

from logtrain.outputs.base import Connection, Output
from logtrain.packet import Packet
from logtrain.runtime import Runtime
from logtrain.syslog import format_datagrams, format_rfc5424
from logtrain.tlsopts import decode_ca
from logtrain.trust import open_socket
from logtrain.urls import DrainURL

DEFAULT_PORTS = {"syslog+tcp": 514, "syslog+udp": 514, "syslog": 514, "syslog+tls": 6514}


def _address(url: DrainURL) -> tuple[str, int]:
    if not url.host:
        raise ValueError("no host in the URL")
    return url.host, url.port or DEFAULT_PORTS[url.scheme]


class StreamConnection(Connection):
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, items: list[Any]) -> None:
        if self._peer_closed():
            raise ConnectionResetError("the receiver closed the connection")
        self.sock.sendall(items[0] if len(items) == 1 else b"".join(items))

    def _peer_closed(self) -> bool:
        # A syslog receiver never talks back, so readable means it hung up (or a
        # TLS close_notify arrived). Checking before each write keeps a restart
        # of the receiver from swallowing the write that would discover it.
        r, _, _ = select.select([self.sock], [], [], 0)
        if not r:
            return False
        # Never block here: readable TLS may be only a session ticket, with no
        # application data behind it.
        timeout = self.sock.gettimeout()
        self.sock.settimeout(0)
        try:
            return self.sock.recv(4096) == b""
        except BlockingIOError:
            return False
        except OSError as e:
            # a TLS record that is not complete yet is no hang-up
            return type(e).__name__ != "SSLWantReadError"
        finally:
            self.sock.settimeout(timeout)

    def close(self) -> None:
        # Read what the receiver sent (TLS session tickets) before closing:
        # unread input makes the kernel send RST, and an RST can make the
        # receiver discard our last lines it has not read yet.
        for _ in range(8):
            if self._peer_closed() or not select.select([self.sock], [], [], 0)[0]:
                break
        self.sock.close()


class TCPOutput(Output):
    def __init__(self, url: DrainURL, rt: Runtime) -> None:
        super().__init__(url, rt)
        self.address = _address(url)
        self.octet = url.octet_framing()

    def encode(self, packets: list[Packet]) -> tuple[bytes, int]:
        data = format_rfc5424(packets, self.octet)
        return data, len(data)

    def destination(self) -> tuple[str, int, str]:
        return (*self.address, "tcp")

    def _socket(self) -> socket.socket:
        cfg = self.rt.config
        # Writes are whole batches already: Nagle would only hold a lone line
        # back until the peer's delayed ACK (up to 40 ms of latency).
        sock = open_socket(*self.address, "tcp", cfg.drain_connect_timeout, self.guard,
                           ((socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
                            (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)))
        sock.settimeout(cfg.drain_write_timeout)
        return sock

    def connect(self) -> Connection:
        return StreamConnection(self._socket())


class TLSOutput(TCPOutput):
    """The TLS context is shared by every drain with the same CA and
    verification (tls.client_context), and taken at the first connection."""

    context: Any = None

    def __init__(self, url: DrainURL, rt: Runtime) -> None:
        super().__init__(url, rt)
        decode_ca(url)
        url.flag("insecure")

    @classmethod
    def check(cls, url: DrainURL, rt: Runtime) -> tuple[str, int, str]:
        return cls(url, rt).destination()  # builds no context: that is connect's

    def connect(self) -> Connection:
        if self.context is None:
            from logtrain import tls

            self.context = tls.client_context(self.url)
        sock = self._socket()
        try:
            return StreamConnection(self.context.wrap_socket(sock, server_hostname=self.address[0]))
        except Exception:
            sock.close()
            raise


class DatagramConnection(Connection):
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, items: list[Any]) -> None:
        send = self.sock.send
        for datagrams in items:
            for d in datagrams:
                send(d)

    def close(self) -> None:
        self.sock.close()


class UDPOutput(Output):
    def __init__(self, url: DrainURL, rt: Runtime) -> None:
        super().__init__(url, rt)
        self.address = _address(url)
        raw = url.query.get("maxlen")
        try:
            self.max_len = int(raw) if raw is not None else rt.config.udp_max_payload
        except ValueError:
            raise ValueError(f"maxlen={raw!r}: expected a number of bytes") from None
        if not 64 <= self.max_len <= 65507:
            raise ValueError(f"maxlen={self.max_len}: expected 64 to 65507 bytes")

    def encode(self, packets: list[Packet]) -> tuple[list[bytes], int]:
        datagrams = format_datagrams(packets, self.max_len)
        return datagrams, sum(map(len, datagrams))

    def destination(self) -> tuple[str, int, str]:
        return (*self.address, "udp")

    def connect(self) -> Connection:
        return DatagramConnection(open_socket(*self.address, "udp", None, self.guard))
