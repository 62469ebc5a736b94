# cython: language_level=3
"""Tailing in C: inotify through the Linux system calls, line splitting of
read chunks, and container log lines (CRI, Docker json-file) into packets.

The parsers and the splitter give exactly what the Python references in
logtrain.tail give (the tests compare them); Inotify has no reference, it is
the system calls themselves.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_AsUTF8, PyUnicode_DecodeASCII
from libc.errno cimport EAGAIN, EINTR, errno
from libc.stdint cimport uint32_t
from libc.string cimport memchr, memcpy, strlen

from _common cimport _rfc3339

import json
import os

cdef extern from "sys/inotify.h":
    cdef struct inotify_event:
        int wd
        uint32_t mask
        uint32_t cookie
        uint32_t len
        char name[1]
    int inotify_init1(int flags)
    int inotify_add_watch(int fd, const char* pathname, uint32_t mask)
    int inotify_rm_watch(int fd, int wd)
    enum:
        IN_NONBLOCK_ "IN_NONBLOCK"
        IN_CLOEXEC_ "IN_CLOEXEC"
        IN_ACCESS_ "IN_ACCESS"
        IN_MODIFY_ "IN_MODIFY"
        IN_ATTRIB_ "IN_ATTRIB"
        IN_CLOSE_WRITE_ "IN_CLOSE_WRITE"
        IN_OPEN_ "IN_OPEN"
        IN_MOVED_FROM_ "IN_MOVED_FROM"
        IN_MOVED_TO_ "IN_MOVED_TO"
        IN_CREATE_ "IN_CREATE"
        IN_DELETE_ "IN_DELETE"
        IN_DELETE_SELF_ "IN_DELETE_SELF"
        IN_MOVE_SELF_ "IN_MOVE_SELF"
        IN_UNMOUNT_ "IN_UNMOUNT"
        IN_Q_OVERFLOW_ "IN_Q_OVERFLOW"
        IN_IGNORED_ "IN_IGNORED"
        IN_ONLYDIR_ "IN_ONLYDIR"
        IN_DONT_FOLLOW_ "IN_DONT_FOLLOW"
        IN_ISDIR_ "IN_ISDIR"

cdef extern from "unistd.h":
    ssize_t read(int fd, void* buf, size_t count) nogil
    int close(int fd)

IN_ACCESS = IN_ACCESS_
IN_MODIFY = IN_MODIFY_
IN_ATTRIB = IN_ATTRIB_
IN_CLOSE_WRITE = IN_CLOSE_WRITE_
IN_OPEN = IN_OPEN_
IN_MOVED_FROM = IN_MOVED_FROM_
IN_MOVED_TO = IN_MOVED_TO_
IN_CREATE = IN_CREATE_
IN_DELETE = IN_DELETE_
IN_DELETE_SELF = IN_DELETE_SELF_
IN_MOVE_SELF = IN_MOVE_SELF_
IN_UNMOUNT = IN_UNMOUNT_
IN_Q_OVERFLOW = IN_Q_OVERFLOW_
IN_IGNORED = IN_IGNORED_
IN_ONLYDIR = IN_ONLYDIR_
IN_DONT_FOLLOW = IN_DONT_FOLLOW_
IN_ISDIR = IN_ISDIR_

cdef object Packet = None
cdef object _frame_head = None


def _bind(packet, frame_head):
    """The Packet class, and logtrain.tail.frame_head: the RFC5424 frame of
    a container line around its time and message."""
    global Packet, _frame_head
    Packet = packet
    _frame_head = frame_head


# --------------------------------------------------------------------------- inotify


cdef class Inotify:
    """An inotify instance: a non-blocking, close-on-exec descriptor to wait on
    (gevent's wait_read on ``fileno()``), watches added by path, and events
    read in batches as (wd, mask, cookie, name)."""

    cdef int fd
    cdef bytearray buf

    def __cinit__(self):
        self.fd = -1

    def __init__(self):
        self.fd = inotify_init1(IN_NONBLOCK_ | IN_CLOEXEC_)
        if self.fd < 0:
            raise OSError(errno, os.strerror(errno))
        # room for many events; each is 16 bytes plus its name (NAME_MAX 255)
        self.buf = bytearray(64 * 1024)

    def fileno(self):
        if self.fd < 0:
            raise ValueError("inotify instance is closed")
        return self.fd

    def add_watch(self, path, uint32_t mask):
        """Watches ``path`` (a file or a directory) for ``mask``; returns the
        watch descriptor (the same one again for a path already watched)."""
        cdef bytes p = os.fsencode(path)
        if self.fd < 0:
            raise ValueError("inotify instance is closed")
        if b"\0" in p:
            raise ValueError("path contains a NUL byte")
        cdef int wd = inotify_add_watch(self.fd, p, mask)
        if wd < 0:
            raise OSError(errno, os.strerror(errno), os.fsdecode(p))
        return wd

    def rm_watch(self, int wd):
        if self.fd < 0:
            raise ValueError("inotify instance is closed")
        if inotify_rm_watch(self.fd, wd) < 0:
            raise OSError(errno, os.strerror(errno))

    cdef ssize_t _read(self) except -1:
        """One read(2) of queued events into the buffer: their bytes, 0 when
        none is queued (never blocks)."""
        cdef ssize_t n
        if self.fd < 0:
            raise ValueError("inotify instance is closed")
        while True:
            n = read(self.fd, <char*>self.buf, len(self.buf))
            if n >= 0:
                return n
            if errno == EAGAIN:
                return 0
            if errno != EINTR:
                raise OSError(errno, os.strerror(errno))

    def read_events(self):
        """Every event queued now; [] when there is none (never blocks)."""
        cdef list out = []
        cdef char* base = self.buf
        cdef Py_ssize_t size = len(self.buf)
        cdef ssize_t n, pos
        cdef inotify_event* ev
        cdef size_t namelen
        while True:
            n = self._read()
            pos = 0
            while pos + 16 <= n:  # sizeof(struct inotify_event): the name follows
                ev = <inotify_event*>(base + pos)
                name = ""
                if ev.len:
                    namelen = strlen(ev.name)
                    if namelen > ev.len:
                        namelen = ev.len
                    name = os.fsdecode(PyBytes_FromStringAndSize(ev.name, namelen))
                out.append((ev.wd, ev.mask, ev.cookie, name))
                pos += 16 + ev.len  # sizeof(struct inotify_event) without the flexible name
            if n < size // 2:
                return out

    def read_changes(self, set changed, set dirs, uint32_t moved_mask):
        """Drains the queued events into ``changed`` (the watch descriptors
        written to) without a tuple per event; True when one was on a watch in
        ``dirs`` or had a bit of ``moved_mask`` (a rescan is due). 52 files
        written 50 times a second are 2,600 events a second."""
        cdef char* base = self.buf
        cdef Py_ssize_t size = len(self.buf)
        cdef ssize_t n, pos
        cdef inotify_event* ev
        cdef bint rescan = False
        cdef int last = -1
        while True:
            n = self._read()
            pos = 0
            while pos + 16 <= n:
                ev = <inotify_event*>(base + pos)
                if ev.mask & moved_mask:
                    rescan = True
                elif ev.wd != last:  # runs of one file's writes are common
                    last = ev.wd
                    if ev.wd in dirs:
                        rescan = True
                    else:
                        changed.add(ev.wd)
                pos += 16 + ev.len
            if n < size // 2:
                return rescan

    def close(self):
        if self.fd >= 0:
            close(self.fd)
            self.fd = -1

    def __dealloc__(self):
        if self.fd >= 0:
            close(self.fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------- lines


cdef class LineSplitter:
    """Splits read chunks into lines with carry-over of a partial last line;
    lines over ``max_line`` bytes are cut into pieces (``cuts`` counts them)."""

    cdef public Py_ssize_t max_line
    cdef public bytes buf
    cdef public long long cuts

    def __init__(self, Py_ssize_t max_line=65536):
        self.max_line = max_line
        self.buf = b""
        self.cuts = 0

    @property
    def pending(self):
        return len(self.buf)

    def feed(self, bytes chunk):
        cdef bytes buf = self.buf + chunk if self.buf else chunk
        cdef const char* p = PyBytes_AS_STRING(buf)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
        cdef Py_ssize_t pos = 0, end, m = self.max_line
        cdef const char* hit
        cdef list out = []
        while True:
            hit = <const char*>memchr(p + pos, 10, n - pos)
            if hit == NULL:
                break
            end = hit - p
            while end - pos > m:
                out.append(PyBytes_FromStringAndSize(p + pos, m))
                pos += m
                self.cuts += 1
            out.append(PyBytes_FromStringAndSize(p + pos, end - pos))
            pos = end + 1
        while n - pos > m:
            out.append(PyBytes_FromStringAndSize(p + pos, m))
            pos += m
            self.cuts += 1
        self.buf = buf[pos:] if pos else buf
        return out

    def flush(self):
        """The partial last line (at rotation or end of file), if any."""
        rest, self.buf = self.buf, b""
        return rest or None


# --------------------------------------------------------------------------- container logs


cdef class _Joiner:
    """Joins the pieces of a stream's long line, and makes each line a packet
    that carries its RFC5424 frame (``raw``): syslog drains write it as it is,
    and the frame's head is built once per name, not once per line."""
    cdef public str hostname
    cdef public str tag
    cdef public Py_ssize_t max_join
    cdef public dict partial
    cdef public long long splits  # joined lines emitted at max_join, the rest to follow
    cdef public long long objects  # lines whose message starts with '{' (JSON, maybe)
    cdef public int stdout_severity  # 6 (info); AKKERIS: 0, as the original sends lines
    cdef public int stderr_severity  # 3 (err)
    cdef public int facility  # 1 (user)
    # the frame around time and message, and the names it was made for: names
    # and severities can change while a file is read (the Kubernetes API
    # answered, AKKERIS), which makes it stale
    cdef bytes _head_out, _head_err, _mid
    cdef str _made_host, _made_tag
    cdef int _made_out, _made_err, _made_fac

    def __init__(self, str hostname, str tag, Py_ssize_t max_join=1 << 20):
        self.hostname = hostname
        self.tag = tag
        self.max_join = max_join
        self.partial = {}
        self.splits = 0
        self.objects = 0
        self.stdout_severity = 6
        self.stderr_severity = 3
        self.facility = 1

    cdef _make_head(self):
        self._head_out, self._mid = _frame_head(self.hostname, self.tag, self.stdout_severity,
                                                self.facility)
        self._head_err = _frame_head(self.hostname, self.tag, self.stderr_severity,
                                     self.facility)[0]
        self._made_host, self._made_tag = self.hostname, self.tag
        self._made_out, self._made_err = self.stdout_severity, self.stderr_severity
        self._made_fac = self.facility

    cdef _packet(self, bytes stream, str t, bytes msg):
        cdef bint out = stream == b"stdout"
        cdef bytes head, raw
        cdef Py_ssize_t nh, nt, nm, nb
        cdef char* w
        if (self._mid is None or self.hostname != self._made_host
                or self.tag != self._made_tag or self.stdout_severity != self._made_out
                or self.stderr_severity != self._made_err or self.facility != self._made_fac):
            self._make_head()
        head = self._head_out if out else self._head_err
        # head + time + mid + message, in one allocation
        nh = PyBytes_GET_SIZE(head)
        nt = len(t)  # ASCII: checked by the callers
        nm = PyBytes_GET_SIZE(self._mid)
        nb = PyBytes_GET_SIZE(msg)
        if nb and PyBytes_AS_STRING(msg)[0] == 123:  # '{'
            self.objects += 1
        raw = PyBytes_FromStringAndSize(NULL, nh + nt + nm + nb)
        w = PyBytes_AS_STRING(raw)
        memcpy(w, PyBytes_AS_STRING(head), nh)
        memcpy(w + nh, PyUnicode_AsUTF8(t), nt)
        memcpy(w + nh + nt, PyBytes_AS_STRING(self._mid), nm)
        memcpy(w + nh + nt + nm, PyBytes_AS_STRING(msg), nb)
        return Packet(self.stdout_severity if out else self.stderr_severity, self.facility,
                      self.hostname, self.tag, t, None, "", "", "", raw, nh + nt + nm)

    def flush(self):
        """The pieces of joined lines whose end never came (the file ended:
        rotated, or gone), each as the packet it would have been."""
        out = [self._packet(stream, held[0], b"".join(held[1]))
               for stream, held in self.partial.items()]
        self.partial.clear()
        return out

    cdef _piece(self, list out, bytes stream, str t, bytes msg, bint last):
        cdef tuple held = self.partial.pop(stream, None)
        cdef list pieces
        cdef Py_ssize_t size
        if held is not None:
            t0, pieces, size = held
            pieces.append(msg)
            size += len(msg)
        else:
            if last:  # the common case: a whole line
                out.append(self._packet(stream, t, msg))
                return
            t0, pieces, size = t, [msg], len(msg)
        if not last and size >= self.max_join:
            self.splits += 1
        if last or size >= self.max_join:
            out.append(self._packet(stream, t0, b"".join(pieces)))
        else:
            self.partial[stream] = (t0, pieces, size)


cdef bytes STDOUT = b"stdout"
cdef bytes STDERR = b"stderr"


cdef class CRIParser(_Joiner):
    """``TIMESTAMP STREAM P|F MESSAGE`` lines (the CRI log format) into packets."""

    def parse_batch(self, list lines):
        cdef list out = []
        cdef int bad = 0
        cdef bytes line, stream
        cdef const char* p
        cdef Py_ssize_t n, s1, s2, s3
        cdef const char* hit
        cdef char tag
        for line in lines:
            p = PyBytes_AS_STRING(line)
            n = PyBytes_GET_SIZE(line)
            hit = <const char*>memchr(p, 32, n)
            if hit == NULL:
                bad += 1
                continue
            s1 = hit - p
            hit = <const char*>memchr(p + s1 + 1, 32, n - s1 - 1)
            if hit == NULL:
                bad += 1
                continue
            s2 = hit - p
            if s2 - s1 - 1 == 6 and p[s1 + 1] == b"s" and p[s1 + 2] == b"t" and p[s1 + 3] == b"d":
                if p[s1 + 4] == b"o" and p[s1 + 5] == b"u" and p[s1 + 6] == b"t":
                    stream = STDOUT
                elif p[s1 + 4] == b"e" and p[s1 + 5] == b"r" and p[s1 + 6] == b"r":
                    stream = STDERR
                else:
                    bad += 1
                    continue
            else:
                bad += 1
                continue
            hit = <const char*>memchr(p + s2 + 1, 32, n - s2 - 1)
            s3 = hit - p if hit != NULL else n  # the message may be absent
            if s3 == s2 + 1:
                bad += 1
                continue
            tag = p[s2 + 1]
            if tag != b"P" and tag != b"F":
                bad += 1
                continue
            if not _rfc3339(<const unsigned char*>p, s1):
                bad += 1
                continue
            self._piece(out, stream, PyUnicode_DecodeASCII(p, s1, "strict"),
                        PyBytes_FromStringAndSize(p + s3 + 1, n - s3 - 1) if s3 < n else b"",
                        tag == b"F")
        return out, bad


cdef object _loads = json.loads


cdef bytes _utf8(str s):
    """UTF-8 of a decoded JSON string; a lone surrogate (a ``\\udXXX``
    escape UTF-8 cannot carry) becomes U+FFFD."""
    try:
        return s.encode("utf-8")
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode("utf-8")


cdef class DockerParser(_Joiner):
    """Docker json-file lines ``{"log":"...\\n","stream":"stdout","time":"..."}``."""

    def parse_batch(self, list lines):
        cdef list out = []
        cdef int bad = 0
        cdef str log, t
        cdef bytes sb, tb
        cdef bint last
        for line in lines:
            try:
                obj = _loads(line)
            except (ValueError, RecursionError):
                bad += 1
                continue
            if type(obj) is not dict:
                bad += 1
                continue
            log_o = obj.get("log")
            stream_o = obj.get("stream")
            t_o = obj.get("time")
            if not (isinstance(log_o, str) and isinstance(stream_o, str) and isinstance(t_o, str)):
                bad += 1
                continue
            if stream_o == "stdout":
                sb = STDOUT
            elif stream_o == "stderr":
                sb = STDERR
            else:
                bad += 1
                continue
            t = t_o
            if not t.isascii():
                bad += 1
                continue
            tb = t.encode("ascii")
            if not _rfc3339(<const unsigned char*>PyBytes_AS_STRING(tb), PyBytes_GET_SIZE(tb)):
                bad += 1
                continue
            log = log_o
            last = log.endswith("\n")
            self._piece(out, sb, t, _utf8(log[:len(log) - 1] if last else log), last)
        return out, bad
