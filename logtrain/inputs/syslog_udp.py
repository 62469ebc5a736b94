"""Syslog over UDP: one message per datagram, RFC5424 or RFC3164.

Every wake-up drains the socket of what has arrived (up to BATCH datagrams)
into one batch. The socket is a plain non-blocking one watched by the gevent
hub, because a monkey-patched socket cannot tell "nothing more right now"
without parking the greenlet. Datagrams the kernel dropped because the
receive buffer was full are read from /proc/net/udp and shown as a metric.
"""

from __future__ import annotations

import _socket
import os
import socket

from gevent.socket import wait_read

from logtrain.inputs.base import Input
from logtrain.urls import hostport

BATCH = 512


class SyslogUDPInput(Input):
    name = "syslog_udp"

    def __init__(self, *args) -> None:
        super().__init__(*args)
        cfg = self.rt.config
        self.address = (cfg.bind_address, cfg.syslog_udp_port)
        self.sock: _socket.socket | None = None

    def describe(self) -> str:
        """Where it listens: the address bound once started (a port of 0 is a free one)."""
        try:
            address = self.sock.getsockname() if self.sock else self.address
        except OSError:  # closed
            address = self.address
        return f"{self.name} on {hostport(address)}"

    def start(self) -> None:
        family = socket.getaddrinfo(self.address[0], self.address[1], type=socket.SOCK_DGRAM)[0][0]
        s = _socket.socket(family, _socket.SOCK_DGRAM)
        s.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        s.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF, self.rt.config.udp_receive_buffer)
        s.bind(self.address)
        s.setblocking(False)
        self.sock = s
        self.rt.metrics.gauge("logtrain_input_udp_kernel_drops", self._kernel_drops, input=self.name)
        self.rt.tasks.spawn(self.name, self._run)

    def stop(self) -> None:
        self.rt.tasks.stop(self.name)
        if self.sock is not None:
            self.sock.close()

    def _run(self) -> None:
        s = self.sock
        fd = s.fileno()
        max_frame = self.rt.config.max_frame_size
        recv = s.recv
        while True:
            wait_read(fd)
            frames = []
            oversized = 0
            for _ in range(BATCH):
                try:
                    data = recv(65535)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    continue  # e.g. an ICMP error queued on the socket
                if len(data) > max_frame:
                    oversized += 1
                    continue
                data = data.rstrip(b"\r\n\x00")
                if data:
                    frames.append(data)
            if oversized:
                self.rt.metrics.inc("logtrain_input_frames_total", oversized, input=self.name)
                self.reject("oversized", oversized)
            if frames:
                packets = self.parse_frames(frames)
                if packets:
                    self.router.route(packets)

    def _kernel_drops(self) -> float:
        """The socket's drop counter (last column of /proc/net/udp{,6})."""
        try:
            inode = os.fstat(self.sock.fileno()).st_ino
        except (OSError, AttributeError):
            return 0
        for path in ("/proc/net/udp", "/proc/net/udp6"):
            try:
                with open(path) as f:
                    for line in f:
                        cols = line.split()
                        if len(cols) > 12 and cols[9] == str(inode):
                            return float(cols[-1])
            except OSError:
                pass
        return 0
