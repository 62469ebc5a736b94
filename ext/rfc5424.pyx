# cython: language_level=3
"""RFC5424 formatting of a whole batch in one call.

Same output as logtrain.syslog.format_rfc5424_py (the tests compare the two on
arbitrary packets); this one avoids the per-packet f-string and list building.
"""

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
    cdef int fac = p.facility
    cdef int sev = p.severity
    cdef str msg = p.message
    cdef str t = p.time
    if fac < 0 or fac > 23:
        fac = 1
    if sev < 0 or sev > 7:
        sev = 5
    msg = msg.rstrip("\r\n")
    if not octet and "\n" in msg:
        msg = msg.replace("\n", " ")
    cdef bytes line = (
        f"<{fac * 8 + sev}>1 {t or '-'} {_clean(p.hostname, 255)} {_clean(p.tag, 48)} - - - {msg}"
    ).encode("utf-8", "replace")
    if max_len and len(line) > max_len:
        line = _truncate_utf8(line, max_len)
    return line


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
            out.append(line + b"\n")
    return b"".join(out)


def format_datagrams(list packets, Py_ssize_t max_len):
    """One unframed RFC5424 message per datagram, each at most ``max_len`` bytes."""
    return [_line(p, True, max_len) for p in packets]
