"""Picks what routing needs out of Kubernetes API JSON without keeping the rest.

A list of 3,000 ReplicaSets is megabytes of JSON, most of it specs, statuses
and managedFields; the Kubernetes datasource needs four things of each object:
its kind, namespace, name and a few annotations (plus resourceVersion to resume
a watch). ``objects_of_list`` walks a list page item by item and
``decode_event`` one watch event, both with the standard library's C scanner:
the values the walk descends into (the event, the object, its metadata, its
annotations) are never built as dicts, and each value it skips is built and
dropped one at a time, so memory stays at one field of one object beyond the
page text itself. Written by hand because a streaming parser library (ijson)
would add a dependency for what forty lines do with ``json.scanner``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from json.decoder import scanstring

_WS = re.compile(r"[ \t\n\r]*")
_scan = json.JSONDecoder().scan_once

Handler = Callable[[str, str, int], int]  # (key, text, index of the value) -> index after it


class Meta:
    """What the datasource keeps of an object (or of a watch ERROR's Status)."""

    __slots__ = ("kind", "namespace", "name", "rv", "notes", "code", "message")

    def __init__(self) -> None:
        self.kind = self.namespace = self.name = self.rv = self.message = ""
        self.notes: dict[str, str] = {}
        self.code = 0


def _ws(s: str, i: int) -> int:
    return _WS.match(s, i).end()  # type: ignore[union-attr]


def _skip(s: str, i: int) -> int:
    try:
        return _scan(s, i)[1]
    except StopIteration:
        raise ValueError(f"invalid JSON value at {i}") from None


def _object(s: str, i: int, handle: Handler) -> int:
    """Walks the object at ``s[i]``, calling ``handle`` for each member."""
    if s[i:i + 1] != "{":
        raise ValueError(f"expected an object at {i}")
    i = _ws(s, i + 1)
    if s[i:i + 1] == "}":
        return i + 1
    while True:
        if s[i:i + 1] != '"':
            raise ValueError(f"expected a member name at {i}")
        key, i = scanstring(s, i + 1)
        i = _ws(s, i)
        if s[i:i + 1] != ":":
            raise ValueError(f"expected ':' at {i}")
        i = _ws(s, handle(key, s, _ws(s, i + 1)))
        c = s[i:i + 1]
        if c == ",":
            i = _ws(s, i + 1)
        elif c == "}":
            return i + 1
        else:
            raise ValueError(f"expected ',' or '}}' at {i}")


def _meta_at(s: str, i: int, wanted: frozenset[str]) -> tuple[Meta, int]:
    m = Meta()

    def notes(key: str, s: str, j: int) -> int:
        if key not in wanted:
            return _skip(s, j)
        v, end = _scan(s, j)
        if isinstance(v, str):
            m.notes[key] = v
        return end

    def metadata(key: str, s: str, j: int) -> int:
        if key == "annotations" and s[j:j + 1] == "{":
            return _object(s, j, notes)
        if key in ("name", "namespace", "resourceVersion"):
            v, end = _scan(s, j)
            if isinstance(v, str):
                setattr(m, "rv" if key == "resourceVersion" else key, v)
            return end
        return _skip(s, j)

    def top(key: str, s: str, j: int) -> int:
        if key == "metadata" and s[j:j + 1] == "{":
            return _object(s, j, metadata)
        if key in ("kind", "message"):
            v, end = _scan(s, j)
            if isinstance(v, str):
                setattr(m, key, v[:300])
            return end
        if key == "code":
            v, end = _scan(s, j)
            m.code = v if isinstance(v, int) else 0
            return end
        return _skip(s, j)

    return m, _object(s, i, top)


def decode_event(line: str, wanted: frozenset[str]) -> tuple[str, Meta]:
    """(type, Meta) of one watch event line; ValueError when it is not one."""
    out: list = ["", None]

    def event(key: str, s: str, j: int) -> int:
        if key == "type":
            v, end = _scan(s, j)
            out[0] = v if isinstance(v, str) else ""
            return end
        if key == "object":
            out[1], end = _meta_at(s, j, wanted)
            return end
        return _skip(s, j)

    try:
        end = _object(line, _ws(line, 0), event)
    except (IndexError, StopIteration):
        raise ValueError("truncated watch event") from None
    if line[_ws(line, end):].strip() or not out[0] or out[1] is None:
        raise ValueError("not a watch event")
    return out[0], out[1]


class ListPage:
    """One page of a list: its resourceVersion, continue token and items."""

    __slots__ = ("rv", "cont", "items")

    def __init__(self) -> None:
        self.rv = self.cont = ""
        self.items: list[Meta] = []


def parse_list(text: str, wanted: frozenset[str]) -> ListPage:
    """The items of a list page, each reduced to a Meta; ValueError when the
    text is not a list."""
    page = ListPage()

    def list_meta(key: str, s: str, j: int) -> int:
        if key in ("resourceVersion", "continue"):
            v, end = _scan(s, j)
            if isinstance(v, str):
                setattr(page, "rv" if key == "resourceVersion" else "cont", v)
            return end
        return _skip(s, j)

    def top(key: str, s: str, j: int) -> int:
        if key == "metadata" and s[j:j + 1] == "{":
            return _object(s, j, list_meta)
        if key == "items" and s[j:j + 1] == "[":
            return _items(s, j, page.items, wanted)
        return _skip(s, j)

    try:
        _object(text, _ws(text, 0), top)
    except (IndexError, StopIteration):
        raise ValueError("truncated list") from None
    return page


def _items(s: str, i: int, out: list[Meta], wanted: frozenset[str]) -> int:
    i = _ws(s, i + 1)
    if s[i:i + 1] == "]":
        return i + 1
    while True:
        m, i = _meta_at(s, i, wanted)
        out.append(m)
        i = _ws(s, i)
        c = s[i:i + 1]
        if c == ",":
            i = _ws(s, i + 1)
        elif c == "]":
            return i + 1
        else:
            raise ValueError(f"expected ',' or ']' at {i}")

