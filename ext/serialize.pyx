# cython: language_level=3
"""Batch serialization in C: packet JSON, NDJSON and Elasticsearch bulk bodies
(``create`` actions with deterministic ids, @timestamp in UTC with microseconds).

Packet JSON is the original's six fields, then ``procid``, ``msgid`` and
``structured_data`` only when not empty.

Same output as the Python references in logtrain.serialize (the tests compare
them on arbitrary strings). JSON string escaping is right for every code
point: the short escapes, other control characters as \\u00XX, and lone
surrogates as \\uDXXX, so the output always encodes as UTF-8.
"""

from cpython.unicode cimport PyUnicode_AsUTF8String, PyUnicode_DecodeASCII
from libc.stdint cimport uint16_t, uint32_t
from libc.string cimport memcpy

# The escapes JSON has a short form for; every other one is \\uXXXX.
cdef dict _SHORT = {0x22: '\\"', 0x5C: '\\\\', 0x0A: '\\n', 0x0D: '\\r', 0x09: '\\t',
                    0x08: '\\b', 0x0C: '\\f'}


cdef inline bint _needs_escape(Py_UCS4 c):
    return c < 0x20 or c == 0x22 or c == 0x5C or (0xD800 <= c <= 0xDFFF)


cdef extern from "Python.h":
    # CPython's compact string layout: one, two or four bytes per code point
    int PyUnicode_KIND(object s)
    void* PyUnicode_DATA(object s)
    Py_ssize_t PyUnicode_GET_LENGTH(object s)


cdef str _escape(str s):
    cdef Py_ssize_t i, n
    cdef const unsigned char* p
    if PyUnicode_KIND(s) == 1:
        # the common case, Latin-1 text with nothing to escape, in a C loop
        p = <const unsigned char*>PyUnicode_DATA(s)
        n = PyUnicode_GET_LENGTH(s)
        for i in range(n):
            if p[i] < 0x20 or p[i] == 0x22 or p[i] == 0x5C:
                return _escape_any(s)
        return '"' + s + '"'
    return _escape_any(s)


cdef str _escape_any(str s):
    cdef Py_UCS4 c
    cdef list out = ['"']
    cdef Py_ssize_t start = 0, i = 0
    cdef unsigned int code
    cdef object esc
    for c in s:
        if _needs_escape(c):
            if i > start:
                out.append(s[start:i])
            code = c
            esc = _SHORT.get(code)
            out.append(esc if esc is not None else "\\u%04x" % code)
            start = i + 1
        i += 1
    if start == 0:
        return '"' + s + '"'
    if i > start:
        out.append(s[start:i])
    out.append('"')
    return "".join(out)


def json_string(str s):
    """``s`` as a JSON string literal (quotes included)."""
    return _escape(s)


cdef str _packet(object p):
    cdef str out = (f'{{"severity":{<int>p.severity},"facility":{<int>p.facility},'
                    f'"hostname":{_escape(p.hostname)},"tag":{_escape(p.tag)},'
                    f'"time":{_escape(p.time)},"message":{_escape(p.message)}')
    cdef str procid = p.procid, msgid = p.msgid, sd = p.sd
    # the optional fields only when the sender gave them: the original's six
    # fields stay exactly as they were for its consumers
    if procid:
        out += ',"procid":' + _escape(procid)
    if msgid:
        out += ',"msgid":' + _escape(msgid)
    if sd:
        out += ',"structured_data":' + _escape(sd)
    return out + "}"


def packet_json(object p):
    """One packet's JSON, UTF-8 encoded, as the original posts it."""
    return PyUnicode_AsUTF8String(_packet(p))


def packet_jsons(list packets):
    """Each packet's JSON body, UTF-8 encoded."""
    return [PyUnicode_AsUTF8String(_packet(p)) for p in packets]


def ndjson(list packets):
    """One packet JSON per line, the whole batch as one UTF-8 body."""
    cdef list out = []
    for p in packets:
        out.append(_packet(p))
        out.append("\n")
    return PyUnicode_AsUTF8String("".join(out))


# --- Elasticsearch bulk bodies (reference: es_time_py, doc_id_py, es_bulk_py)

cdef long long _days_from_civil(long long y, long long m, long long d):
    y -= m <= 2
    cdef long long era = y // 400  # floor division: Cython keeps Python semantics
    cdef long long yoe = y - era * 400
    cdef long long doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


cdef void _civil_from_days(long long z, long long* y, long long* m, long long* d):
    z += 719468
    cdef long long era = z // 146097
    cdef long long doe = z - era * 146097
    cdef long long yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    cdef long long doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    cdef long long mp = (5 * doy + 2) // 153
    d[0] = doy - (153 * mp + 2) // 5 + 1
    m[0] = mp + 3 if mp < 10 else mp - 9
    y[0] = yoe + era * 400 + (m[0] <= 2)


cdef inline int _num(const unsigned char* t, Py_ssize_t i, int n):
    cdef int v = 0, k, x
    for k in range(n):
        x = <int>t[i + k] - 48
        if x < 0 or x > 9:
            return -1
        v = v * 10 + x
    return v


cdef inline void _put(char* out, long long v, int width):
    cdef int k
    for k in range(width - 1, -1, -1):
        out[k] = <char>(48 + v % 10)
        v //= 10


cdef bint _es_time(str text, char* ts, char* day):
    """es_time_py in C: fills ts (27 chars) and day (10 chars); False when
    text is not RFC3339 with fields in range. Such a time is ASCII: a string
    that is not one byte per character cannot be one."""
    if PyUnicode_KIND(text) != 1:
        return False
    cdef const unsigned char* t = <const unsigned char*>PyUnicode_DATA(text)
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text), i = 19, f0, nf, k
    cdef long long y, mo, d, h, mi, s, off = 0, total, days, rest
    cdef int oh, om
    cdef unsigned char c
    if n < 20:
        return False
    if t[4] != 45 or t[7] != 45 or (t[10] != 84 and t[10] != 116) or t[13] != 58 or t[16] != 58:
        return False
    y = _num(t, 0, 4); mo = _num(t, 5, 2); d = _num(t, 8, 2)
    h = _num(t, 11, 2); mi = _num(t, 14, 2); s = _num(t, 17, 2)
    if y < 0 or mo < 1 or mo > 12 or d < 1 or d > 31 or h < 0 or h > 23 or mi < 0 or mi > 59 \
            or s < 0 or s > 60:
        return False
    f0 = 0
    nf = 0
    if t[i] == 46:  # .
        i += 1
        f0 = i
        while i < n and 48 <= t[i] <= 57:
            i += 1
        nf = i - f0
        if nf < 1 or nf > 9:
            return False
    if i >= n:
        return False
    c = t[i]
    if c == 90 or c == 122:  # Z z
        if i + 1 != n:
            return False
    elif c == 43 or c == 45:  # + -
        if i + 6 != n or t[i + 3] != 58:
            return False
        oh = _num(t, i + 1, 2)
        om = _num(t, i + 4, 2)
        if oh < 0 or oh > 23 or om < 0 or om > 59:
            return False
        off = (oh * 3600 + om * 60) * (1 if c == 43 else -1)
    else:
        return False
    if off:
        total = _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - off
        days = total // 86400
        rest = total - days * 86400
        _civil_from_days(days, &y, &mo, &d)
        h = rest // 3600
        mi = rest // 60 % 60
        s = rest % 60
        if y < 0 or y > 9999:
            return False
    # YYYY-MM-DDThh:mm:ss.ffffffZ
    _put(ts, y, 4); ts[4] = 45; _put(ts + 5, mo, 2); ts[7] = 45; _put(ts + 8, d, 2)
    ts[10] = 84; _put(ts + 11, h, 2); ts[13] = 58; _put(ts + 14, mi, 2); ts[16] = 58
    _put(ts + 17, s, 2); ts[19] = 46
    for k in range(6):
        ts[20 + k] = <char>(t[f0 + k] if k < nf else 48)
    ts[26] = 90
    memcpy(day, ts, 10)
    day[4] = 46
    day[7] = 46
    return True


def es_time(str t):
    """(``@timestamp``, ``YYYY.MM.DD``) or None; see logtrain.serialize.es_time_py."""
    cdef char ts[28]
    cdef char day[11]
    if not _es_time(t, ts, day):
        return None
    return PyUnicode_DecodeASCII(ts, 27, NULL), PyUnicode_DecodeASCII(day, 10, NULL)


cdef inline unsigned long long _fmix(unsigned long long h):
    h ^= h >> 33
    h *= 0xFF51AFD7ED558CCDULL
    h ^= h >> 33
    h *= 0xC4CEB9FE1A85EC53ULL
    h ^= h >> 33
    return h


cdef inline void _mix(unsigned long long* h1, unsigned long long* h2, unsigned long long w):
    h1[0] = (h1[0] ^ w) * 0x100000001B3ULL
    h1[0] ^= h1[0] >> 29
    h2[0] = (h2[0] ^ w) * 0x9E3779B97F4A7C15ULL
    h2[0] ^= h2[0] >> 31


cdef unsigned long long _doc_id(str doc, Py_ssize_t n, char* out):
    """Writes the document id (32 hex digits) into ``out`` and returns its
    first half. Written here rather than with hashlib: it runs once per
    document at hundreds of thousands a second, and hashlib would need a
    bytes copy of each. Latin-1 text is read eight bytes at a time."""
    cdef unsigned long long h1 = 0xCBF29CE484222325ULL, h2 = 0x84222325CBF29CE4ULL
    cdef unsigned long long w
    cdef Py_ssize_t i = 0, k
    cdef int kind = PyUnicode_KIND(doc)
    cdef const unsigned char* p1 = <const unsigned char*>PyUnicode_DATA(doc)
    cdef const uint16_t* p2 = <const uint16_t*>p1
    cdef const uint32_t* p4 = <const uint32_t*>p1
    if kind == 1:
        while i + 8 <= n:
            memcpy(&w, p1 + i, 8)  # little-endian on the machines we build for
            _mix(&h1, &h2, w)
            i += 8
        w = 0
        for k in range(n - i):
            w |= (<unsigned long long>p1[i + k]) << (8 * k)
        _mix(&h1, &h2, w)
    else:
        for i in range(n):
            _mix(&h1, &h2, p2[i] if kind == 2 else p4[i])
    h1 = _fmix(h1 ^ <unsigned long long>n)
    h2 = _fmix(h2 ^ (<unsigned long long>n * 0x9E3779B97F4A7C15ULL))
    for k in range(16):
        out[15 - k] = _HEX[(h1 >> (4 * k)) & 15]
        out[31 - k] = _HEX[(h2 >> (4 * k)) & 15]
    return h1


cdef const char* _HEX = b"0123456789abcdef"


def doc_id(str doc):
    cdef char buf[32]
    _doc_id(doc, PyUnicode_GET_LENGTH(doc), buf)
    return PyUnicode_DecodeASCII(buf, 32, NULL)


def es_bulk(list packets, str index, str prefix="", str suffix="", bint daily=False,
            str today=""):
    """An Elasticsearch _bulk body of ``create`` actions; see
    logtrain.serialize.es_bulk_py, which it matches byte for byte."""
    cdef list out = []
    cdef dict seen = {}, actions = {}
    cdef char ts[28]
    cdef char day[11]
    cdef char idbuf[32]
    cdef str doc, name, ident, action, tstr, dstr, procid, msgid, sd, extra
    cdef object n, key, hkey
    for p in packets:
        if _es_time(p.time, ts, day):
            tstr = PyUnicode_DecodeASCII(ts, 27, NULL)
            dstr = PyUnicode_DecodeASCII(day, 10, NULL) if daily else ""
        else:
            tstr = p.time
            dstr = today
        procid = p.procid
        msgid = p.msgid
        sd = p.sd
        extra = ""
        if procid:
            extra = ',"procid":' + _escape(procid)
        if msgid:
            extra += ',"msgid":' + _escape(msgid)
        if sd:
            extra += ',"structured_data":' + _escape(sd)
        doc = (f'{{"@timestamp":{_escape(tstr)},"hostname":{_escape(p.hostname)},'
               f'"tag":{_escape(p.tag)},"message":{_escape(p.message)},'
               f'"severity":{<int>p.severity},"facility":{<int>p.facility}{extra}}}\n')
        key = (index or p.hostname, dstr) if daily else (index or p.hostname)
        action = actions.get(key)
        if action is None:
            name = index or prefix + p.hostname.lower() + suffix
            if daily:
                name += "-" + dstr
            action = '{"create":{"_index":' + _escape(name) + ',"_id":"'
            actions[key] = action
        hkey = _doc_id(doc, PyUnicode_GET_LENGTH(doc) - 1, idbuf)  # without the newline
        ident = PyUnicode_DecodeASCII(idbuf, 32, NULL)
        n = seen.get(hkey)
        if n is None:
            seen[hkey] = 1
        else:
            seen[hkey] = n + 1
            ident += f"-{n}"
        out.append(f'{action}{ident}"}}}}\n{doc}')
    return PyUnicode_AsUTF8String("".join(out))
