"""One Drain per endpoint URL: a bounded buffer, a pool of connections, retries.

Batches arrive already encoded (``Output.encode`` runs once per batch in the
caller), wait in a buffer bounded in bytes, and are written by one or more
writer greenlets, each owning one connection. Writers coalesce buffered batches
into one write. The pool grows while the buffer stays full and the endpoint is
healthy, and shrinks when a writer is idle or failing. Failures back off
exponentially with jitter; after DRAIN_PAUSE_AFTER consecutive failures the
drain is paused and tried once per DRAIN_PAUSE_INTERVAL. An outage is logged
when it starts, at most once a minute while it lasts, and when it ends.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable

import gevent
from gevent.event import Event

from logtrain.outputs.base import Output, Rejected
from logtrain.packet import Packet
from logtrain.runtime import Runtime
from logtrain.transform import drain_filter


class Ack:
    """Tells an input when every drain a batch was routed to has delivered it.

    Starts holding one reference (the router's own, released once the batch is
    handed to every drain) so that the callback cannot fire half way through the
    fan-out. ``ok`` is False when any drain dropped the batch.
    """

    __slots__ = ("pending", "ok", "callback")

    def __init__(self, callback: Callable[[bool], None]) -> None:
        self.pending = 1
        self.ok = True
        self.callback = callback

    def hold(self) -> None:
        self.pending += 1

    def done(self, ok: bool = True) -> None:
        if not ok:
            self.ok = False
        self.pending -= 1
        if self.pending == 0:
            self.callback(self.ok)


# Buffered bytes above which a healthy drain asks inputs to wait (see congested).
HIGH_WATER = 1 << 20

# A buffered entry: [item, nbytes, npackets, acks or None]
ITEM, NBYTES, NPACKETS, ACKS = range(4)


class Drain:
    def __init__(self, output: Output, rt: Runtime) -> None:
        cfg = rt.config
        self.output = output
        self.rt = rt
        self.name = output.url.safe
        self.cap = cfg.drain_buffer_size
        self.high_water = min(self.cap // 2, HIGH_WATER)
        self.max_writers = min(cfg.drain_max_connections,
                               output.max_connections or cfg.drain_max_connections)
        self.buf: deque[list] = deque()
        self.buffered = 0  # bytes in buf
        self.inflight = 0  # bytes taken by writers, not yet delivered
        self.data = Event()
        self.space = Event()
        self.space.set()
        self.room = Event()  # set while not backlogged (see backlogged)
        self.room.set()
        self.idle = Event()
        self.idle.set()
        self.writers: set[gevent.Greenlet] = set()
        self.connections = 0
        self.failures = 0  # consecutive
        self.failing_since = 0.0
        self.paused_until = 0.0
        self.last_grow = 0.0
        self.closed = False
        # the URL's filter parameters (logtrain/transform/filters.py); None: none
        self.filter = drain_filter(output.url, rt)
        m = rt.metrics
        m.gauge("logtrain_drain_buffer_bytes", lambda: self.buffered + self.inflight, drain=self.name)
        m.gauge("logtrain_drain_connections", lambda: self.connections, drain=self.name)
        m.gauge("logtrain_drain_paused", lambda: 1 if self.paused_until else 0, drain=self.name)
        self._spawn_writer()

    # ----------------------------------------------------------------- input side

    @property
    def congested(self) -> bool:
        """Holding more than ``high_water`` while the endpoint is taking data:
        inputs that can push back should wait. A healthy drain needs little
        buffer, so the rest of the cap stays free for outages; a failing
        endpoint is not waited for (its buffer fills, then drops), so it never
        stalls the other drains."""
        return self.buffered > self.high_water and self.failures == 0

    @property
    def backlogged(self) -> bool:
        """Holding more than ``high_water``, failing or not: a source that can
        wait without losing anything (a file) waits, and stays the buffer."""
        return self.buffered + self.inflight > self.high_water

    def put(self, packets: list[Packet], ack: Ack | None = None) -> bool:
        if self.filter is not None and not (packets := self.filter.apply(packets)):
            return True  # all filtered out (counted): delivered, as far as the input knows
        # the bound is on memory: batches a writer holds count too
        held = self.buffered + self.inflight
        if self.closed or held >= self.cap:
            return self._refuse(packets, ack, "closed" if self.closed else "buffer_full")
        item, nbytes = self.output.encode(packets)
        if held + nbytes > self.cap:
            return self._refuse(packets, ack, "buffer_full")
        if ack is not None:
            ack.hold()
        self.buf.append([item, nbytes, len(packets), [ack] if ack else None])
        self.buffered += nbytes
        if self.buffered > self.high_water:
            self.space.clear()
        if self.buffered + self.inflight > self.high_water:
            self.room.clear()
        self.idle.clear()
        self.data.set()
        if not self.writers:
            self._spawn_writer()
        elif (
            self.buffered > 2 * self.output.max_write
            and len(self.writers) < self.max_writers
            and self.failures == 0
            and time.monotonic() - self.last_grow > 0.5
        ):
            self.last_grow = time.monotonic()
            self._spawn_writer()
        return True

    def _refuse(self, packets: list[Packet], ack: Ack | None, reason: str) -> bool:
        if ack is not None:
            ack.ok = False  # not held for this drain: nothing to release
        self._drop(len(packets), reason, None)
        return False

    def wait_space(self, timeout: float) -> None:
        """Blocks while the drain is congested, at most ``timeout`` seconds."""
        if self.congested:
            self.space.wait(timeout)

    def flush(self, timeout: float) -> bool:
        """Waits until everything buffered has been delivered; False on timeout."""
        return self.idle.wait(timeout)

    def close(self, timeout: float) -> None:
        """Stops taking packets, delivers what is buffered for up to ``timeout``
        seconds, then drops (counted) what is left and closes the connections."""
        self.closed = True
        self.data.set()
        self.flush(timeout)
        gevent.killall(list(self.writers), block=True, timeout=1)
        left = sum(e[NPACKETS] for e in self.buf)
        if left:
            acks = [a for e in self.buf if e[ACKS] for a in e[ACKS]]
            self.buf.clear()
            self.buffered = 0
            self.room.set()
            # the acks were held by put(): release them as failed
            self._drop(left, "shutdown", None)
            for a in acks:
                a.done(False)
        self.rt.metrics.remove(drain=self.name)

    # ----------------------------------------------------------------- writers

    def _spawn_writer(self) -> None:
        g = gevent.spawn(self._writer)
        self.writers.add(g)
        g.link(lambda g: self.writers.discard(g))

    def _take(self) -> list[list]:
        entries = []
        size = 0
        limit = self.output.max_write
        buf = self.buf
        while buf and (not entries or size + buf[0][NBYTES] <= limit):
            e = buf.popleft()
            size += e[NBYTES]
            entries.append(e)
        self.buffered -= size
        self.inflight += size
        if self.buffered <= self.high_water:
            self.space.set()
        return entries

    def _requeue(self, entries: list[list]) -> None:
        size = sum(e[NBYTES] for e in entries)
        self.buf.extendleft(reversed(entries))
        self.inflight -= size
        self.buffered += size
        if self.buffered > self.high_water:
            self.space.clear()
        # Wake the other writers: they went back to waiting when this one took
        # the entries, and if it now retires nobody else would look at them
        # until the next put (lines sat in the buffer after a receiver restart).
        self.data.set()

    def _finish(self, entries: list[list], dropped: int = 0, reason: str = "",
                failed: set[int] | None = None) -> None:
        """Settles a write, the one place that decides a batch's fate: all
        delivered, or ``dropped`` packets lost for ``reason`` (all of them
        when ``failed`` is None, else those of the entries at the indexes in
        ``failed``). Each packet is counted once, as sent or as dropped, and
        every batch that lost a packet is acknowledged as failed."""
        total = sum(e[NPACKETS] for e in entries)
        self.inflight -= sum(e[NBYTES] for e in entries)
        if self.buffered + self.inflight <= self.high_water:
            self.room.set()
        dropped = min(dropped, total)
        # counted before the acks fire, so that a callback sees its delivery counted
        if total > dropped:
            self.rt.metrics.inc("logtrain_drain_sent_total", total - dropped, drain=self.name)
        if dropped:
            self._drop(dropped, reason, None)
        for i, e in enumerate(entries):
            if e[ACKS]:
                ok = not dropped or (failed is not None and i not in failed)
                for a in e[ACKS]:
                    a.done(ok)
        if not self.buf and not self.inflight:
            self.idle.set()

    def _writer(self) -> None:
        cfg = self.rt.config
        conn = None
        last_write = 0.0
        try:
            while True:
                if not self.buf:
                    if self.closed:
                        return
                    self.data.clear()
                    if not self.data.wait(cfg.drain_idle_timeout):
                        # Idle: give the connection back; extra writers retire.
                        if conn is not None:
                            self._close_conn(conn)
                            conn = None
                        if self._retire():
                            return
                    continue
                now = time.monotonic()
                if self.paused_until > now:
                    gevent.sleep(self.paused_until - now)
                    continue
                gather = self.output.flush_interval - (now - last_write)
                if gather > 0 and self.buffered < self.output.max_write and not self.closed:
                    gevent.sleep(gather)
                entries = self._take()
                if not entries:
                    continue
                reused = conn is not None
                try:
                    if conn is None:
                        conn = self.output.connect()
                        self.connections += 1
                    conn.send([e[ITEM] for e in entries])
                except Rejected as err:
                    refused = err.packets
                    if refused is None:
                        refused = sum(e[NPACKETS] for e in entries)
                    self._finish(entries, refused, "rejected", err.items)
                    self._log_rejected(err)
                    continue
                except gevent.GreenletExit:
                    # killed by close() after its timeout: leave the entries to be
                    # counted (and their acks released) as undelivered
                    self._requeue(entries)
                    raise
                except Exception as e:  # noqa: BLE001 - every failure is retried
                    self._requeue(entries)
                    if conn is not None:
                        self._close_conn(conn)
                        conn = None
                    if reused and not self.failures:
                        # A connection that sat in the pool went stale (the
                        # receiver restarted): no sign the endpoint is down, so
                        # reconnect at once rather than back off.
                        continue
                    delay = self._failed(e)
                    if self._retire():
                        return  # shrink the pool while the endpoint is in trouble
                    if delay:
                        gevent.sleep(delay)
                    continue
                last_write = time.monotonic()
                if self.failures:
                    self._recovered()
                self._finish(entries)
        finally:
            if conn is not None:
                self._close_conn(conn)

    def _retire(self) -> bool:
        """Leaves the pool if another writer stays. The set is updated here, not
        in the link callback, which runs later: writers idling at the same
        moment would otherwise all see the others and all retire."""
        if len(self.writers) <= 1:
            return False
        self.writers.discard(gevent.getcurrent())
        return True

    def _close_conn(self, conn) -> None:
        self.connections -= 1
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass

    # ----------------------------------------------------------------- health

    def _failed(self, err: Exception) -> float:
        cfg = self.rt.config
        log = self.rt.log
        now = time.monotonic()
        self.failures += 1
        self.rt.metrics.inc("logtrain_drain_errors_total", drain=self.name)
        reason = self.output.url.scrub(_describe(err))  # messages may quote the URL
        if self.failures == 1:
            self.failing_since = now
            self.rt.ratelimit.forget(("drain-failing", self.name))
            self.rt.ratelimit.allow(("drain-failing", self.name))
            log.warning("drain unreachable, buffering", drain=self.name, error=reason,
                        buffered_bytes=self.buffered)
        else:
            held = self.rt.ratelimit.allow(("drain-failing", self.name))
            if held is not None:
                log.warning("drain still failing", drain=self.name, error=reason,
                            attempts=self.failures, seconds=round(now - self.failing_since, 1),
                            buffered_bytes=self.buffered)
        if self.failures >= cfg.drain_pause_after:
            if not self.paused_until:
                log.warning("drain paused after repeated failures", drain=self.name,
                            attempts=self.failures, retry_every=cfg.drain_pause_interval)
            self.paused_until = now + cfg.drain_pause_interval
            return 0.0
        base = min(cfg.drain_backoff_max, 0.1 * (2 ** min(self.failures - 1, 20)))
        return base * random.uniform(0.5, 1.5)

    def _recovered(self) -> None:
        self.rt.log.info("drain recovered", drain=self.name, attempts=self.failures,
                         outage_seconds=round(time.monotonic() - self.failing_since, 1))
        self.failures = 0
        self.paused_until = 0.0

    def _drop(self, n: int, reason: str, acks: list | None) -> None:
        self.rt.metrics.inc("logtrain_drain_dropped_total", n, drain=self.name, reason=reason)
        if acks:
            for a in acks:
                a.done(False)
        held = self.rt.ratelimit.allow(("drain-drop", self.name, reason))
        if held is not None:
            self.rt.log.warning("drain dropped packets", drain=self.name, reason=reason,
                                packets=n, drop_events_since_last_report=held)

    def _log_rejected(self, err: Exception) -> None:
        held = self.rt.ratelimit.allow(("drain-rejected", self.name))
        if held is not None:
            self.rt.log.warning("drain endpoint rejected data", drain=self.name,
                                error=self.output.url.scrub(_describe(err)),
                                rejections_since_last_report=held)


def _describe(err: Exception) -> str:
    s = str(err) or type(err).__name__
    return s if isinstance(err, Rejected) else f"{type(err).__name__}: {s}"
