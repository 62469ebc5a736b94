# cython: language_level=3
"""C helpers shared by the extension modules (inlined into each)."""


cdef inline bint _digit(unsigned char c) nogil:
    return 48 <= c <= 57


cdef inline bint _rfc3339(const unsigned char* p, Py_ssize_t n):
    """``\\d{4}-MM-DD[Tt]hh:mm:ss(.\\d{1,9})?([Zz]|[+-]hh:mm)`` with the field
    ranges of logtrain.packet's pattern, over ASCII bytes."""
    cdef Py_ssize_t i, k
    if n < 20:
        return False
    for i in range(4):
        if not _digit(p[i]):
            return False
    if p[4] != 45 or p[7] != 45 or (p[10] != 84 and p[10] != 116) or p[13] != 58 or p[16] != 58:
        return False
    for i in (5, 6, 8, 9, 11, 12, 14, 15, 17, 18):
        if not _digit(p[i]):
            return False
    # month 01-12, day 01-31, hour 00-23, minute 00-59, second 00-60
    if p[5] == 48:
        if p[6] == 48:
            return False
    elif not (p[5] == 49 and p[6] <= 50):
        return False
    if p[8] == 48:
        if p[9] == 48:
            return False
    elif p[8] == 51:
        if p[9] > 49:
            return False
    elif p[8] > 51:
        return False
    if p[11] == 50:
        if p[12] > 51:
            return False
    elif p[11] > 50:
        return False
    if p[14] > 53:
        return False
    if p[17] == 54:
        if p[18] != 48:
            return False
    elif p[17] > 54:
        return False
    i = 19
    if p[i] == 46:
        k = i + 1
        while k < n and _digit(p[k]):
            k += 1
        if k - (i + 1) < 1 or k - (i + 1) > 9:
            return False
        i = k
    if i >= n:
        return False
    if p[i] == 90 or p[i] == 122:
        return i + 1 == n
    if p[i] != 43 and p[i] != 45:
        return False
    if n - i != 6 or p[i + 3] != 58:
        return False
    if not (_digit(p[i + 1]) and _digit(p[i + 2]) and _digit(p[i + 4]) and _digit(p[i + 5])):
        return False
    if p[i + 1] == 50:
        if p[i + 2] > 51:
            return False
    elif p[i + 1] > 50:
        return False
    return p[i + 4] <= 53
