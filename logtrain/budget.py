"""The one budget for unfinished input that every connection of every
input shares (INPUT_PARTIAL_BUDGET).

A connection holds bytes it cannot hand on yet: a syslog frame whose end has
not arrived, an HTTP request head not complete yet, a piece of a body being
read. Each is small, but a thousand connections each holding a 60 KB frame
would hold 60 MB, past the agent's memory limit. Two ways to count, one total:

* ``update`` (stream inputs): a holder reports what it holds after a read;
  when the total goes over the budget the largest holders are cut (their
  connection closed, counted and logged) until the total is back under three
  quarters of it, so one cut frees room for a while.
* ``hold``/``reserve``/``room`` (the HTTP server): what a read may bring is
  counted before it blocks, and a request that finds no room is refused (503)
  rather than cut.
"""

from __future__ import annotations

from typing import Protocol


class Holder(Protocol):
    """A connection that holds unfinished input."""

    def cut(self, reason: str) -> None:
        """Closes the connection: its unfinished input is dropped."""


class PartialBudget:
    __slots__ = ("limit", "total", "held", "cuts")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self.held: dict[Holder, int] = {}
        self.cuts = 0

    def update(self, holder: Holder, nbytes: int) -> None:
        """Records that ``holder`` now holds ``nbytes``; cuts the largest
        holders (possibly ``holder`` itself) when the total is over the limit."""
        if nbytes == self.held.get(holder, 0):
            return  # the common case: nothing held before, nothing now
        self.hold(holder, nbytes)
        if self.total > self.limit:
            self._cut()

    def room(self) -> int:
        return max(0, self.limit - self.total)

    def hold(self, holder: Holder, nbytes: int) -> None:
        """Records what ``holder`` holds, without cutting anyone."""
        old = self.held.get(holder, 0)
        self.total += nbytes - old
        if nbytes:
            self.held[holder] = nbytes
        else:
            self.held.pop(holder, None)

    def reserve(self, holder: Holder, nbytes: int) -> bool:
        """Holds ``nbytes`` for ``holder`` if the budget has room for them."""
        if self.total - self.held.get(holder, 0) + nbytes > self.limit:
            return False
        self.hold(holder, nbytes)
        return True

    def release(self, holder: Holder) -> None:
        """The holder is gone (or holds nothing any more)."""
        self.total -= self.held.pop(holder, 0)

    def _cut(self) -> None:
        target = self.limit * 3 // 4
        # Sorting runs only past the limit, which normal traffic never reaches.
        for holder, _ in sorted(self.held.items(), key=lambda kv: kv[1], reverse=True):
            if self.total <= target:
                break
            self.release(holder)
            self.cuts += 1
            holder.cut("partial_budget")
