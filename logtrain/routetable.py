"""The route table's storage and its glob matcher, built for tens of thousands
of routes: small per route, and a new hostname's look-up that costs about the
same with 10 or 50,000 globs.

Storage: a mapping key -> value where the value is the one URL (a str) while
a key has a single route, and becomes {url: times added} only when it has
more. Most hostnames have one drain, so most routes cost one dict slot and
share their strings with the datasource that holds them. Written by hand
because no library offers a multiset that small.

Globs (``*``, ``?``, ``[...]`` as fnmatch reads them) are indexed by their
literal tail, the characters after the last wildcard (``.space12`` for
``*.space12``), or when they end in a wildcard by their literal head. A
hostname is looked up by the tails of the lengths that occur (a handful of
dict look-ups, whatever the number of globs); only the few globs found that
way are matched in full, with a regular expression compiled when first
needed. ``*X`` and ``X*`` need no expression at all. Adding or removing a
glob updates the index in place: there is nothing to rebuild.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator

_WILD = "*?[]"
GLOB_CHARS = frozenset("*?[")

def is_glob(host: str) -> bool:
    return not GLOB_CHARS.isdisjoint(host)


def add(table: dict, key: str, url: str) -> None:
    """One more route ``key`` -> ``url``."""
    v = table.get(key)
    if v is None:
        table[key] = url
    elif type(v) is str:
        table[key] = {v: 2} if v == url else {v: 1, url: 1}
    else:
        v[url] = v.get(url, 0) + 1


def remove(table: dict, key: str, url: str) -> bool:
    """One route ``key`` -> ``url`` fewer; False when there was none."""
    v = table.get(key)
    if v is None:
        return False
    if type(v) is str:
        if v != url:
            return False
        del table[key]
        return True
    n = v.get(url)
    if not n:
        return False
    if n == 1:
        del v[url]
    else:
        v[url] = n - 1
    if not v:
        del table[key]
    elif len(v) == 1:
        (only, k), = v.items()
        if k == 1:
            table[key] = only  # back to the compact form
    return True


def count(table: dict, key: str, url: str) -> int:
    """How many routes ``key`` -> ``url`` the table holds."""
    v = table.get(key)
    if v is None:
        return 0
    if type(v) is str:
        return 1 if v == url else 0
    return v.get(url, 0)


def urls(v: str | dict[str, int]) -> Iterable[str]:
    return (v,) if type(v) is str else v.keys()


def counts(v: str | dict[str, int]) -> Iterator[tuple[str, int]]:
    if type(v) is str:
        yield v, 1
    else:
        yield from v.items()


def _tail(p: str) -> str:
    return p[max(p.rfind(c) for c in _WILD) + 1:]


def _head(p: str) -> str:
    return p[:min((i for i in (p.find(c) for c in _WILD) if i >= 0), default=len(p))]


class GlobIndex:
    """The index of the glob patterns (lower case) present in ``tables`` (the
    router's per-source tables, pattern -> url(s)): the URLs are read from
    there, so a glob costs the index one slot more than an exact route."""

    def __init__(self, tables: dict[str, dict]) -> None:
        self.tables = tables
        self.count = 0
        self._tails: dict[str, str | list[str]] = {}  # literal tail -> pattern(s)
        self._tail_lens: dict[int, int] = {}  # length -> how many tails have it
        self._heads: dict[str, str | list[str]] = {}  # globs ending in a wildcard
        self._head_lens: dict[int, int] = {}
        self._other: list[str] = []  # neither head nor tail (``*``, ``*a*``)
        self._regex: dict[str, re.Pattern] = {}

    def __len__(self) -> int:
        return self.count

    def add(self, pattern: str) -> None:
        """``pattern`` has appeared in the tables."""
        self._index(pattern, True)
        self.count += 1

    def remove(self, pattern: str) -> None:
        """``pattern`` is in none of the tables any more."""
        self._index(pattern, False)
        self._regex.pop(pattern, None)
        self.count -= 1

    def _index(self, p: str, on: bool) -> None:
        tail = _tail(p)
        if tail:
            _multi(self._tails, self._tail_lens, tail, p, on)
            return
        head = _head(p)
        if head:
            _multi(self._heads, self._head_lens, head, p, on)
        elif on:
            self._other.append(p)
        else:
            self._other.remove(p)

    def _urls(self, p: str, out: set[str]) -> None:
        for t in self.tables.values():
            v = t.get(p)
            if v is not None:
                out.update(urls(v))

    def match(self, h: str, out: set[str]) -> None:
        """Adds to ``out`` the URLs of every glob matching hostname ``h``
        (lower case)."""
        n = len(h)
        if self._tail_lens:
            tails = self._tails
            for k in self._tail_lens:
                if k <= n:
                    v = tails.get(h[n - k:])
                    if v is not None:
                        for p in ((v,) if type(v) is str else v):
                            if (len(p) == k + 1 and p[0] == "*") or self._full(p, h):
                                self._urls(p, out)
        if self._head_lens:
            heads = self._heads
            for k in self._head_lens:
                if k <= n:
                    v = heads.get(h[:k])
                    if v is not None:
                        for p in ((v,) if type(v) is str else v):
                            if (len(p) == k + 1 and p[-1] == "*") or self._full(p, h):
                                self._urls(p, out)
        for p in self._other:
            if self._full(p, h):
                self._urls(p, out)

    def _full(self, p: str, h: str) -> bool:
        r = self._regex.get(p)
        if r is None:
            r = self._regex[p] = re.compile(fnmatch.translate(p))
        return r.match(h) is not None


def _multi(d: dict, lens: dict[int, int], key: str, p: str, on: bool) -> None:
    v = d.get(key)
    if on:
        if v is None:
            d[key] = p
            lens[len(key)] = lens.get(len(key), 0) + 1
        elif type(v) is str:
            d[key] = [v, p]
        else:
            v.append(p)
        return
    if type(v) is str:
        del d[key]
        lens[len(key)] -= 1
        if not lens[len(key)]:
            del lens[len(key)]
    else:
        v.remove(p)
        if len(v) == 1:
            d[key] = v[0]
