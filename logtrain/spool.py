"""A drain's disk spool: append-only segment files under STATE_DIR, replayed
in order, capped in size, surviving restarts and ``kill -9``.

A drain whose memory buffer is full (its endpoint down or slow) appends its
batches here instead; its writers take them back in order (``take``) and
``settle`` each once delivered, which moves the commit cursor. Layout, one
directory per drain (named by a hash of its URL, never the URL itself, which
may carry credentials)::

    STATE_DIR/spool/<hash>/00000000000000000001.seg   records (see spool_format)
    STATE_DIR/spool/<hash>/cursor                      "SEQ OFFSET": delivered up to here
    STATE_DIR/spool/<hash>/drain                       the drain's masked URL, for operators

Durability: each record is one write(2) into the page cache, so a killed
process loses nothing written; the cursor is rewritten (atomically) at most
once a second and when a segment is removed, so a kill replays at most that
much again (at-least-once). At start every segment is sealed; the last one's
records are verified and a torn last record is cut off; a segment with a
damaged record is renamed ``*.corrupt`` (kept for the operator, not replayed).

Caps: ``cap`` per drain and the Spools' ``total_cap`` over all drains; past a
cap the oldest segment (of this drain, or the oldest of all) is removed and
its unsent packets reported through ``on_drop``.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from logtrain import spool_format as fmt


class Owner(Protocol):
    """What a spool asks of logtrain.spools.Spools, which owns every drain's
    spool (named here, not imported: spools.py imports this module)."""

    rt: Any
    root: str
    cap: int
    total: int
    total_cap: int

    def oldest(self) -> Any: ...


SEGMENT_MAX = 4 << 20
CURSOR_EVERY = 1.0  # seconds between cursor writes while replaying
ERROR_RETRY = 1.0  # seconds a spool that could not write counts as full


class Segment:
    __slots__ = ("seq", "path", "size", "packets", "read_packets", "created")

    def __init__(self, seq: int, path: str, size: int = 0, packets: int = 0) -> None:
        self.seq = seq
        self.path = path
        self.size = size
        self.packets = packets
        self.read_packets = 0
        self.created = time.time()


class Spool:
    """One drain's spool. Not safe for parallel use by threads; greenlets of
    one hub are fine (no method yields)."""

    def __init__(self, owner: Owner, url: str, name: str,
                 on_drop: Callable[[int, str], None]) -> None:
        self.owner = owner
        self.name = name
        self.on_drop = on_drop
        self.cap = owner.cap
        self.segment_max = max(64 << 10, min(SEGMENT_MAX, self.cap // 4))
        self.dir = spool_dir(owner.root, url)
        self.segments: deque[Segment] = deque()
        self.bytes = 0  # on disk, all segments
        self.packets = 0  # not yet taken by a writer
        self.fd = -1  # the tail segment, open for appending
        self.reader: Any = None  # file object of the segment being read
        self.read_seq = 0
        self.read_off = 0
        self.inflight: deque[list] = deque()  # [seq, end, done] in take order
        self.commit = (0, 0)
        self.cursor_at = 0.0
        self.cursor_dirty = False
        self.error = ""  # the last append error, until an append succeeds
        self.error_at = 0.0

    # ----------------------------------------------------------------- writing

    @property
    def unread(self) -> bool:
        """Records not yet taken by a writer."""
        return self.packets > 0

    @property
    def empty(self) -> bool:
        return not self.segments

    @property
    def full(self) -> bool:
        """Within a segment of its cap (or all spools of theirs): inputs that can
        push back should, rather than make it drop its oldest data."""
        if self.error and time.monotonic() - self.error_at < ERROR_RETRY:
            return True  # cannot write (a full disk): until the next try
        return (self.bytes + self.segment_max >= self.cap
                or self.owner.total + self.segment_max >= self.owner.total_cap)

    def append(self, item: Any, packets: int) -> bool:
        """Writes one batch; False (the reason in ``error``, logged) when it
        could not be written: the disk is full, the item cannot be spooled."""
        try:
            data = fmt.record(item, packets)
        except fmt.CodecError as e:
            return self._failed(str(e))
        size = sum(map(len, data))
        if len(data) > 64:  # many small parts (datagrams): one buffer, under IOV_MAX
            data = [b"".join(data)]
        if not self._make_room(size):
            return self._failed("the spools are at their total cap and hold nothing older to drop")
        seg = self.segments[-1] if self.fd >= 0 else None
        try:
            if seg is None or seg.size >= self.segment_max:
                seg = self._new_segment()
            n = os.writev(self.fd, data)
            if n < size:  # rare: the rest, whose write then says why it failed
                view = memoryview(b"".join(data))[n:]
                while view:
                    n = os.write(self.fd, view)
                    if n <= 0:
                        raise OSError(28, os.strerror(28))
                    view = view[n:]
        except OSError as e:
            if seg is not None and self.fd >= 0:
                try:  # cut the partial record off, or seal the segment before it
                    os.ftruncate(self.fd, seg.size)
                except OSError:
                    self._seal()
            return self._failed(f"{e.strerror or e}" + (f" ({self.dir})" if e.errno else ""))
        seg.size += size
        seg.packets += packets
        self.bytes += size
        self.owner.total += size
        self.packets += packets
        if self.error:
            self.owner.rt.log.info("spool writable again", drain=self.name, after=self.error)
            self.error = ""
        return True

    def _new_segment(self) -> Segment:
        self._seal()
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        label = os.path.join(self.dir, "drain")
        if not os.path.exists(label):
            with open(label, "w") as f:
                f.write(self.name + "\n")
        seq = self.segments[-1].seq + 1 if self.segments else self.commit[0] + 1
        path = os.path.join(self.dir, f"{seq:020d}.seg")
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
        seg = Segment(seq, path)
        if not self.segments:
            self.read_seq, self.read_off = seq, 0
        self.segments.append(seg)
        return seg

    def _seal(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _failed(self, why: str) -> bool:
        rt = self.owner.rt
        rt.metrics.inc("logtrain_spool_errors_total", drain=self.name)
        key = ("spool-error", self.name)
        if why != self.error:
            rt.ratelimit.forget(key)
        held = rt.ratelimit.allow(key)
        if held is not None:
            rt.log.error("spool: cannot write", drain=self.name, error=why,
                         failed_writes_since_last_report=held)
        self.error = why
        self.error_at = time.monotonic()
        return False

    def _make_room(self, need: int) -> bool:
        while self.segments and self.bytes + need > self.cap and len(self.segments) > 1:
            self.drop_oldest("spool_full")
        owner = self.owner
        while owner.total + need > owner.total_cap:
            victim = owner.oldest()
            if victim is None:
                return False
            victim.drop_oldest("spool_total_full")
        return True

    def drop_oldest(self, reason: str) -> int:
        """Removes the oldest segment; reports and returns its unsent packets."""
        seg = self.segments.popleft()
        lost = seg.packets - seg.read_packets
        if seg.seq == self.read_seq:
            self._close_reader()
            nxt = self.segments[0].seq if self.segments else seg.seq + 1
            self.read_seq, self.read_off = nxt, 0
        if not self.segments:
            self._seal()
        _unlink(seg.path)
        self.bytes -= seg.size
        self.owner.total -= seg.size
        self.packets -= lost
        self._write_cursor()
        if lost:
            self.on_drop(lost, reason)
            rt = self.owner.rt
            if rt.ratelimit.allow(("spool-drop", self.name, reason)) is not None:
                rt.log.warning("spool over its cap: oldest data dropped", drain=self.name,
                               reason=reason, packets=lost, cap_bytes=self.cap,
                               total_cap_bytes=self.owner.total_cap)
        return lost

    # ----------------------------------------------------------------- reading

    def take(self, limit: int) -> list[tuple[Any, int, list]]:
        """The next records in order, about ``limit`` bytes: (item, packets,
        token); ``settle(token)`` once each is delivered or dropped."""
        out: list[tuple[Any, int, list]] = []
        size = 0
        while self.packets > 0 and size < limit:
            seg = self._reading()
            if seg is None:
                break
            if self.read_off >= seg.size:
                if seg is self.segments[-1]:
                    break  # the tail: nothing more written yet
                self._next_segment(seg)
                continue
            self.reader.seek(self.read_off)
            try:
                rec = fmt.read_record(self.reader)
                if rec is None:
                    raise fmt.CodecError("record cut short")
            except (fmt.CodecError, OSError) as e:
                self._corrupt(seg, str(e))
                continue
            item, n, rsize = rec
            self.read_off += rsize
            seg.read_packets += n
            self.packets -= n
            token = [seg.seq, self.read_off, False]
            self.inflight.append(token)
            out.append((item, n, token))
            size += rsize
        return out

    def _reading(self) -> Segment | None:
        for seg in self.segments:
            if seg.seq >= self.read_seq:
                if seg.seq != self.read_seq or self.reader is None:
                    self._close_reader()
                    if seg.seq != self.read_seq:
                        self.read_seq, self.read_off = seg.seq, 0
                    self.reader = open(seg.path, "rb")  # noqa: SIM115 - kept open across takes
                return seg
        return None

    def _next_segment(self, seg: Segment) -> None:
        self._close_reader()
        self.read_seq, self.read_off = seg.seq + 1, 0

    def _close_reader(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    def _corrupt(self, seg: Segment, why: str) -> None:
        if seg is self.segments[-1]:
            self._seal()  # the tail: the next append starts a new segment
        self.segments.remove(seg)
        self._close_reader()
        self.read_seq, self.read_off = seg.seq + 1, 0
        self.bytes -= seg.size
        self.owner.total -= seg.size
        lost = seg.packets - seg.read_packets
        self.packets -= lost
        self.set_aside(seg.path, lost, why)

    def set_aside(self, path: str, packets: int, why: str) -> None:
        rt = self.owner.rt
        try:
            os.replace(path, path[:-4] + ".corrupt")
        except OSError:
            pass
        rt.metrics.inc("logtrain_spool_corrupt_segments_total", drain=self.name)
        if packets:
            self.on_drop(packets, "spool_corrupt")
        rt.log.error("spool: corrupt segment set aside", drain=self.name,
                     segment=path[:-4] + ".corrupt", error=why, packets_lost=packets)

    def settle(self, token: list) -> None:
        """Marks a taken record delivered (or dropped for good): the cursor moves
        over every record settled before it."""
        token[2] = True
        inflight = self.inflight
        moved = False
        while inflight and inflight[0][2]:
            seq, end, _ = inflight.popleft()
            self.commit = (seq, end)
            moved = True
        if not moved:
            return
        seq, end = self.commit
        removed = False
        while self.segments:
            seg = self.segments[0]
            tail = seg is self.segments[-1]
            if not (seg.seq < seq or (seg.seq == seq and end >= seg.size
                                      and (not tail or not inflight))):
                break
            if tail:
                self._seal()  # all delivered: the next append starts a new one
            if seg.seq == self.read_seq:
                self._close_reader()
            self.segments.popleft()
            _unlink(seg.path)
            self.bytes -= seg.size
            self.owner.total -= seg.size
            removed = True
        self.cursor_dirty = True
        if removed or time.monotonic() - self.cursor_at > CURSOR_EVERY:
            self._write_cursor()

    def _write_cursor(self) -> None:
        if not os.path.isdir(self.dir):
            return
        self.cursor_at = time.monotonic()
        self.cursor_dirty = False
        path = os.path.join(self.dir, "cursor")
        try:
            with open(path + ".tmp", "w") as f:
                f.write("{} {}\n".format(*self.commit))
            os.replace(path + ".tmp", path)
        except OSError as e:  # a full disk: the next write tries again
            self.cursor_dirty = True
            self._failed(f"cursor: {e.strerror or e}")

    def close(self) -> None:
        if self.cursor_dirty or not self.segments:
            self._write_cursor()
        self._seal()
        self._close_reader()
        if self.owner.spools.pop(self.dir, None) is not None:
            self.owner.total -= self.bytes


def spool_dir(root: str, url: str) -> str:
    """A drain's directory: named by a hash, never by the URL (credentials)."""
    return os.path.join(root, hashlib.sha256(url.encode()).hexdigest()[:20])


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
