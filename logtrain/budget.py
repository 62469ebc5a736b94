"""The one budget for unfinished input that every connection shares.

A connection holds bytes it cannot hand on yet: a syslog frame whose end has
not arrived, an HTTP request whose headers are not complete. Each is small,
but a thousand connections each holding a 60 KB frame would hold 60 MB, past
the agent's memory limit. Holders report what they hold; when the total goes
over INPUT_PARTIAL_BUDGET the largest holders are cut (their connection
closed, counted and logged) until the total is back under three quarters of
the budget, so one cut frees room for a while instead of one frame's worth.
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
        old = self.held.get(holder, 0)
        if nbytes == old:
            return
        self.total += nbytes - old
        if nbytes:
            self.held[holder] = nbytes
        else:
            del self.held[holder]
        if self.total > self.limit:
            self._cut()

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
