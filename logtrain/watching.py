"""How the tailer waits: inotify on its directories and files (with polling
where the kernel refuses watches), and for room in the drains its files wait
for. A mixin of logtrain.tailer.Tailer, whose attributes it uses."""

from __future__ import annotations

import errno
from typing import Any

import gevent
from gevent.socket import wait_read

POLL = 1.0
FAST_POLL = 0.25
GATHER = 0.1  # seconds an inotify wake-up waits for more writes before reading
SOON = 0.2  # seconds after acknowledgements before they are committed, when idle


class Watching:
    rt: Any
    name: str
    inotify: Any
    unwatched: int
    watches: dict[int, str]
    dir_wds: set[int]
    changed: set[int]
    full: set
    visit_all: bool
    rescan_due: bool

    def _init_inotify(self) -> None:
        from logtrain.tail import Inotify

        try:
            self.inotify = Inotify()
        except OSError as e:
            self._inotify_refused(e, "fs.inotify.max_user_instances")

    def _inotify_refused(self, e: OSError, sysctl: str) -> None:
        self.unwatched += 1
        if self.rt.ratelimit.allow(("inotify", self.name, sysctl)) is not None:
            self.rt.log.warning(f"inotify refused ({e.strerror}): polling every {FAST_POLL}s "
                                f"instead; raise the sysctl {sysctl}", input=self.name)

    def _watch(self, path: str, file: bool = False) -> int | None:
        if self.inotify is None:
            return
        from logtrain import _tail

        mask = (_tail.IN_MODIFY | _tail.IN_MOVE_SELF | _tail.IN_DELETE_SELF) if file else (
            _tail.IN_CREATE | _tail.IN_MOVED_TO | _tail.IN_MOVED_FROM | _tail.IN_DELETE)
        try:
            wd = self.inotify.add_watch(path, mask)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EMFILE):
                self._inotify_refused(e, "fs.inotify.max_user_watches")
            return
        self.watches[wd] = path
        if not file:
            self.dir_wds.add(wd)
        return wd

    def _wait(self, timeout: float | None = None) -> None:
        """Sleeps until a file or directory changes (or ``timeout``); a change
        of a directory, or a file renamed or deleted, makes a rescan due."""
        if timeout is None:
            timeout = FAST_POLL if (self.unwatched or self.inotify is None) else POLL
        if self.inotify is None:
            gevent.sleep(timeout)
            self.visit_all = True
            return
        try:
            wait_read(self.inotify.fileno(), timeout=timeout)
        except TimeoutError:
            self.visit_all = True  # a poll: files inotify could not watch are read too
            return
        # Let the writes of the other files gather: waking on every write reads
        # one line per file per wake; a short gathering reads them in batches.
        gevent.sleep(GATHER)
        self._events()

    def _wait_room(self) -> None:
        """Sleeps until a drain a file waits for has room again (at most
        SOON): a drain empties its high-water mark in milliseconds, so waiting
        for the next file event instead would leave it idle most of the time."""
        full, self.full = self.full, set()
        gevent.wait([d.room for d in full], timeout=SOON, count=1)
        gevent.sleep(0)  # room already there: still let the writers run
        if self.inotify is not None:
            self._events()  # the other files' writes meanwhile, without blocking

    def _events(self) -> None:
        from logtrain import _tail

        moved = _tail.IN_MOVE_SELF | _tail.IN_DELETE_SELF | _tail.IN_Q_OVERFLOW
        # in C: a tuple per event cost half a percent of a core with 52 pods
        if self.inotify.read_changes(self.changed, self.dir_wds, moved):
            self.rescan_due = True
