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
from libc.stdio cimport snprintf

# The escapes JSON has a short form for; every other one is \\uXXXX.
cdef dict _SHORT = {0x22: '\\"', 0x5C: '\\\\', 0x0A: '\\n', 0x0D: '\\r', 0x09: '\\t',
                    0x08: '\\b', 0x0C: '\\f'}


cdef inline bint _needs_escape(Py_UCS4 c):
    return c < 0x20 or c == 0x22 or c == 0x5C or (0xD800 <= c <= 0xDFFF)


cdef str _escape(str s):
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


cdef inline int _dig(str t, Py_ssize_t i):
    cdef Py_UCS4 c = t[i]
    return <int>c - 48 if 48 <= c <= 57 else -1


cdef inline int _num(str t, Py_ssize_t i, int n):
    cdef int v = 0, k, x
    for k in range(n):
        x = _dig(t, i + k)
        if x < 0:
            return -1
        v = v * 10 + x
    return v


cdef bint _es_time(str t, char* ts, char* day):
    """es_time_py in C: fills ts (27 chars) and day (10 chars); False when t
    is not RFC3339 with fields in range."""
    cdef Py_ssize_t n = len(t), i = 19, f0, nf, k
    cdef long long y, mo, d, h, mi, s, off = 0, total, days, rest
    cdef int oh, om
    cdef Py_UCS4 c
    if n < 20:
        return False
    if t[4] != u'-' or t[7] != u'-' or (t[10] != u'T' and t[10] != u't') \
            or t[13] != u':' or t[16] != u':':
        return False
    y = _num(t, 0, 4); mo = _num(t, 5, 2); d = _num(t, 8, 2)
    h = _num(t, 11, 2); mi = _num(t, 14, 2); s = _num(t, 17, 2)
    if y < 0 or mo < 1 or mo > 12 or d < 1 or d > 31 or h < 0 or h > 23 or mi < 0 or mi > 59 \
            or s < 0 or s > 60:
        return False
    f0 = 0
    nf = 0
    if t[i] == u'.':
        i += 1
        f0 = i
        while i < n and _dig(t, i) >= 0:
            i += 1
        nf = i - f0
        if nf < 1 or nf > 9:
            return False
    if i >= n:
        return False
    c = t[i]
    if c == u'Z' or c == u'z':
        if i + 1 != n:
            return False
    elif c == u'+' or c == u'-':
        if i + 6 != n or t[i + 3] != u':':
            return False
        oh = _num(t, i + 1, 2)
        om = _num(t, i + 4, 2)
        if oh < 0 or oh > 23 or om < 0 or om > 59:
            return False
        off = (oh * 3600 + om * 60) * (1 if c == u'+' else -1)
    else:
        return False
    if off:
        total = _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - off
        days = total // 86400
        rest = total - days * 86400
        if rest < 0:
            days -= 1
            rest += 86400
        _civil_from_days(days, &y, &mo, &d)
        h = rest // 3600
        mi = rest // 60 % 60
        s = rest % 60
        if y < 0 or y > 9999:
            return False
    snprintf(ts, 28, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.", y, mo, d, h, mi, s)
    for k in range(6):
        ts[20 + k] = <char>(<int>t[f0 + k] if k < nf else 48)
    ts[26] = 90  # Z
    ts[27] = 0
    snprintf(day, 11, "%04lld.%02lld.%02lld", y, mo, d)
    return True


def es_time(str t):
    """(``@timestamp``, ``YYYY.MM.DD``) or None; see logtrain.serialize.es_time_py."""
    cdef char ts[28]
    cdef char day[11]
    if not _es_time(t, ts, day):
        return None
    return PyUnicode_DecodeASCII(ts, 27, NULL), PyUnicode_DecodeASCII(day, 10, NULL)


cdef str _doc_id(str doc):
    # FNV-1a, written here rather than hashlib: this runs once per document at
    # hundreds of thousands a second, and hashlib would need a bytes copy of each.
    cdef unsigned long long h1 = 0xCBF29CE484222325ULL, h2 = 0x84222325CBF29CE4ULL
    cdef Py_UCS4 c
    cdef char buf[33]
    for c in doc:
        h1 = (h1 ^ <unsigned long long>c) * 0x100000001B3ULL
        h2 = (h2 ^ <unsigned long long>c) * 0x9E3779B97F4A7C15ULL
    snprintf(buf, 33, "%016llx%016llx", h1, h2)
    return PyUnicode_DecodeASCII(buf, 32, NULL)


def doc_id(str doc):
    return _doc_id(doc)


def es_bulk(list packets, str index, str prefix="", str suffix="", bint daily=False,
            str today=""):
    """An Elasticsearch _bulk body of ``create`` actions; see
    logtrain.serialize.es_bulk_py, which it matches byte for byte."""
    cdef list out = []
    cdef dict seen = {}, actions = {}
    cdef char ts[28]
    cdef char day[11]
    cdef str doc, name, ident, action, tstr, dstr, procid, msgid, sd
    cdef object n, key
    for p in packets:
        if _es_time(p.time, ts, day):
            tstr = PyUnicode_DecodeASCII(ts, 27, NULL)
            dstr = PyUnicode_DecodeASCII(day, 10, NULL) if daily else ""
        else:
            tstr = p.time
            dstr = today
        doc = (f'{{"@timestamp":{_escape(tstr)},"hostname":{_escape(p.hostname)},'
               f'"tag":{_escape(p.tag)},"message":{_escape(p.message)},'
               f'"severity":{<int>p.severity},"facility":{<int>p.facility}')
        procid = p.procid
        msgid = p.msgid
        sd = p.sd
        if procid:
            doc += ',"procid":' + _escape(procid)
        if msgid:
            doc += ',"msgid":' + _escape(msgid)
        if sd:
            doc += ',"structured_data":' + _escape(sd)
        doc += "}"
        key = (index or p.hostname, dstr) if daily else (index or p.hostname)
        action = actions.get(key)
        if action is None:
            name = index or prefix + p.hostname.lower() + suffix
            if daily:
                name += "-" + dstr
            action = '{"create":{"_index":' + _escape(name) + ',"_id":"'
            actions[key] = action
        ident = _doc_id(doc)
        n = seen.get(ident)
        if n is None:
            seen[ident] = 1
        else:
            seen[ident] = n + 1
            ident += f"-{n}"
        out.append(action)
        out.append(ident)
        out.append('"}}\n')
        out.append(doc)
        out.append("\n")
    return PyUnicode_AsUTF8String("".join(out))
