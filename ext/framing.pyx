# cython: language_level=3
"""RFC6587 framing in C: the same frames and counts as logtrain.framing.FramerPy
(the tests compare the two on arbitrary streams cut at arbitrary places)."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memchr

from _common cimport _digit

from logtrain.framing import FrameErrors

cdef enum:
    MAX_DIGITS = 9


cdef Py_ssize_t _resync_at(const unsigned char* p, Py_ssize_t pos, Py_ssize_t n) nogil:
    """The first index at or after ``pos`` where a frame can plausibly start: a
    newline, or ``[1-9][0-9]{0,8} <[0-9]{1,3}>`` not preceded by a digit.
    -1 when there is none."""
    cdef Py_ssize_t i = pos, j, k
    cdef unsigned char c
    while i < n:
        c = p[i]
        if c == 10:
            return i
        if 49 <= c <= 57 and (i == 0 or not _digit(p[i - 1])):
            j = i
            while j < n and _digit(p[j]):
                j += 1
            if j - i <= MAX_DIGITS and j + 1 < n and p[j] == 32 and p[j + 1] == 60:
                k = j + 2
                while k < n and k - (j + 2) < 4 and _digit(p[k]):
                    k += 1
                if 1 <= k - (j + 2) <= 3 and k < n and p[k] == 62:
                    return i
        i += 1
    return -1


cdef class Framer:
    """Splits a byte stream into syslog frames, across arbitrary read
    boundaries (see logtrain.syslog.FramerPy, the reference)."""

    cdef public Py_ssize_t max_frame
    cdef public long long hard_limit
    cdef public bytes buf
    cdef public long long skip
    cdef public bint resync
    cdef public int ctx
    cdef public bint drop_line
    cdef public object errors

    def __init__(self, Py_ssize_t max_frame=65536, hard_limit=None):
        self.max_frame = max_frame
        self.hard_limit = hard_limit or max(16 * max_frame, 1 << 20)
        self.buf = b""
        self.skip = 0
        self.resync = False
        self.ctx = 0
        self.drop_line = False
        self.errors = FrameErrors()

    def feed(self, bytes data):
        cdef bytes buf = self.buf + data if self.buf else data
        cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(buf)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
        cdef Py_ssize_t pos = 0, lim, sp, start, nl, end, m, take
        cdef long long length
        cdef unsigned char c
        cdef const unsigned char* hit
        cdef Py_ssize_t max_frame = self.max_frame
        cdef list frames = []
        cdef bint all_digits
        while pos < n:
            if self.skip:
                take = min(<long long>(n - pos), self.skip)
                pos += take
                self.skip -= take
                continue
            if self.drop_line:
                hit = <const unsigned char*>memchr(p + pos, 10, n - pos)
                if hit == NULL:
                    pos = n
                    break
                pos = (hit - p) + 1
                self.drop_line = False
                continue
            if self.resync:
                start = pos + self.ctx
                self.ctx = 0
                m = _resync_at(p, start, n) if start < n else -1
                if m < 0:
                    # Keep a short tail (a count split across reads must still be
                    # seen) and one byte before it for the look-behind.
                    start = max(start, n - 15)
                    if start > 0:
                        pos = start - 1
                        self.ctx = 1
                    else:
                        pos = 0
                    break
                pos = m + 1 if p[m] == 10 else m
                self.resync = False
                continue
            c = p[pos]
            if c == 10 or c == 13 or c == 32 or c == 0:
                pos += 1
                continue
            if _digit(c):
                lim = min(n, pos + MAX_DIGITS + 2)
                hit = <const unsigned char*>memchr(p + pos, 32, lim - pos)
                if hit == NULL:
                    if n - pos > MAX_DIGITS + 1:
                        self.errors.bad_length += 1
                        self.resync = True
                        pos += 1
                        continue
                    break  # the count is not complete yet
                sp = hit - p
                all_digits = True
                length = 0
                for m in range(pos, sp):
                    if not _digit(p[m]):
                        all_digits = False
                        break
                    length = length * 10 + (p[m] - 48)
                if all_digits:
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
                    frames.append(PyBytes_FromStringAndSize(<const char*>p + start, length))
                    pos = start + length
                    continue
                # digits then something else: not a count, so newline framing
            hit = <const unsigned char*>memchr(p + pos, 10, n - pos)
            if hit == NULL:
                if n - pos > max_frame:
                    # Too long already: drop the line up to its newline.
                    self.errors.oversized += 1
                    self.drop_line = True
                    pos = n
                break
            nl = hit - p
            if nl - pos > max_frame:
                self.errors.oversized += 1
            else:
                end = nl - 1 if nl > pos and p[nl - 1] == 13 else nl
                frames.append(PyBytes_FromStringAndSize(<const char*>p + pos, end - pos))
            pos = nl + 1
        if self.resync and not self.ctx and 0 < pos == n:
            pos = n - 1  # the look-behind byte for the next read
            self.ctx = 1
        self.buf = buf[pos:] if pos < n else b""
        return frames

    def finish(self):
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
