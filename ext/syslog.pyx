# cython: language_level=3
"""Syslog per-line work in C: RFC5424/RFC3164 parsing, RFC5424 formatting of
a whole batch (RFC6587 framing is ext/framing.pyx).

Each function gives exactly what its Python reference in logtrain.syslog
gives (the tests compare the two on arbitrary input); the inputs call them
once per read or per batch. RFC5424 headers are scanned with C loops over the
frame's bytes; RFC3164, whose timestamps need the local time zone, runs the
reference's own logic compiled.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeASCII, PyUnicode_DecodeUTF8
from libc.string cimport memchr, memcmp

from _common cimport _digit, _rfc3339

import re

# Bound by logtrain.syslog at import (it imports this module): the classes and
# helpers the output is made of, without a circular import.
cdef object Packet = None
cdef object now_rfc3339 = None
cdef object local_rfc3339 = None


def _bind(packet, now, local):
    global Packet, now_rfc3339, local_rfc3339
    Packet = packet
    now_rfc3339 = now
    local_rfc3339 = local


# logtrain.packet's MSG_ERRORS and WIRE_ERRORS (see there why)
cdef const char* MSG_ERRORS = "surrogateescape"
cdef str WIRE_ERRORS = "logtrain.wire"

# --------------------------------------------------------------------------- parsing


def is_rfc3339_bytes(bytes value):
    return _rfc3339(<const unsigned char*>PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value))


cdef inline str _text(const unsigned char* p, Py_ssize_t n):
    return PyUnicode_DecodeUTF8(<const char*>p, n, "replace")


cdef class _Seen:
    """The HOSTNAME and APP-NAME of the previous frame of a batch: a batch
    mostly comes from one sender, and sharing one str between its packets
    saves a decode and about 60 bytes per field and packet."""
    cdef bytes frame
    cdef Py_ssize_t at[2]
    cdef Py_ssize_t n[2]
    cdef str host, app

    def __cinit__(self):
        self.frame = None
        self.host = self.app = None


cdef inline str _field_seen(_Seen seen, int k, bytes frame, const unsigned char* p,
                            Py_ssize_t a, Py_ssize_t b):
    cdef str t
    cdef const char* q
    if seen is not None and seen.frame is not None and seen.n[k] == b - a:
        q = PyBytes_AS_STRING(seen.frame) + seen.at[k]
        if memcmp(q, p + a, b - a) == 0:
            return seen.host if k == 0 else seen.app
    t = _field(p, a, b)
    if seen is not None:
        seen.at[k] = a
        seen.n[k] = b - a
        if k == 0:
            seen.host = t
        else:
            seen.app = t
    return t


cdef object _parse(bytes frame, _Seen seen=None):
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(frame)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(frame)
    cdef Py_ssize_t end = -1, i
    cdef int pri = 0
    if n < 3 or p[0] != 60:
        raise ValueError("no <PRI> at the start of the frame")
    for i in range(1, min(n, 5)):
        if p[i] == 62:
            end = i
            break
    if end < 2:
        raise ValueError("malformed <PRI>")
    for i in range(1, end):
        if not _digit(p[i]):
            raise ValueError("malformed <PRI>")
        pri = pri * 10 + (p[i] - 48)
    if pri > 191:
        raise ValueError("PRI out of range")
    if n - (end + 1) >= 2 and p[end + 1] == 49 and p[end + 2] == 32:
        # A leading zero in PRI is read, but such a frame is not copied as it is.
        return _parse_5424(pri, frame, p, end + 3, n, p[1] != 48 or end == 2, seen)
    return _parse_3164(pri, frame[end + 1:])


cdef inline bint _printable(const unsigned char* p, Py_ssize_t a, Py_ssize_t b, Py_ssize_t limit):
    """A header field RFC5424 allows: 1 to ``limit`` printable ASCII octets."""
    cdef Py_ssize_t i
    if b - a < 1 or b - a > limit:
        return False
    for i in range(a, b):
        if p[i] < 33 or p[i] > 126:
            return False
    return True


cdef inline str _field(const unsigned char* p, Py_ssize_t a, Py_ssize_t b):
    """A header field's text, "" for the NILVALUE."""
    if b - a == 1 and p[a] == 45:
        return ""
    return _text(p + a, b - a)


cdef object _parse_5424(int pri, bytes frame, const unsigned char* p, Py_ssize_t pos,
                        Py_ssize_t n, bint copyable, _Seen seen):
    cdef Py_ssize_t starts[6]
    cdef Py_ssize_t ends[5]
    cdef Py_ssize_t k, i, tail, tn, sd, msg
    cdef const unsigned char* hit
    cdef bint in_quotes
    cdef unsigned char c
    cdef str t, sd_text, host, app
    starts[0] = pos
    for k in range(5):
        hit = <const unsigned char*>memchr(p + starts[k], 32, n - starts[k])
        if hit == NULL:
            raise ValueError("RFC5424 header is incomplete")
        ends[k] = hit - p
        starts[k + 1] = ends[k] + 1
    # fields: 0 TIMESTAMP, 1 HOSTNAME, 2 APP-NAME, 3 PROCID, 4 MSGID, then the tail
    if ends[0] - starts[0] == 1 and p[starts[0]] == 45:
        t = now_rfc3339()
    else:
        if not _rfc3339(p + starts[0], ends[0] - starts[0]):
            raise ValueError("RFC5424 timestamp is not RFC3339")
        t = PyUnicode_DecodeASCII(<const char*>p + starts[0], ends[0] - starts[0], "strict")
    if ends[1] - starts[1] > 255 or ends[2] - starts[2] > 48:
        raise ValueError("RFC5424 HOSTNAME or APP-NAME too long")
    tail = starts[5]
    tn = n - tail
    # STRUCTURED-DATA (logtrain.sd.sd_end); a tail that does not start with a
    # well-formed one is all message (Heroku's logplex frames leave the field
    # out), and such a frame is re-formatted with a NILVALUE SD
    sd = -1
    if tn >= 1 and p[tail] == 45:
        if tn == 1 or p[tail + 1] == 32:
            sd = 1
    elif tn >= 1 and p[tail] == 91:
        i = 0
        in_quotes = False
        while i < tn:
            c = p[tail + i]
            if in_quotes:
                if c == 92:  # a backslash escapes the next octet inside a PARAM-VALUE
                    i += 2
                    continue
                if c == 34:
                    in_quotes = False
            elif c == 34:
                in_quotes = True
            elif c == 93:
                if i + 1 < tn and p[tail + i + 1] == 91:  # another SD-ELEMENT follows
                    i += 1
                    continue
                if i + 1 == tn or p[tail + i + 1] == 32:
                    sd = i + 1
                break
            i += 1
    if sd < 0:
        msg = tail
        sd_text = ""
        copyable = False
    else:
        msg = tail + sd + 1
        if msg > n:
            msg = n
        if sd == 1 and p[tail] == 45:
            sd_text = ""
        else:
            sd_text = PyUnicode_DecodeUTF8(<const char*>p + tail, sd, MSG_ERRORS)
    if n - msg >= 3 and p[msg] == 0xEF and p[msg + 1] == 0xBB and p[msg + 2] == 0xBF:
        msg += 3
    if copyable:
        copyable = (_printable(p, starts[1], ends[1], 255) and _printable(p, starts[2], ends[2], 48)
                    and _printable(p, starts[3], ends[3], 128)
                    and _printable(p, starts[4], ends[4], 32))
    host = _field_seen(seen, 0, frame, p, starts[1], ends[1])
    app = _field_seen(seen, 1, frame, p, starts[2], ends[2])
    if seen is not None:
        seen.frame = frame
    if copyable:  # the message is decoded only if something reads it
        return Packet(pri & 7, pri >> 3, host, app, t, None, _field(p, starts[3], ends[3]),
                      _field(p, starts[4], ends[4]), sd_text, frame, msg)
    return Packet(pri & 7, pri >> 3, host, app, t,
                  PyUnicode_DecodeUTF8(<const char*>p + msg, n - msg, MSG_ERRORS),
                  _field(p, starts[3], ends[3]), _field(p, starts[4], ends[4]), sd_text, None, 0)


_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"]
    )
}
_TAG = re.compile(rb"([^\s\[\]:]{1,48})(?:\[([^\]\s]*)\])?:? ?")


cdef object _parse_3164(int pri, bytes rest):
    # The reference's logic, compiled: RFC3164 is the rare, forgiving path.
    t, rest = _take_3164_time(rest)
    host = b""
    sp = rest.find(b" ")
    if t is not None and sp > 0:
        token = rest[:sp]
        if not token.endswith(b":") and b"[" not in token:
            host, rest = token, rest[sp + 1:]
    m = _TAG.match(rest)
    pid = b""
    if m and (m.group(0).endswith(b": ") or m.group(0).endswith(b":") or b"[" in m.group(0)):
        tag, pid, msg = m.group(1), m.group(2) or b"", rest[m.end():]
    else:
        tag, msg = b"", rest
    return Packet(pri & 7, pri >> 3, host.decode("utf-8", "replace"),
                  tag.decode("utf-8", "replace"), t or now_rfc3339(),
                  msg.decode("utf-8", MSG_ERRORS), pid.decode("utf-8", "replace"))


cdef tuple _take_3164_time(bytes rest):
    month = _MONTHS.get(rest[:3])
    if month and len(rest) >= 16 and rest[3] == 32 and rest[15] == 32:
        try:
            day = int(rest[4:6])
            hh, mm, ss = int(rest[7:9]), int(rest[10:12]), int(rest[13:15])
            return local_rfc3339(month, day, hh, mm, ss), rest[16:]
        except ValueError:
            return None, rest
    sp = rest.find(b" ")
    if sp > 0 and rest[:1].isdigit():
        cand = rest[:sp]
        if _rfc3339(<const unsigned char*>PyBytes_AS_STRING(cand), PyBytes_GET_SIZE(cand)):
            return cand.decode("ascii"), rest[sp + 1:]
    return None, rest


def parse(bytes frame):
    """Parses one RFC5424 or RFC3164 frame; raises ValueError with the reason."""
    return _parse(frame)


def parse_batch(list frames):
    """Parses a batch: (packets, number of malformed frames, the last reason)."""
    cdef list packets = []
    cdef int bad = 0
    cdef str reason = ""
    cdef _Seen seen = _Seen()
    for f in frames:
        try:
            packets.append(_parse(f, seen))
        except ValueError as e:
            bad += 1
            reason = str(e)
    return packets, bad, reason


# --------------------------------------------------------------------------- formatting


cdef inline str _clean(str value, Py_ssize_t limit):
    cdef Py_ssize_t i, n
    cdef Py_UCS4 c
    if not value:
        return "-"
    n = len(value)
    if n > limit:
        value = value[:limit]
        n = limit
    for i in range(n):
        c = value[i]
        if c < 33 or c > 126:
            break
    else:
        return value
    return "".join([ch if 33 <= ord(ch) <= 126 else "_" for ch in value])


cdef bytes _truncate_utf8(bytes b, Py_ssize_t limit):
    cdef Py_ssize_t i
    cdef unsigned char c
    cdef int need
    if len(b) <= limit:
        return b
    b = b[:limit]
    i = len(b) - 1
    while i >= 0 and (b[i] & 0xC0) == 0x80:
        i -= 1
    if i >= 0 and b[i] >= 0xC0:
        c = b[i]
        need = 2 if c < 0xE0 else (3 if c < 0xF0 else 4)
        if len(b) - i < need:
            b = b[:i]
    return b


cdef bytes _line(object p, bint octet, Py_ssize_t max_len):
    """One packet's RFC5424 message (logtrain.syslog._wire): its frame as it came
    when it has one, else formatted."""
    cdef object raw = p.raw
    cdef bytes line
    cdef const char* r
    cdef Py_ssize_t n
    if raw is not None:
        line = <bytes>raw
        r = PyBytes_AS_STRING(line)
        n = PyBytes_GET_SIZE(line)
        if n and (r[n - 1] == 10 or r[n - 1] == 13):
            line = line.rstrip(b"\r\n")
            n = PyBytes_GET_SIZE(line)
            r = PyBytes_AS_STRING(line)
        if not octet and memchr(r, 10, n) != NULL:
            line = line.replace(b"\n", b" ")
    else:
        line = _format(p, octet)
    if max_len and len(line) > max_len:
        line = _truncate_utf8(line, max_len)
    return line


cdef bytes _format(object p, bint octet):
    cdef int fac = p.facility
    cdef int sev = p.severity
    cdef str msg = p.message
    cdef str t = p.time
    cdef str sd = p.sd or "-"
    if fac < 0 or fac > 23:
        fac = 1
    if sev < 0 or sev > 7:
        sev = 5
    msg = msg.rstrip("\r\n")
    if not octet:
        if "\n" in msg:
            msg = msg.replace("\n", " ")
        if "\n" in sd:
            sd = sd.replace("\n", " ")
    return (
        f"<{fac * 8 + sev}>1 {t or '-'} {_clean(p.hostname, 255)} {_clean(p.tag, 48)} "
        f"{_clean(p.procid, 128)} {_clean(p.msgid, 32)} {sd} {msg}"
    ).encode("utf-8", WIRE_ERRORS)


def format_rfc5424(list packets, bint octet=False, Py_ssize_t max_len=0):
    """Formats a batch into RFC5424 wire bytes (newline-terminated, or RFC6587
    octet-counted with ``octet``); ``max_len`` caps each message's bytes."""
    cdef list out = []
    cdef bytes line
    for p in packets:
        line = _line(p, octet, max_len)
        if octet:
            out.append(b"%d %s" % (len(line), line))
        else:
            out.append(line)
            out.append(b"\n")
    return b"".join(out)


def format_datagrams(list packets, Py_ssize_t max_len):
    """One unframed RFC5424 message per datagram, each at most ``max_len`` bytes."""
    return [_line(p, True, max_len) for p in packets]
