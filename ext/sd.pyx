# cython: language_level=3
"""RFC5424 STRUCTURED-DATA parsed into fields, in C: the same answer as
logtrain.sd.parse_sd_py (the tests compare the two on arbitrary input)."""


cdef inline bint _name_char(Py_UCS4 c):
    # SD-NAME: printable US-ASCII except '=', space, ']' and '"'
    return 33 <= c <= 126 and c != 61 and c != 93 and c != 34


cdef Py_ssize_t _name(str s, Py_ssize_t i, Py_ssize_t n, str what) except -1:
    cdef Py_ssize_t j = i
    while j < n and j - i < 33 and _name_char(s[j]):
        j += 1
    if j == i or j - i > 32:
        raise ValueError(f"STRUCTURED-DATA: bad {what} at offset {i}")
    return j


def parse_sd(str sd):
    """``[id p="v" ...][id2 ...]`` as ``{id: {p: v}}`` (see logtrain.sd.parse_sd_py)."""
    cdef dict out = {}
    cdef dict params
    cdef Py_ssize_t n = len(sd), i = 0, j, start
    cdef Py_UCS4 c
    cdef list chars
    cdef str sd_id, name, value
    if n == 0 or sd == "-":
        return out
    while i < n:
        if sd[i] != "[":
            raise ValueError(f"STRUCTURED-DATA: expected '[' at offset {i}")
        j = _name(sd, i + 1, n, "SD-ID")
        sd_id = sd[i + 1:j]
        i = j
        params = out.get(sd_id)
        if params is None:
            params = out[sd_id] = {}
        while True:
            if i >= n:
                raise ValueError("STRUCTURED-DATA: unterminated SD-ELEMENT")
            if sd[i] == "]":
                i += 1
                break
            if sd[i] != " ":
                raise ValueError(f"STRUCTURED-DATA: expected ' ' or ']' at offset {i}")
            j = _name(sd, i + 1, n, "PARAM-NAME")
            name = sd[i + 1:j]
            i = j
            if i + 1 >= n or sd[i] != "=" or sd[i + 1] != '"':
                raise ValueError(f'STRUCTURED-DATA: expected =" at offset {i}')
            i += 2
            chars = None
            start = i
            while True:
                if i >= n:
                    raise ValueError("STRUCTURED-DATA: unterminated PARAM-VALUE")
                c = sd[i]
                if c == 92 and i + 1 < n and (sd[i + 1] == '"' or sd[i + 1] == "\\"
                                              or sd[i + 1] == "]"):
                    if chars is None:
                        chars = []
                    chars.append(sd[start:i])
                    chars.append(sd[i + 1])
                    i += 2
                    start = i
                    continue
                if c == 34:
                    break
                i += 1
            if chars is None:
                value = sd[start:i]
            else:
                chars.append(sd[start:i])
                value = "".join(chars)
            i += 1
            old = params.get(name)
            if old is None:
                params[name] = value
            elif type(old) is list:
                (<list>old).append(value)
            else:
                params[name] = [old, value]
    return out
