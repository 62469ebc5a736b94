"""RFC5424 STRUCTURED-DATA: finding where it ends, parsing it into fields.

The relay path only needs ``sd_end`` (where the SD stops and MSG starts): a
packet carries its SD as the text the sender wrote. ``parse_sd`` breaks it into
SD-IDs and parameters for drains that store fields (Elasticsearch documents);
the compiled ``logtrain._syslog.parse_sd`` gives the same answer and is served
as ``parse_sd`` when built; ``parse_sd_py`` is the reference.
"""

from __future__ import annotations

# SD-NAME: printable US-ASCII except '=', space, ']' and '"', 1 to 32 of them.
_NAME_BAD = frozenset(b'= ]"')


def sd_end(tail: bytes) -> int:
    """Index just past STRUCTURED-DATA at the start of ``tail``, or -1 when the
    tail does not start with a well-formed one followed by a space or the end.

    Only the brackets and quotes are checked here (the relay's cost); names are
    checked by ``parse_sd``."""
    n = len(tail)
    if tail[:1] == b"-":
        return 1 if n == 1 or tail[1] == 32 else -1
    if tail[:1] != b"[":
        return -1
    i = 0
    in_quotes = False
    while i < n:
        c = tail[i]
        if in_quotes:
            if c == 92:  # backslash escapes the next octet inside a PARAM-VALUE
                i += 2
                continue
            if c == 34:
                in_quotes = False
        elif c == 34:
            in_quotes = True
        elif c == 93:  # ']'
            if i + 1 < n and tail[i + 1] == 91:  # another SD-ELEMENT follows
                i += 1
                continue
            return i + 1 if i + 1 == n or tail[i + 1] == 32 else -1
        i += 1
    return -1


def _name(s: str, i: int, what: str) -> tuple[str, int]:
    j = i
    n = len(s)
    while j < n and j - i < 33:
        c = ord(s[j])
        if c < 33 or c > 126 or c in _NAME_BAD:
            break
        j += 1
    if j == i or j - i > 32:
        raise ValueError(f"STRUCTURED-DATA: bad {what} at offset {i}")
    return s[i:j], j


def parse_sd_py(sd: str) -> dict[str, dict[str, str | list[str]]]:
    """``[id p="v" ...][id2 ...]`` as ``{id: {p: v}}``; ``\\"``, ``\\\\`` and
    ``\\]`` inside values are unescaped (any other backslash is kept, as
    RFC5424 says; an unescaped ``]`` inside quotes is read as itself, as the
    relay's scanner reads it). A name given twice in one element, or in two elements with
    the same SD-ID, gets the list of its values in order. "" and "-" give {}.
    Raises ValueError naming the offset of what is malformed."""
    out: dict[str, dict[str, str | list[str]]] = {}
    if sd in ("", "-"):
        return out
    n = len(sd)
    i = 0
    while i < n:
        if sd[i] != "[":
            raise ValueError(f"STRUCTURED-DATA: expected '[' at offset {i}")
        sd_id, i = _name(sd, i + 1, "SD-ID")
        params = out.setdefault(sd_id, {})
        while True:
            if i >= n:
                raise ValueError("STRUCTURED-DATA: unterminated SD-ELEMENT")
            if sd[i] == "]":
                i += 1
                break
            if sd[i] != " ":
                raise ValueError(f"STRUCTURED-DATA: expected ' ' or ']' at offset {i}")
            name, i = _name(sd, i + 1, "PARAM-NAME")
            if sd[i:i + 2] != '="':
                raise ValueError(f'STRUCTURED-DATA: expected =" at offset {i}')
            i += 2
            chars = []
            while True:
                if i >= n:
                    raise ValueError("STRUCTURED-DATA: unterminated PARAM-VALUE")
                c = sd[i]
                if c == "\\" and i + 1 < n and sd[i + 1] in '"\\]':
                    chars.append(sd[i + 1])
                    i += 2
                    continue
                if c == '"':
                    i += 1
                    break
                chars.append(c)
                i += 1
            value = "".join(chars)
            old = params.get(name)
            if old is None:
                params[name] = value
            elif isinstance(old, list):
                old.append(value)
            else:
                params[name] = [old, value]
    return out


def escape_param_value(value: str) -> str:
    """A PARAM-VALUE as RFC5424 writes it: '"', '\\' and ']' escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


try:  # the compiled version, when setup.py has built it
    from logtrain._sd import parse_sd
except ImportError:  # pragma: no cover - running from a source tree without a build
    parse_sd = parse_sd_py
