"""The engine the file inputs share: follows a set of files, routes their
lines with acknowledgements, commits offsets, handles rotation, waits for
congested drains, and keeps the checkpoints.

An input (Kubernetes container logs, plain files on servers) says which files
exist and how to name and parse them (``discover``); the tailer does the rest
in one supervised task:

* Wake-ups: inotify on the watched directories and on each file (a write, a
  rename, a new file), and a poll every POLL seconds that also catches what
  inotify cannot see. When the kernel refuses more watches or instances, one
  log line names the sysctl to raise and those files are polled (every
  FAST_POLL seconds).
* Rotation: a path that names another inode (or none) marks its follower
  rotated: it is read to its end, its last partial line emitted, and closed
  once every batch of it was acknowledged. The new file at the path is
  followed from its start. A file shorter than what was read of it was
  truncated in place (copytruncate): it is read again from its start.
* Restart: a file with a checkpoint resumes at the committed offset; a
  checkpointed file no longer at its path is looked for by inode in its
  directory (renamed by rotation) and by fingerprint among the ``.gz`` files
  there (compressed while the agent was down) and finished from its offset.
  A file first seen is read from its start when the agent ran before (it
  was created since: every followed file has a checkpoint), and per
  FILES_START_AT on the very first run.
* Multiline joining (logtrain/transform/multiline.py): each follower gets
  a Joiner from the MULTILINE rules (by file glob) or from the input's
  ``multiline`` (a pod's annotation); a group pending past MULTILINE_TIMEOUT
  is sent at the next round.
* Backpressure: a file whose drains are backlogged (see Drain.backlogged,
  healthy or not) is not read until they have room, so the file is the
  buffer: nothing is dropped and memory does not grow.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import gevent

from logtrain.checkpoint import FLUSH_INTERVAL, Checkpoints
from logtrain.drain import Ack
from logtrain.follow import FileFollower
from logtrain.rotated import RotatedFiles
from logtrain.router import Router
from logtrain.runtime import Runtime
from logtrain.transform.multiline import Rules
from logtrain.transform.structured import Structured
from logtrain.watching import FAST_POLL, POLL, SOON, Watching

ROUND_BYTES = 256 << 10
BATCH = 2000  # packets routed together at most (several files' in one round)
# Finished rotated files are remembered (their fingerprints) for this long, so
# that their compressed copies are never taken for files not read yet.
FINISHED_KEPT = 86400.0
GONE_GRACE = 5.0

# (hostname, tag, make_parser(first byte) -> parser) for a path, or None to leave it alone
Describe = Callable[[str], tuple[str, str, Callable[[bytes], Any]] | None]


class Tailer(RotatedFiles, Watching):
    def __init__(self, rt: Runtime, router: Router, name: str, discover: Callable[[], list[str]],
                 describe: Describe, directories: list[str],
                 names: Callable[[str], tuple[str, str] | None] | None = None,
                 multiline: Callable[[str], str | None] | None = None,
                 structured: bool = False) -> None:
        self.rt = rt
        self.router = router
        self.name = name
        self.discover = discover
        self.describe = describe
        self.directories = directories
        # a file's (hostname, tag) now, when they can change (the Kubernetes
        # API answered after the first lines were named from the file name)
        self.names = names
        # multiline joining: the TOML rules, and the spec an input gives per path
        self.multiline = multiline
        self.joining = Rules(rt) if (rt.config.multiline or multiline) else None
        # JSON lines: severity (and message) from their keys (container logs)
        self.structured = (Structured(rt.config.structured_message == "extract")
                           if structured and rt.config.structured_logs else None)
        cfg = rt.config
        self.checkpoints = Checkpoints(os.path.join(cfg.state_dir, f"{name}.checkpoints.json"))
        self.followers: dict[tuple[int, int], FileFollower] = {}
        self.by_path: dict[str, FileFollower] = {}
        # the last follower of a path whose successor is not followed yet
        self.previous: dict[str, FileFollower] = {}
        self.sibling_checks: dict[str, tuple[str, float, float]] = {}  # base -> name, since, until
        self.hosts: dict[tuple[int, int], str] = {}
        self.inotify: Any = None
        self.watches: dict[int, str] = {}
        self.dir_wds: set[int] = set()  # watch descriptors of directories
        self.rescan_due = False
        self.changed: set[int] = set()  # watch descriptors of files written since the last round
        self.full: set = set()  # backlogged drains a file waited for in the last round
        self.objects_seen = False  # a file line read since the last routing may be JSON
        self.visit_all = True  # no inotify word on what changed (a poll, a start): read every file
        self.unwatched = 0
        self.first_run = True
        self.scans = 0
        self.initial = True  # the scan at start, before which files existed already
        self.stopping = False
        m = rt.metrics
        m.gauge("logtrain_files_watched", lambda: len(self.followers), input=name)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        warning = self.checkpoints.load()
        if warning:
            self.rt.log.warning(warning, input=self.name)
        self.first_run = self.checkpoints.last_run is None
        self._init_inotify()
        for d in self.directories:
            self._watch(d)
        self._resume_rotated()
        self._rescan()
        if self.checkpoints.last_run is not None:
            # files rotated after the last checkpoint was written (a kill
            # between a rotation and the next save): read, at least once
            for f in list(self.by_path.values()):
                self._siblings(f.base, f.name, self.checkpoints.last_run)
        self.initial = False
        self.rt.tasks.spawn(self.name, self._run)

    def stop(self) -> None:
        self.stopping = True
        self.rt.tasks.stop(self.name)
        for f in self.followers.values():
            f.advance()
            self._checkpoint(f)
        self.checkpoints.save(force=True)

    def close(self) -> None:
        """After the drains have flushed: the last acknowledgements count too."""
        for f in list(self.followers.values()):
            f.advance()
            self._checkpoint(f)
            f.close()
        self.checkpoints.save(force=True)

    # ----------------------------------------------------------------- files

    def _open(self, path: str, offset: int | None, compressed: bool = False,
              name: str = "") -> FileFollower | None:
        """Follows ``path``; ``name`` is the path it was discovered by when it
        is a rotated file found elsewhere (it names the file's lines)."""
        names = self.describe(name or path)
        if names is None:
            return None
        hostname, tag, make_parser = names
        try:
            f = FileFollower(path, make_parser, self.rt.config.max_frame_size, compressed)
        except OSError as e:
            self.rt.log.warning("cannot open file", input=self.name, path=path, error=str(e))
            return None
        if f.key in self.followers:
            f.close()
            return None
        if offset is None:
            entry = self.checkpoints.get(*f.key)
            if entry is not None and not compressed:
                f.ensure_fingerprint()
                if entry.get("fingerprint") and f.fingerprint != entry["fingerprint"]:
                    # the inode number of a deleted file, reused by a new one:
                    # not the file the offset was kept for
                    self.checkpoints.forget(Checkpoints.key(*f.key))
                    entry = None
            if entry is not None and entry.get("finished"):
                f.close()
                return None  # a rotated file already read to its end
            if entry is not None:
                offset = entry["offset"]
            elif self.initial and self._existed_before(f):
                offset = f.size()
            else:
                offset = 0
        f.seek(min(offset, f.size()) if not compressed else offset)
        f.name = name or path
        f.names = (hostname, tag)
        self._join(f)
        self.followers[f.key] = f
        self.hosts[f.key] = hostname
        self.rt.metrics.gauge("logtrain_file_lag_bytes",
                              lambda f=f: max(0, f.size() - f.committed),
                              input=self.name, file=f.path)
        if not compressed:
            self.by_path[path] = f
            f.wd = self._watch(path, file=True)
            real_dir = os.path.dirname(f.real)
            if real_dir not in self.watches.values():
                self._watch(real_dir)  # kubelet renames there: a rotation wakes us
        self._checkpoint(f)
        self.rt.log.debug("following file", input=self.name, path=path, offset=offset)
        return f

    def _existed_before(self, f: FileFollower) -> bool:
        """At start, a file with no checkpoint: was it there during the last
        run (read from its end) or created since (from its start, or its lines
        written while the agent was down would be lost)? Its inode's last
        change tells, on Linux, where no creation time is offered. On the
        first run ever, FILES_START_AT decides."""
        if self.first_run:
            return self.rt.config.files_start_at == "end"
        try:
            changed = os.fstat(f.fd).st_ctime
        except OSError:
            return False
        return changed < (self.checkpoints.last_run or 0.0)

    def _rescan(self) -> None:
        """New paths are followed; a path now naming another file (or none)
        marks its follower rotated; a truncated file is read again."""
        paths = set(self.discover())
        for path in paths:
            f = self.by_path.get(path)
            try:
                st = os.stat(path)
            except OSError:
                continue
            if f is not None and (st.st_dev, st.st_ino) == f.key:
                if f.truncated():
                    self._rotation(f, "copytruncate")
                    copy = self._copy_of(f)
                    if copy is not None:
                        g = self._open(copy, f.safe, name=f.name)
                        if g is not None:
                            g.rotated = True  # the lines after the last read, then done
                    f.restart_at_zero()
                continue
            if f is not None:
                self._rotation(f, "rename")
            prev = f or self.previous.get(path)
            if prev is not None:
                # files that were at the path between two looks (the one
                # after ``prev`` may have been empty then, or renamed already)
                self._intermediates(prev, prev.opened_at)
            # a file first seen: its checkpoint, else from its start (or, on the
            # first run ever, where FILES_START_AT says)
            if self._open(path, None) is not None:
                self.previous.pop(path, None)
        for path, f in list(self.by_path.items()):
            if path not in paths or not os.path.exists(path):
                self._rotation(f, "gone")
        if self.names is not None:
            self._rename()
        now = time.monotonic()
        for base, (name, since, until) in list(self.sibling_checks.items()):
            if now > until:
                del self.sibling_checks[base]
            else:
                self._siblings(base, name, since)
        self.scans += 1
        if self.scans % 60 == 0:
            self.checkpoints.forget_finished(FINISHED_KEPT)

    def _rename(self) -> None:
        for key, f in self.followers.items():
            now = self.names(f.name)
            if now is None or now == f.names:
                continue
            f.rename(*now)
            self.hosts[key] = now[0]
        for f in self.followers.values():
            if f.multiline is None:
                self._join(f)  # a pod's annotation known only now

    def _join(self, f: FileFollower) -> None:
        if self.joining is None:
            return
        spec = self.multiline(f.name) if self.multiline is not None else None
        try:
            f.multiline = self.joining.joiner(f.name, spec)
        except ValueError as e:
            if self.rt.ratelimit.allow(("multiline", f.name)) is not None:
                self.rt.log.warning("multiline annotation ignored", input=self.name,
                                    path=f.name, error=str(e))

    def _rotation(self, f: FileFollower, how: str) -> None:
        if self.by_path.get(f.path) is f:
            del self.by_path[f.path]
            self.previous[f.path] = f
        if how == "rename":
            # a new file at the path: the writer has moved to it, so the end
            # of this one is its end
            f.rotated = True
        elif how == "gone":
            # renamed with no successor yet: the writer may still append until
            # it reopens (kubelet renames, then asks the runtime to reopen)
            f.gone_since = time.monotonic()
        self.rt.metrics.inc("logtrain_file_rotations_total", input=self.name, kind=how)

    def _checkpoint(self, f: FileFollower) -> None:
        self.checkpoints.set(f.dev, f.ino, f.real, f.committed, f.fingerprint, f.name)

    # ----------------------------------------------------------------- reading

    def _run(self) -> None:
        last_scan = last_save = 0.0
        while not self.stopping:
            busy = self._round()
            now = time.monotonic()
            if now - last_scan >= (FAST_POLL if self.unwatched else POLL) or self.rescan_due:
                self.rescan_due = False
                self._rescan()
                last_scan = now
            if now - last_save >= FLUSH_INTERVAL or (
                    not busy and now - last_save >= SOON and self._acked()):
                self._settle()
                if not self.checkpoints.save():
                    if self.rt.ratelimit.allow(("checkpoint", self.name)) is not None:
                        self.rt.log.error("cannot write checkpoints", input=self.name,
                                          error=self.checkpoints.error)
                last_save = now
            if busy:
                gevent.sleep(0)
            elif self.full:
                self._wait_room()
            elif any(f.pending for f in self.followers.values()):
                self._wait(SOON)  # acknowledgements are due: commit them soon
            elif self.joining is not None and any(
                    f.multiline is not None and f.multiline.pending
                    for f in self.followers.values()):
                self._wait(self.rt.config.multiline_timeout / 2)  # a group to send in time
            else:
                self._wait()

    def _acked(self) -> bool:
        """Some batch was acknowledged since the last commit: commit it now
        rather than up to a second later (a kill then re-sends less)."""
        return any(f.pending and f.pending[0][1] is not None for f in self.followers.values())

    def _settle(self) -> None:
        for key, f in list(self.followers.items()):
            f.advance()
            self._checkpoint(f)
            if f.done and f.settled:
                f.close()
                del self.followers[key]
                self.hosts.pop(key, None)
                self.rt.metrics.remove(input=self.name, file=f.path)
                # kept, marked finished, while the file exists: a scan for
                # rotated files must not take it for one never read
                self.checkpoints.finish(*key)
                self.rt.log.debug("finished rotated file", input=self.name, path=f.path)

    def _round(self) -> bool:
        """One read of every file with data and room; True when any had data.

        The packets of all files read in a round go to the router together,
        with one acknowledgement that reports to each file (one put per drain
        per round instead of one per file: 52 quiet pods cost half the CPU)."""
        busy = False
        router = self.router
        now = time.monotonic()
        batch: list = []
        marks: list = []
        visit_all, changed = self.visit_all, self.changed
        self.visit_all, self.changed = False, set()
        for key, f in list(self.followers.items()):
            if f.done:
                continue
            if f.multiline is not None and f.multiline.due(now):
                batch.extend(f.flush_group())  # no more lines came: the group is whole
                marks.append(f.mark())
            if not (visit_all or f.more or f.rotated or f.gone_since or f.wd is None
                    or f.wd in changed):
                continue  # not written since it was last read to its end
            if f.gone_since and not f.rotated and now - f.gone_since > GONE_GRACE:
                f.rotated = True
            if not f.advance():
                self.rt.metrics.inc("logtrain_file_rewinds_total", input=self.name)
            full = [d for d in router.drains_for(self.hosts[key]) if d.backlogged]
            if full:
                f.more = True  # unread data waits for room: look again next round
                self.full.update(full)
                continue
            f.more = False
            got = 0
            while True:
                if got >= ROUND_BYTES:
                    f.more = True  # the other files' turn first
                    break
                before = f.pos
                packets = f.read()
                if packets is None:
                    break
                got += f.pos - before or 1
                if f.bad:
                    self.rt.metrics.inc("logtrain_input_rejected_total", f.bad, input=self.name,
                                        reason="malformed")
                if f.split:
                    self.rt.metrics.inc("logtrain_file_lines_split_total", f.split,
                                        input=self.name)
                if packets:
                    if f.objects:
                        self.objects_seen = True
                    batch.extend(packets)
                    marks.append(f.mark())
                    if len(batch) >= BATCH:
                        self._route(batch, marks)
                        batch, marks = [], []
                else:
                    f.pending.append([f.safe, True])  # nothing to deliver up to here
                if f.done or (f.at_end and not f.rotated):
                    break
            busy = busy or got > 0
        if batch:
            self._route(batch, marks)
        return busy

    def _route(self, batch: list, marks: list) -> None:
        self.rt.metrics.inc("logtrain_input_frames_total", len(batch), input=self.name)
        if self.structured is not None and self.objects_seen:
            batch = self.structured.apply(batch)
        self.objects_seen = False

        def done(ok: bool) -> None:
            for m in marks:
                m(ok)

        self.router.route(batch, Ack(done))
