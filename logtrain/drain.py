"""One Drain per endpoint URL: a bounded buffer, a pool of connections, retries.

Batches arrive already encoded (``Output.encode`` runs once per batch in the
caller), wait in a buffer bounded in bytes, and are written by one or more
writer greenlets, each owning one connection. Writers coalesce buffered batches
into one write. The pool grows while the buffer stays full and the endpoint is
healthy, and shrinks when a writer is idle or failing. Failures back off
exponentially with jitter; after DRAIN_PAUSE_AFTER consecutive failures the
drain is paused, first for DRAIN_PAUSE_INTERVAL, each next pause twice as
long up to DRAIN_PAUSE_MAX. Each change of state (failing, paused, recovered)
is logged once; the state is in metrics.

With a disk spool (logtrain.spool, under STATE_DIR) a batch that finds the
memory buffer full, or a failing endpoint, goes to the spool instead of being
dropped, and so does every later batch while the spool holds unread records,
which keeps the order: writers take the memory buffer first, then the spool.
A spooled batch counts as delivered for its acknowledgement (a file commits
its offset). At shutdown what is still in memory is spooled.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable

import gevent
from gevent.event import Event

from logtrain.outputs.base import Busy, Output, Rejected
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
HEADROOM = 256 << 10  # below the cap, for the batch an input has in hand

# A buffered entry: [item, nbytes, npackets, acks or None, spool token or None]
ITEM, NBYTES, NPACKETS, ACKS, TOKEN = range(5)
STATES = {"healthy": 0, "failing": 1, "paused": 2}
FAILING_FLUSH = 3.0  # seconds a closing drain whose endpoint fails waits before spooling


class Drain:
    def __init__(self, output: Output, rt: Runtime) -> None:
        cfg = rt.config
        self.output = output
        self.rt = rt
        self.name = output.url.safe
        self.cap = cfg.drain_buffer_size
        self.high_water = min(self.cap // 2, HIGH_WATER)
        # Batches writers hold count against the cap too: inputs also wait
        # when buffered and in flight together near it, or a pool of slow
        # writers lets them fill the buffer until it drops (200 senders did).
        self.soft_cap = max(self.high_water, self.cap - min(HEADROOM, self.cap // 4))
        self.max_writers = min(cfg.drain_max_connections,
                               output.max_connections or cfg.drain_max_connections)
        self.buf: deque[list] = deque()
        self.buffered = 0  # bytes in buf
        self.inflight = 0  # bytes taken by writers, not yet delivered
        self.data = Event()
        # Writers of outputs that gather (flush_interval) stop waiting when
        # this much is buffered: a write's worth, or what makes inputs wait.
        self.gather_at = min(output.max_write, self.high_water)
        self.filled = Event()
        self.space = Event()
        self.space.set()
        self.room = Event()  # set while not backlogged (see backlogged)
        self.room.set()
        self.idle = Event()
        self.idle.set()
        self.writers: set[gevent.Greenlet] = set()
        self.connections = 0
        self.failures = 0  # consecutive
        self.partials = 0  # consecutive writes the endpoint took only part of
        self.failing_since = 0.0
        self.paused_until = 0.0
        self.pause = 0.0  # the length of the current (or last) pause
        self.state = "healthy"
        self.last_grow = 0.0
        self.closed = False
        # the URL's filter parameters (logtrain/transform/filters.py); None: none
        self.filter = drain_filter(output.url, rt)
        m = rt.metrics
        m.gauge("logtrain_drain_buffer_bytes", lambda: self.buffered + self.inflight, drain=self.name)
        m.gauge("logtrain_drain_connections", lambda: self.connections, drain=self.name)
        m.gauge("logtrain_drain_paused", lambda: 1 if self.paused_until else 0, drain=self.name)
        m.gauge("logtrain_drain_state", lambda: STATES[self.state], drain=self.name)
        m.gauge("logtrain_drain_pause_seconds", lambda: self.pause if self.paused_until else 0,
                drain=self.name)
        self.spool = None
        if rt.spools is not None:
            self.spool = rt.spools.open(output.url.raw, self.name, self._spool_dropped)
            m.gauge("logtrain_drain_spool_bytes", lambda: self.spool.bytes, drain=self.name)
            m.gauge("logtrain_drain_spool_packets", lambda: self.spool.packets, drain=self.name)
            if self.spool.unread:
                self.idle.clear()
        self._spawn_writer()

    # ----------------------------------------------------------------- input side

    @property
    def congested(self) -> bool:
        """Holding more than ``high_water`` (or, with what writers hold, near
        the cap) while the endpoint is taking data: inputs that can push back
        should wait. A healthy drain needs little
        buffer, so the rest of the cap stays free for outages; a failing
        endpoint is not waited for (its buffer fills, then drops), so it never
        stalls the other drains."""
        sp = self.spool
        if sp is not None and sp.full:
            return True  # not drop the oldest spooled data: make them wait
        return not self.space.is_set() and self.failures == 0

    @property
    def full(self) -> bool:
        """The spool is at its cap: an input that can refuse (HTTP) should."""
        return self.spool is not None and self.spool.full

    @property
    def backlogged(self) -> bool:
        """Holding more than ``high_water``: a source that can wait without
        losing anything (a file) waits, and stays the buffer. With a spool only
        a healthy drain is waited for; a failing one spools the file's lines."""
        if self.buffered + self.inflight <= self.high_water:
            return False
        sp = self.spool
        return sp is None or (self.failures == 0 and not sp.unread)

    def _spooling(self, held: int) -> bool:
        sp = self.spool
        return sp is not None and (sp.unread or held >= self.cap
                                   or (self.failures > 0 and held > self.high_water))

    def put(self, packets: list[Packet], ack: Ack | None = None) -> bool:
        if self.filter is not None and not (packets := self.filter.apply(packets)):
            return True  # all filtered out (counted): delivered, as far as the input knows
        # the bound is on memory: batches a writer holds count too
        held = self.buffered + self.inflight
        if self.closed:
            return self._refuse(packets, ack, "closed")
        spooling = self._spooling(held)
        if held >= self.cap and not spooling:
            return self._refuse(packets, ack, "buffer_full")
        item, nbytes = self.output.encode(packets)
        if not spooling and self.spool is not None and held + nbytes > self.cap:
            spooling = True  # this batch would overflow memory: it goes to disk instead
        if spooling:
            if self.spool.append(item, len(packets)):
                # on disk: as good as delivered for the acknowledgement
                self.rt.metrics.inc("logtrain_drain_spooled_total", len(packets), drain=self.name)
                self._wake()
                return True
            # the spool cannot take it (a full disk): memory, while it has room
        if held + nbytes > self.cap:
            return self._refuse(packets, ack, "spool_error" if spooling else "buffer_full")
        if ack is not None:
            ack.hold()
        self.buf.append([item, nbytes, len(packets), [ack] if ack else None, None])
        self.buffered += nbytes
        self._flow()
        self._wake()
        return True

    def _wake(self) -> None:
        self.idle.clear()
        self.data.set()
        if self.buffered >= self.gather_at:
            self.filled.set()
        if not self.writers:
            self._spawn_writer()
        elif (
            # two writes' worth, or (large writes) enough to hold inputs back
            self.buffered > min(2 * self.output.max_write, self.high_water)
            and len(self.writers) < self.max_writers
            and self.failures == 0
            and time.monotonic() - self.last_grow > 0.5
        ):
            self.last_grow = time.monotonic()
            self._spawn_writer()

    def _refuse(self, packets: list[Packet], ack: Ack | None, reason: str) -> bool:
        if ack is not None:
            ack.ok = False  # not held for this drain: nothing to release
        self._drop(len(packets), reason, None)
        return False

    def _flow(self) -> None:
        """Sets the events inputs wait on from what is held: ``space`` (see
        congested) and ``room`` (see backlogged)."""
        held = self.buffered + self.inflight
        if self.buffered > self.high_water or held > self.soft_cap:
            self.space.clear()
        else:
            self.space.set()
        if held > self.high_water:
            self.room.clear()
        else:
            self.room.set()

    def wait_space(self, timeout: float) -> None:
        """Blocks while the drain is congested, at most ``timeout`` seconds."""
        if self.full:
            # the spool at its cap (or unwritable) frees no memory event: poll
            gevent.sleep(min(timeout, 0.25))
        elif self.congested:
            self.space.wait(timeout)

    def flush(self, timeout: float) -> bool:
        """Waits until everything buffered has been delivered; False on timeout."""
        return self.idle.wait(timeout)

    def close(self, timeout: float) -> None:
        """Stops taking packets, delivers what is buffered for up to ``timeout``
        seconds, then spools what is left (or, without a spool, drops it,
        counted) and closes the connections."""
        self.closed = True
        self.data.set()
        self.filled.set()
        # memory only: what the spool holds stays there for the next start
        deadline = time.monotonic() + timeout
        if self.failures and self.spool is not None:
            # the endpoint is down: a retry or two, then spool rather than wait it out
            deadline = min(deadline, time.monotonic() + FAILING_FLUSH)
        while (self.buf or self.inflight) and self.writers and time.monotonic() < deadline:
            gevent.sleep(0.05)
        gevent.killall(list(self.writers), block=True, timeout=1)
        sp = self.spool
        left = 0
        for e in self.buf:
            if e[TOKEN] is not None:
                continue  # still in the spool: replayed at the next start
            ok = sp is not None and sp.append(e[ITEM], e[NPACKETS])
            if ok:
                self.rt.metrics.inc("logtrain_drain_spooled_total", e[NPACKETS], drain=self.name)
            else:
                left += e[NPACKETS]
            for a in e[ACKS] or ():
                a.done(ok)  # held by put()
        self.buf.clear()
        self.buffered = 0
        self._flow()
        if left:
            self._drop(left, "shutdown", None)
        if sp is not None:
            sp.close()
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
        sp = self.spool
        if not buf and sp is not None and sp.unread and size < limit:
            for item, n, token in sp.take(limit - size):
                nbytes = _size(item)
                entries.append([item, nbytes, n, None, token])
                size += nbytes
        self.inflight += size
        self._flow()
        return entries

    def _requeue(self, entries: list[list]) -> None:
        size = sum(e[NBYTES] for e in entries)
        self.buf.extendleft(reversed(entries))
        self.inflight -= size
        self.buffered += size
        self._flow()
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
        self._flow()
        dropped = min(dropped, total)
        # counted before the acks fire, so that a callback sees its delivery counted
        if total > dropped:
            self.rt.metrics.inc("logtrain_drain_sent_total", total - dropped, drain=self.name)
        if dropped:
            self._drop(dropped, reason, None)
        sp = self.spool
        for i, e in enumerate(entries):
            if e[ACKS]:
                ok = not dropped or (failed is not None and i not in failed)
                for a in e[ACKS]:
                    a.done(ok)
            if e[TOKEN] is not None:
                sp.settle(e[TOKEN])
        if not self.buf and not self.inflight and not self._replaying():
            self.idle.set()

    def _replaying(self) -> bool:
        sp = self.spool
        return sp is not None and (sp.unread or bool(sp.inflight))

    def _writer(self) -> None:
        cfg = self.rt.config
        conn = None
        last_write = 0.0
        try:
            while True:
                if not self.buf and not (self.spool is not None and self.spool.unread
                                         and not self.closed):
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
                if gather > 0 and self.buffered < self.gather_at and not self.closed:
                    # until the interval is over or a write's worth is in
                    # (put sets filled), whichever comes first
                    self.filled.clear()
                    self.filled.wait(gather)
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
                    if isinstance(e, Busy) and e.progress:
                        self._partial(e)
                        continue
                    self.rt.metrics.inc("logtrain_drain_retries_total",
                                        sum(x[NPACKETS] for x in entries), drain=self.name)
                    if conn is not None:
                        self._close_conn(conn)
                        conn = None
                    if reused and not self.failures and not isinstance(e, (Busy, TimeoutError)):
                        # A connection that sat in the pool went stale (the
                        # receiver restarted): no sign the endpoint is down, so
                        # reconnect at once rather than back off. A timeout is
                        # such a sign (a receiver that stopped reading).
                        continue
                    delay = self._failed(e)
                    if isinstance(e, Busy) and e.retry_after:
                        delay = max(delay, min(e.retry_after, cfg.drain_backoff_max))
                    if self._retire():
                        return  # shrink the pool while the endpoint is in trouble
                    if delay:
                        gevent.sleep(delay)
                    continue
                last_write = time.monotonic()
                self.partials = 0
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
        """Counts a failure; the seconds to wait before the next attempt. Logs
        only changes of state: healthy -> failing -> paused (-> recovered)."""
        cfg = self.rt.config
        log = self.rt.log
        now = time.monotonic()
        self.failures += 1
        self.rt.metrics.inc("logtrain_drain_errors_total", drain=self.name)
        reason = self.output.url.scrub(_describe(err))  # messages may quote the URL
        if self.failures == 1:
            self.failing_since = now
            self.state = "failing"
            log.warning("drain unreachable, buffering", drain=self.name, error=reason,
                        buffered_bytes=self.buffered,
                        spooling=self.spool is not None)
        if self.failures >= cfg.drain_pause_after:
            # each pause twice the last, from DRAIN_PAUSE_INTERVAL up to DRAIN_PAUSE_MAX
            first = self.state != "paused"
            self.pause = (cfg.drain_pause_interval if first
                          else min(cfg.drain_pause_max, max(self.pause, 0.01) * 2))
            if first:
                self.state = "paused"
                log.warning("drain paused after repeated failures", drain=self.name,
                            attempts=self.failures, error=reason,
                            pause_seconds=self.pause, pause_max_seconds=cfg.drain_pause_max)
            self.paused_until = now + self.pause
            return 0.0
        base = min(cfg.drain_backoff_max, 0.1 * (2 ** min(self.failures - 1, 20)))
        return base * random.uniform(0.5, 1.5)

    def _partial(self, err: Busy) -> None:
        """The endpoint took part of a write and asks for the rest later: it
        is healthy (a failure streak ends), the rest waits a short backoff
        that doubles while this repeats, and the connection stays."""
        self.partials += 1
        self.rt.metrics.inc("logtrain_drain_errors_total", drain=self.name)
        if self.failures:
            self._recovered()
        if self.rt.ratelimit.allow(("drain-partial", self.name)) is not None:
            self.rt.log.warning("drain endpoint asked for part of a write again", drain=self.name,
                                error=self.output.url.scrub(_describe(err)))
        base = min(self.rt.config.drain_backoff_max, 0.05 * (2 ** min(self.partials, 10)))
        gevent.sleep(max(base * random.uniform(0.5, 1.5), err.retry_after))

    def _recovered(self) -> None:
        self.rt.log.info("drain recovered", drain=self.name, attempts=self.failures,
                         was=self.state,
                         outage_seconds=round(time.monotonic() - self.failing_since, 1))
        self.failures = 0
        self.paused_until = 0.0
        self.pause = 0.0
        self.state = "healthy"

    def _spool_dropped(self, n: int, reason: str) -> None:
        """The spool dropped (its cap) or lost (a corrupt segment) ``n`` packets;
        it logs them itself."""
        self.rt.metrics.inc("logtrain_drain_dropped_total", n, drain=self.name, reason=reason)

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


def _size(item: object) -> int:
    """Bytes of an item taken back from the spool (what encode reported for it)."""
    if isinstance(item, (bytes, bytearray)):
        return len(item)
    if isinstance(item, (list, tuple)):
        return sum(_size(x) for x in item if not isinstance(x, int))
    return 0


def _describe(err: Exception) -> str:
    s = str(err) or type(err).__name__
    return s if isinstance(err, Rejected) else f"{type(err).__name__}: {s}"
