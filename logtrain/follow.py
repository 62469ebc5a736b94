"""One followed file: reading from an offset, lines into packets, and the
offsets that may be committed once the drains have acknowledged them.

A FileFollower holds its file open by descriptor, so a file renamed or
deleted by rotation is still read to its end before it is let go. It reads
with pread from ``pos``; the line splitter carries a partial last line, so
the offset of complete lines is ``pos - pending``. Container formats join
long lines split in pieces (CRI ``P``/``F``); an offset inside such a joined
line is never committed (``safe``), so a restart re-reads the whole line.

Every routed batch gets an acknowledgement; offsets are committed in order,
only up to the last batch every drain delivered. A batch a drain refused
(its buffer full, or closed) rewinds the follower to the committed offset:
the lines are read again (at least once: drains that took them get them
twice, which is counted in ``rewinds``). A compressed file (``.gz``, a
rotated file kubelet compressed while the agent was down) is read through
gzip; its offsets count uncompressed bytes.

With multiline joining (``multiline``, a logtrain/transform/multiline.py
Joiner set by the tailer) the packets of a chunk pass through the joiner, and
``safe`` stops at the first line of a group still pending: a commit never
splits a group.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from logtrain.drain import Ack
from logtrain.packet import Packet
from logtrain.tail import LineSplitter

READ_SIZE = 64 << 10
FINGERPRINT_BYTES = 256



class _NoParser:
    """Before a file's first byte: nothing is joined."""

    partial: dict = {}


def fingerprint(head: bytes) -> str:
    """A file's identity across a new inode (compression): its first bytes."""
    if len(head) < FINGERPRINT_BYTES:
        return ""
    return hashlib.blake2b(head[:FINGERPRINT_BYTES], digest_size=12).hexdigest()


def _renamed(parser: Any, hostname: str, tag: str) -> Any:
    parser.hostname = hostname
    parser.tag = tag
    return parser


class FileFollower:
    def __init__(self, path: str, make_parser: Callable[[bytes], Any], max_line: int,
                 compressed: bool = False) -> None:
        self.path = path
        # where it really is (a container log's path is a symlink): rotated
        # files are looked for beside it
        self.real = os.path.realpath(path)
        # the live file name it was found under (rotated copies are named after it)
        self.base = self.real
        self.name = path  # the path it was discovered by (set by the tailer)
        self.names = ("", "")  # the hostname and tag its lines get (set by the tailer)
        self.opened_at = time.time()
        self.compressed = compressed
        if compressed:
            self.gz: Any = gzip.open(path, "rb")
            self.fd = self.gz.fileno()
        else:
            self.gz = None
            # /var/log/containers holds symlinks into /var/log/pods: followed
            self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        st = os.fstat(self.fd)
        self.dev, self.ino = st.st_dev, st.st_ino
        # the parser is chosen by the file's first byte (CRI or Docker), so an
        # empty file is followed too and its format known at its first line
        self.make_parser = make_parser
        self.parser: Any = _NoParser()
        self.splitter = LineSplitter(max_line)
        self.max_line = max_line
        self.pos = 0  # bytes read
        self.safe = 0  # the last offset at a whole-line boundary with nothing joined pending
        self.committed = 0
        self.pending: deque[list] = deque()  # [offset, state]: state None, True or False
        self.generation = 0  # bumped by a rewind: acks of older batches are ignored
        self.rotated = False  # the path names another file now: read to the end
        self.gone_since = 0.0  # when the path stopped naming this file (no successor seen)
        self.wd: int | None = None  # its inotify watch (None: polled)
        self.more = True  # may have unread data: read at the next round
        self.done = False
        self.at_end = False  # the last read was short: the end of the file, for now
        self.fingerprint = ""
        self.rewinds = 0
        self.lines = 0
        self.objects = 0  # lines of the last chunk whose message starts with "{"
        self.bad = 0  # lines of the last chunk the parser could not read
        self.split = 0  # lines of the last chunk split at a size limit
        self.multiline: Any = None  # a Joiner (logtrain/transform/multiline.py), or None

    @property
    def key(self) -> tuple[int, int]:
        return self.dev, self.ino

    def size(self) -> int:
        if self.compressed:
            return self.pos  # unknown before reading it: lag is not reported for .gz
        try:
            return os.fstat(self.fd).st_size
        except OSError:
            return self.pos

    def rename(self, hostname: str, tag: str) -> None:
        """Later lines get these names (the parser stamps them on packets)."""
        self.names = (hostname, tag)
        make = self.make_parser
        if isinstance(self.parser, _NoParser):
            self.make_parser = lambda first: _renamed(make(first), hostname, tag)
        else:
            _renamed(self.parser, hostname, tag)

    def seek(self, offset: int) -> None:
        """Starts reading at ``offset`` (a committed offset, or the end)."""
        if self.compressed:
            self.gz.seek(offset)
        self.pos = self.safe = self.committed = offset
        self._fingerprint()

    def ensure_fingerprint(self) -> None:
        """Fingerprints the file now if it has enough bytes (read or not)."""
        self._fingerprint()

    def _fingerprint(self) -> None:
        if self.fingerprint:
            return
        try:
            head = self._pread(FINGERPRINT_BYTES, 0) if not self.compressed else b""
        except OSError:
            return
        self.fingerprint = fingerprint(head)

    def _pread(self, n: int, at: int) -> bytes:
        return os.pread(self.fd, n, at)

    def truncated(self) -> bool:
        """copytruncate: the file is now shorter than what was read of it."""
        return not self.compressed and self.size() < self.pos

    def restart_at_zero(self) -> None:
        self.pos = self.safe = self.committed = 0
        self.pending.clear()
        self.generation += 1
        self.splitter = LineSplitter(self.max_line)
        self.parser.partial.clear()
        if self.multiline is not None:
            self.multiline.reset()

    def read(self, limit: int = READ_SIZE) -> list[Packet] | None:
        """The packets of the next chunk; None at the end of the file (after a
        rotation, the partial last line and anything joined are emitted)."""
        data = self.gz.read(limit) if self.compressed else self._pread(limit, self.pos)
        # a short read is the end for now: the caller need not read again to
        # learn it (one pread per changed file per round instead of two)
        self.at_end = len(data) < limit
        if not data:
            if self.rotated:
                return self._finish()
            return None
        if isinstance(self.parser, _NoParser):
            self.parser = self.make_parser(data[:1])
        base = self.pos - self.splitter.pending  # the offset of the chunk's first line
        joining = bool(self.parser.partial)
        self.pos += len(data)
        cuts, joins = self.splitter.cuts, getattr(self.parser, "splits", 0)
        objects = getattr(self.parser, "objects", 0)
        lines = self.splitter.feed(data)
        if not self.fingerprint and self.pos >= FINGERPRINT_BYTES:
            self._fingerprint()
        packets, bad = self.parser.parse_batch(lines) if lines else ([], 0)
        self.bad = bad
        # lines over MAX_FRAME_SIZE cut, and joined lines emitted at their limit
        self.split = (self.splitter.cuts - cuts) + (getattr(self.parser, "splits", 0) - joins)
        self.lines += len(lines)
        # lines that may be JSON objects: without any, structured logs skip the batch
        self.objects = getattr(self.parser, "objects", 0) - objects
        ml = self.multiline
        if ml is not None and packets:
            # file offsets per packet only when each line made one packet
            exact = (not bad and not joining and not self.parser.partial and not self.split
                     and len(packets) == len(lines))
            packets = ml.feed(packets, lines if exact else None, base)
        if not self.parser.partial:
            if ml is None or not ml.pending:
                self.safe = self.pos - self.splitter.pending
            else:
                start = ml.pending_start()
                if start is not None and start > self.safe:
                    self.safe = start
        return packets

    def flush_group(self) -> list[Packet]:
        """The pending multiline groups, sent after MULTILINE_TIMEOUT; the
        offset after them may be committed."""
        packets = self.multiline.flush()
        if not self.parser.partial:
            self.safe = self.pos - self.splitter.pending
        return packets

    def _finish(self) -> list[Packet] | None:
        """The end of a rotated file: its last partial line is a line."""
        rest = self.splitter.flush()
        packets: list[Packet] = []
        if rest:
            packets, _ = self.parser.parse_batch([rest])
        if self.multiline is not None and packets:
            packets = self.multiline.feed(packets, None, self.pos)
        if self.parser.partial:  # pieces of a joined line whose end never came
            packets = packets + self.parser.flush()
        if self.multiline is not None:
            packets = packets + self.multiline.flush()
        self.safe = self.pos
        self.done = True
        return packets or None

    # ----------------------------------------------------------------- acknowledgements

    def ack(self) -> Ack:
        """The acknowledgement of the batch just read: it ends at ``safe``."""
        return Ack(self.mark())

    def mark(self) -> Callable[[bool], None]:
        """Marks the end of the batch just read (at ``safe``); the returned
        function records its fate, for an Ack that may cover other files' too."""
        entry = [self.safe, None]
        self.pending.append(entry)
        gen = self.generation

        def done(ok: bool) -> None:
            if gen == self.generation:
                entry[1] = ok

        return done

    def advance(self) -> bool:
        """Moves ``committed`` over the acknowledged batches; False when a
        drain refused one (the follower was rewound to ``committed``)."""
        pending = self.pending
        while pending and pending[0][1] is not None:
            offset, ok = pending.popleft()
            if not ok:
                self.rewind()
                return False
            self.committed = offset
        return True

    @property
    def settled(self) -> bool:
        """Every batch read was acknowledged."""
        return not self.pending

    def rewind(self) -> None:
        self.rewinds += 1
        self.generation += 1
        self.pending.clear()
        self.pos = self.safe = self.committed
        self.splitter = LineSplitter(self.max_line)
        self.parser.partial.clear()
        if self.multiline is not None:
            self.multiline.reset()
        self.done = False
        if self.compressed:
            self.gz.seek(self.committed)

    def close(self) -> None:
        try:
            if self.gz is not None:
                self.gz.close()
            else:
                os.close(self.fd)
        except OSError:
            pass
