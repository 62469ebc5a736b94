"""RFC6587 framing of a syslog byte stream: the Python reference.

``logtrain.syslog.Framer`` is the compiled version (ext/syslog.pyx) when built;
the tests compare the two on arbitrary streams cut at arbitrary places.
"""

from __future__ import annotations

import re


class FrameErrors:
    """Counts of frames a Framer threw away, by reason."""

    __slots__ = ("oversized", "bad_length", "truncated")

    def __init__(self) -> None:
        self.oversized = 0
        self.bad_length = 0
        self.truncated = 0

    def take(self) -> dict[str, int]:
        """Returns the non-zero counts and resets them."""
        out = {k: getattr(self, k) for k in self.__slots__ if getattr(self, k)}
        self.oversized = self.bad_length = self.truncated = 0
        return out


# Where a stream can plausibly start a new frame after garbage: a newline, or an
# octet count followed by a PRI.
_RESYNC = re.compile(rb"\n|(?<![0-9])[1-9][0-9]{0,8} <[0-9]{1,3}>")
_MAX_DIGITS = 9


class FramerPy:
    """Splits a byte stream into syslog frames, across arbitrary read boundaries.

    The framing is detected per frame (RFC6587): a frame that starts with a digit
    is octet-counted (``LEN SP MSG``), anything else runs to the next newline.
    Frames longer than ``max_frame`` are discarded and counted; an octet count
    that cannot be right (more than 9 digits or over ``hard_limit``) is counted
    and the stream resynchronised at the next plausible frame start, so one bad
    frame never costs the connection's other frames.
    """

    __slots__ = ("max_frame", "hard_limit", "buf", "skip", "resync", "ctx", "drop_line", "errors")

    def __init__(self, max_frame: int = 65536, hard_limit: int | None = None) -> None:
        self.max_frame = max_frame
        self.hard_limit = hard_limit or max(16 * max_frame, 1 << 20)
        self.buf = b""
        self.skip = 0  # bytes still to discard of an oversized octet-counted frame
        self.resync = False  # discarding up to the next plausible frame start
        self.ctx = 0  # leading bytes of buf kept only as look-behind for the resync search
        self.drop_line = False  # discarding an over-long line up to its newline
        self.errors = FrameErrors()

    def feed(self, data: bytes) -> list[bytes]:
        buf = self.buf + data if self.buf else data
        n = len(buf)
        pos = 0
        frames: list[bytes] = []
        max_frame = self.max_frame
        while pos < n:
            if self.skip:
                take = min(self.skip, n - pos)
                pos += take
                self.skip -= take
                continue
            if self.drop_line:
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    pos = n
                    break
                pos = nl + 1
                self.drop_line = False
                continue
            if self.resync:
                start = pos + self.ctx
                self.ctx = 0
                m = _RESYNC.search(buf, start) if start < n else None
                if m is None:
                    # Keep a short tail (a count split across reads must still be
                    # seen) and one byte before it for the look-behind.
                    start = max(start, n - 15)
                    pos, self.ctx = (start - 1, 1) if start > 0 else (0, 0)
                    break
                pos = m.end() if m.group() == b"\n" else m.start()
                self.resync = False
                continue
            c = buf[pos]
            if c == 10 or c == 13 or c == 32 or c == 0:
                pos += 1  # stray separators between frames
                continue
            if 48 <= c <= 57:
                sp = buf.find(b" ", pos, pos + _MAX_DIGITS + 2)
                if sp < 0:
                    if n - pos > _MAX_DIGITS + 1:
                        self.errors.bad_length += 1
                        self.resync = True
                        pos += 1
                        continue
                    break  # the count is not complete yet
                digits = buf[pos:sp]
                if digits.isdigit():
                    length = int(digits)
                    start = sp + 1
                    if length == 0 or length > self.hard_limit:
                        self.errors.bad_length += 1
                        self.resync = True
                        pos = start
                        continue
                    if length > max_frame:
                        self.errors.oversized += 1
                        self.skip = length
                        pos = start
                        continue
                    if n - start < length:
                        break  # wait for the rest of the frame
                    frames.append(buf[start : start + length])
                    pos = start + length
                    continue
                # digits then something else: not a count, so newline framing
            nl = buf.find(b"\n", pos)
            if nl < 0:
                if n - pos > max_frame:
                    # Too long already: drop the line up to its newline, wherever
                    # the reads happen to cut it.
                    self.errors.oversized += 1
                    self.drop_line = True
                    pos = n
                break
            if nl - pos > max_frame:
                self.errors.oversized += 1
            else:
                end = nl - 1 if nl > pos and buf[nl - 1] == 13 else nl
                frames.append(buf[pos:end])
            pos = nl + 1
        if self.resync and not self.ctx and 0 < pos == n:
            pos, self.ctx = n - 1, 1  # the look-behind byte for the next read
        self.buf = buf[pos:] if pos < n else b""
        return frames

    def finish(self) -> list[bytes]:
        """At end of stream: a last newline-framed frame without its newline is
        still a frame; a partial octet-counted frame is counted as truncated."""
        buf, self.buf = self.buf, b""
        if self.skip:
            self.skip = 0
            return []
        if self.resync or self.drop_line or not buf.strip():
            return []
        if buf[:1].isdigit() and buf.split(b" ", 1)[0].isdigit():
            self.errors.truncated += 1
            return []
        return [buf.rstrip(b"\r")]


