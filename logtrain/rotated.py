"""Finding rotated files nobody followed: the part of the tailer that looks
beside a file for what rotation left there.

* Files checkpointed by an earlier run that left their path while the agent
  was down: found by inode in their directory (renamed), or among the
  ``.gz`` files there by the fingerprint of their first bytes (compressed).
* Files that came and went at a path between two looks (two quick
  rotations), or after the last checkpoint was written (a kill between a
  rotation and the next save): siblings named after the live file and
  modified since, read from their start. A compressed one is recognised by
  its first bytes so that a file already read is not read again, and the
  directory is looked at again for SIBLING_WINDOW seconds, since a file being
  compressed cannot be told apart until its first bytes are in.

A mixin of the Tailer (logtrain/tailer.py): it uses the tailer's checkpoints,
followers and ``_open``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from logtrain.follow import FileFollower, fingerprint

SIBLING_WINDOW = 10.0  # seconds after a rotation its directory is looked at again


def _gz_fingerprint(path: str) -> str:
    import gzip

    try:
        with gzip.open(path, "rb") as g:
            return fingerprint(g.read(256))
    except (OSError, EOFError):
        return ""


class RotatedFiles:
    checkpoints: Any
    followers: dict
    sibling_checks: dict
    rt: Any
    name: str

    def _open(self, path: str, offset: int | None, compressed: bool = False,
              name: str = "") -> FileFollower | None:
        raise NotImplementedError

    def _intermediates(self, f: FileFollower, since: float) -> None:
        # looked at again for a while: a sibling being compressed right now
        # cannot be told from one never read until its first bytes are in
        self.sibling_checks[f.base] = (f.name, since, time.monotonic() + SIBLING_WINDOW)
        self._siblings(f.base, f.name, since)

    def _siblings(self, base: str, name: str, since: float) -> None:
        d = os.path.dirname(base)
        prefix = os.path.basename(base) + "."
        """Files that came and went at a path between two looks (two quick
        rotations, or rotations while the agent was down): renamed beside
        ``f``, modified after ``since``, and followed by nobody. Read from
        their start as rotated files; a compressed one is recognised by its
        first bytes so that a file already read is not read again."""
        try:
            names = sorted(os.listdir(d))
        except OSError:
            return
        for g in self.followers.values():
            g.ensure_fingerprint()  # a file renamed before it had been read far enough
        known = {e.get("fingerprint") for e in self.checkpoints.entries.values()}
        known.update(g.fingerprint for g in self.followers.values())
        known.discard("")
        for n in names:
            if not n.startswith(prefix):
                continue
            p = os.path.join(d, n)
            try:
                st = os.stat(p)
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            if key in self.followers or self.checkpoints.get(*key) or st.st_mtime < since:
                continue  # followed, read before, or rotated before this path was ours
            compressed = n.endswith(".gz")
            if compressed:
                fp = _gz_fingerprint(p)
                if not fp or fp in known:
                    continue  # read before, or still being written: looked at again
            g = self._open(p, 0, compressed, name=name)
            if g is not None:
                g.rotated = True
                self.rt.metrics.inc("logtrain_file_rotations_total", input=self.name,
                                    kind="rename")
                self.rt.log.info("reading a rotated file no look had seen", input=self.name,
                                 path=p)

    def _resume_rotated(self) -> None:
        """Files checkpointed by an earlier run that left their path while
        the agent was down: found by inode, or compressed by fingerprint."""
        resumed: list[FileFollower] = []
        for key, entry in list(self.checkpoints.entries.items()):
            path = entry.get("path", "")
            dev, ino = (int(x) for x in key.split(":"))
            if entry.get("finished"):
                continue
            try:
                st = os.stat(path)
                if (st.st_dev, st.st_ino) == (dev, ino):
                    continue  # still at its path: the scan resumes it
            except OSError:
                pass
            found = self._find_rotated(os.path.dirname(path), dev, ino, entry)
            if found is None:
                self.checkpoints.forget(key)
                continue
            rpath, compressed = found
            f = self._open(rpath, entry["offset"], compressed, entry.get("name") or path)
            if f is not None:
                f.rotated = True
                f.base = path  # the name it lived under: its successors share it
                if compressed:
                    f.fingerprint = entry.get("fingerprint", "")
                    self.checkpoints.forget(key)  # now kept under the .gz file's own key
                resumed.append(f)
                self.rt.log.info("finishing a file rotated while stopped", input=self.name,
                                 path=rpath, offset=entry["offset"])
        for f in resumed:
            self._intermediates(f, self.checkpoints.last_run or 0.0)

    @staticmethod
    def _find_rotated(d: str, dev: int, ino: int, entry: dict) -> tuple[str, bool] | None:
        try:
            names = os.listdir(d)
        except OSError:
            return None
        for n in names:
            p = os.path.join(d, n)
            try:
                st = os.stat(p)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (dev, ino):
                return p, False
        fp = entry.get("fingerprint")
        if fp:
            for n in names:
                if n.endswith(".gz") and _gz_fingerprint(os.path.join(d, n)) == fp:
                    return os.path.join(d, n), True
        return None

    def _copy_of(self, f: FileFollower) -> str | None:
        """The copy logrotate's copytruncate made of ``f`` before truncating it:
        a sibling that begins with the same bytes and holds at least what was
        read of ``f``. Its rest (written after the last read) is read from
        there, so the truncation loses nothing."""
        f.ensure_fingerprint()
        if not f.fingerprint:
            return None  # under 256 bytes read: nothing to tell a copy by
        d = os.path.dirname(f.base)
        prefix = os.path.basename(f.base) + "."
        try:
            names = sorted(os.listdir(d))
        except OSError:
            return None
        for n in names:
            p = os.path.join(d, n)
            if not n.startswith(prefix) or n.endswith(".gz"):
                continue
            try:
                if os.path.getsize(p) < f.safe:
                    continue
                with open(p, "rb") as fh:
                    if fingerprint(fh.read(256)) == f.fingerprint:
                        return p
            except OSError:
                continue
        return None
