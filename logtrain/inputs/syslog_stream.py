"""Syslog over TCP and over TLS: RFC6587 framing detected per frame, RFC5424
and RFC3164 messages.

Each connection is read in chunks; every chunk's complete frames become one
batch for the router. What a hostile or careless client can do is bounded here:

* Backpressure: before a chunk is parsed and routed, the connection waits
  while a drain its lines went to is congested, so however many connections
  push at once, each adds at most one chunk past the drain's high-water mark
  (200 full-speed senders used to overflow the buffer, each routing one more
  chunk before it looked).
* Fairness: a connection yields to the hub every YIELD_EVERY; gevent's recv
  returns without switching when bytes are waiting, so a flooding client
  would otherwise hold the process (health checks, other connections and
  drain reconnections waited for the whole flood).
* Memory: the bytes of unfinished frames count against the budget all input
  connections share (``rt.partial``); past it the largest holders are cut.
* Slots: a connection has FIRST_BYTES_TIMEOUT for its first bytes, then
  IDLE_TIMEOUT between reads; at MAX_CONNECTIONS the connection idle longest
  (at least EVICT_AFTER seconds) is closed to make room for the new one, so
  silent sockets cannot lock senders out.
"""

from __future__ import annotations

import socket
import time

import gevent
from gevent.pool import Pool
from gevent.server import StreamServer

from logtrain.inputs.base import Input
from logtrain.syslog import Framer, parse_batch
from logtrain.urls import hostport

READ_SIZE = 64 << 10
# A connection silent for less than this is never evicted to make room: it may
# be a sender between two lines, and a new client is refused instead.
EVICT_AFTER = 2.0
WAIT_SLICE = 1.0  # seconds between re-checks while a drain is congested
# A connection that always has data yields after this many seconds of work: a
# yield per chunk cost 8% of the relay's throughput; 2 ms slices made /health
# take 43 ms (median) during a flood, 0.5 ms slices 9 ms at full throughput.
YIELD_EVERY = 0.0005


class _Connection:
    """One client connection: its socket, when it last sent, and whether it was cut."""

    __slots__ = ("sock", "peer", "last", "last_yield", "cut_reason", "framer", "dropped")

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.last = self.last_yield = time.monotonic()
        self.cut_reason = ""
        self.framer = None
        self.dropped = 0  # unfinished bytes thrown away when it was cut

    def cut(self, reason: str) -> None:
        """Ends the connection from outside its reader: recv returns at once."""
        if self.cut_reason:
            return
        self.cut_reason = reason
        if self.framer is not None:
            # Free the bytes now: the reader may run only after many more
            # connections have been read, and until then they would still count.
            self.dropped = len(self.framer.buf)
            self.framer.buf = b""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class SyslogTCPInput(Input):
    name = "syslog_tcp"
    port_setting = "SYSLOG_TCP_PORT"

    def __init__(self, *args) -> None:
        super().__init__(*args)
        cfg = self.rt.config
        self.address = (cfg.bind_address, getattr(cfg, self.port_setting.lower()))
        self.conns: dict[_Connection, None] = {}  # insertion order: oldest first
        self.stopping = False
        self.server: StreamServer | None = None

    @property
    def active(self) -> int:
        return len(self.conns)

    def describe(self) -> str:
        """Where it listens: the address bound once started (a port of 0 is a free one)."""
        return f"{self.name} on {hostport(self.server.address if self.server else self.address)}"

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

    def _refused(self, reason: str, message: str, **fields: object) -> None:
        rt = self.rt
        rt.metrics.inc("logtrain_input_connections_rejected_total", input=self.name, reason=reason)
        held = rt.ratelimit.allow(("input-conn", self.name, reason))
        if held is not None:
            rt.log.warning(message, input=self.name, reason=reason,
                           since_last_report=held, **fields)

    def _make_room(self) -> bool:
        """At MAX_CONNECTIONS: closes the connection idle longest, if it has
        been idle long enough; False when every connection is busy."""
        now = time.monotonic()
        oldest = min(self.conns, key=lambda c: c.last, default=None)
        if oldest is None or now - oldest.last < EVICT_AFTER:
            return False
        self._refused("evicted_idle", "closed the longest-idle connection to make room",
                      peer=oldest.peer, idle_seconds=round(now - oldest.last, 1))
        oldest.cut("evicted_idle")
        del self.conns[oldest]
        return True

    def _handle(self, sock: socket.socket, addr: tuple) -> None:
        cfg = self.rt.config
        if len(self.conns) >= cfg.max_connections and not self._make_room():
            self._refused("max_connections", "connection refused: MAX_CONNECTIONS reached",
                          max_connections=cfg.max_connections)
            sock.close()
            return
        conn = _Connection(sock, addr[0] if addr else "")
        self.conns[conn] = None
        try:
            # The first bytes (a TLS handshake included) must come soon: a
            # silent socket only holds a slot.
            sock.settimeout(self._first_timeout())
            wrapped = self.wrap(sock)
            if wrapped is not None:
                conn.sock = wrapped
                self._read(conn)
        finally:
            self.conns.pop(conn, None)
            self.rt.partial.release(conn)
            sock.close()

    def _read(self, conn: _Connection) -> None:
        rt = self.rt
        cfg = rt.config
        framer = conn.framer = Framer(cfg.max_frame_size)
        sock = conn.sock
        router = self.router
        partial = rt.partial
        host = None  # the hostname of the last batch: its drains are waited for
        first = True
        while not self.stopping:
            try:
                data = sock.recv(READ_SIZE)
            except TimeoutError:
                reason = ("first_bytes_timeout" if first and self._first_timeout()
                          < (cfg.idle_timeout or float("inf")) else "idle_timeout")
                rt.metrics.inc("logtrain_input_connections_rejected_total", input=self.name,
                               reason=reason)
                rt.log.debug("closing silent connection", input=self.name, peer=conn.peer,
                             reason=reason)
                data = b""
            except OSError as e:  # ssl.SSLError included
                if not conn.cut_reason:
                    rt.log.debug("connection error", input=self.name, peer=conn.peer,
                                 error=str(e))
                data = b""
            if conn.cut_reason:
                if conn.cut_reason == "partial_budget":
                    self._refused("partial_budget", "connection cut: INPUT_PARTIAL_BUDGET full",
                                  peer=conn.peer, held_bytes=conn.dropped)
                return  # what it held unfinished is dropped with it
            got = len(data)
            if got:
                conn.last = time.monotonic()
                if first:
                    first = False
                    sock.settimeout(cfg.idle_timeout or None)
                elif host is not None:
                    # Look again now that the bytes are here: while this
                    # connection sat in recv, others may have filled the drain.
                    # Only the raw chunk is held while waiting, never its packets.
                    self._wait_room(router.drains_for(host))
            frames = framer.feed(data) if data else framer.finish()
            del data
            if host is None and frames:
                # The first frames of a connection: wait for their drains too,
                # or a thousand connections starting at once would each add a
                # chunk to a drain past its high-water mark.
                host = _first_hostname(frames)
                if host is not None:
                    self._wait_room(router.drains_for(host))
            errors = framer.errors
            if frames or errors.oversized or errors.bad_length or errors.truncated:
                packets = self.parse_frames(frames, errors)
                del frames
                if packets:
                    host = packets[-1].hostname
                    congested = router.route(packets)
                    del packets
                    self._wait_room(congested)
            if not got:
                return
            partial.update(conn, len(framer.buf))
            now = time.monotonic()
            if now - conn.last_yield > YIELD_EVERY:
                # Let the hub run: health checks, other connections, drains.
                conn.last_yield = now
                gevent.sleep(0)

    def _first_timeout(self) -> float:
        cfg = self.rt.config
        return min(cfg.first_bytes_timeout, cfg.idle_timeout or cfg.first_bytes_timeout)

    def _wait_room(self, drains) -> None:
        for drain in drains:
            while drain.congested and not self.stopping:
                drain.wait_space(WAIT_SLICE)


def _first_hostname(frames: list[bytes]) -> str | None:
    packets = parse_batch(frames[:4])[0]
    return packets[0].hostname if packets else None


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
            ssock.settimeout(self._first_timeout())
            ssock.do_handshake()
            return ssock
        except (OSError, gevent.Timeout) as e:  # ssl.SSLError included
            self._refused("tls_handshake", "TLS handshake failed", error=str(e))
            return None
