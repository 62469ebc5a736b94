# cython: language_level=3
"""Batch serialization in C: packet JSON, NDJSON and Elasticsearch bulk bodies.

Packet JSON is the original's six fields, then ``procid``, ``msgid`` and
``structured_data`` only when not empty.

Same output as the Python references in logtrain.serialize (the tests compare
them on arbitrary strings). JSON string escaping is right for every code
point: the short escapes, other control characters as \\u00XX, and lone
surrogates as \\uDXXX, so the output always encodes as UTF-8.
"""

from cpython.unicode cimport PyUnicode_AsUTF8String

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


def es_bulk(list packets, str index):
    """An Elasticsearch _bulk body: an index action and a document per packet."""
    cdef str action = '{"index":{"_index":' + _escape(index) + '}}\n'
    cdef list out = []
    for p in packets:
        out.append(action)
        out.append(f'{{"@timestamp":{_escape(p.time)},"severity":{<int>p.severity},'
                   f'"facility":{<int>p.facility},"hostname":{_escape(p.hostname)},'
                   f'"tag":{_escape(p.tag)},"message":{_escape(p.message)}}}\n')
    return PyUnicode_AsUTF8String("".join(out))
