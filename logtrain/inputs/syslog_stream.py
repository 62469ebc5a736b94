"""Syslog over TCP and over TLS: RFC6587 framing detected per frame, RFC5424
and RFC3164 messages.

Each connection is read in chunks; every chunk's complete frames become one
batch for the router. When a drain the batch went to is congested but healthy,
the connection stops reading until it has room (TCP backpressure).
"""

from __future__ import annotations

import socket

import gevent
from gevent.pool import Pool
from gevent.server import StreamServer

from logtrain.inputs.base import Input
from logtrain.syslog import Framer

READ_SIZE = 64 << 10
HANDSHAKE_TIMEOUT = 10.0


class SyslogTCPInput(Input):
    name = "syslog_tcp"
    port_setting = "SYSLOG_TCP_PORT"

    def __init__(self, *args) -> None:
        super().__init__(*args)
        cfg = self.rt.config
        self.address = (cfg.bind_address, getattr(cfg, self.port_setting.lower()))
        self.active = 0
        self.stopping = False
        self.server: StreamServer | None = None

    def describe(self) -> str:
        return f"{self.name} on {self.address[0]}:{self.address[1]}"

    def start(self) -> None:
        self.server = StreamServer(self.address, self._handle, spawn=Pool(), backlog=1024)
        self.server.start()
        self.rt.metrics.gauge("logtrain_input_connections", lambda: self.active, input=self.name)

    def stop(self) -> None:
        self.stopping = True
        if self.server is not None:
            self.server.stop(timeout=1)

    def wrap(self, sock: socket.socket) -> socket.socket | None:
        return sock

    def _handle(self, sock: socket.socket, addr: tuple) -> None:
        rt = self.rt
        if self.active >= rt.config.max_connections:
            rt.metrics.inc("logtrain_input_connections_rejected_total", input=self.name,
                           reason="max_connections")
            if rt.ratelimit.allow(("input-maxconn", self.name)) is not None:
                rt.log.warning("connection refused: MAX_CONNECTIONS reached", input=self.name,
                               max_connections=rt.config.max_connections)
            sock.close()
            return
        self.active += 1
        try:
            conn = self.wrap(sock)
            if conn is not None:
                self._read(conn, addr)
        finally:
            self.active -= 1
            sock.close()

    def _read(self, sock: socket.socket, addr: tuple) -> None:
        cfg = self.rt.config
        framer = Framer(cfg.max_frame_size)
        sock.settimeout(cfg.idle_timeout or None)
        router = self.router
        while not self.stopping:
            try:
                data = sock.recv(READ_SIZE)
            except TimeoutError:
                self.rt.metrics.inc("logtrain_input_connections_rejected_total", input=self.name,
                                    reason="idle_timeout")
                self.rt.log.debug("closing idle connection", input=self.name, peer=addr[0])
                data = b""
            except OSError as e:  # ssl.SSLError included
                self.rt.log.debug("connection error", input=self.name, peer=addr[0], error=str(e))
                data = b""
            frames = framer.feed(data) if data else framer.finish()
            if frames or framer.errors.oversized or framer.errors.bad_length or framer.errors.truncated:
                packets = self.parse_frames(frames, framer.errors)
                if packets:
                    for drain in router.route(packets):
                        while drain.congested and not self.stopping:
                            drain.space.wait(1.0)
            if not data:
                return


class SyslogTLSInput(SyslogTCPInput):
    name = "syslog_tls"
    port_setting = "SYSLOG_TLS_PORT"

    def start(self) -> None:
        from logtrain import tls

        self.context = tls.server_context(self.rt.config)
        super().start()

    def wrap(self, sock: socket.socket) -> socket.socket | None:
        try:
            ssock = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            ssock.settimeout(HANDSHAKE_TIMEOUT)
            ssock.do_handshake()
            return ssock
        except (OSError, gevent.Timeout) as e:  # ssl.SSLError included
            self.rt.metrics.inc("logtrain_input_connections_rejected_total", input=self.name,
                                reason="tls_handshake")
            if self.rt.ratelimit.allow(("input-tls", self.name)) is not None:
                self.rt.log.warning("TLS handshake failed", input=self.name, error=str(e))
            return None
