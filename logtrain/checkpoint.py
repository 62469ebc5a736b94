"""Checkpoints of the file inputs: how far each file has been delivered.

Offsets are kept by device and inode (a rename keeps both, so a file rotated
while the agent was down is still found), with the path and a fingerprint of
the file's first bytes (a rotated file compressed while the agent was down
has a new inode; its first bytes, uncompressed, are the same). An offset
counts uncompressed bytes and is only ever one that every drain the lines
went to has acknowledged (see FileFollower).

The store is one JSON file under STATE_DIR, replaced atomically (write, fsync,
rename) at most once per FLUSH_INTERVAL and at shutdown; ``last_run`` records
when the agent last wrote it, so that a file first seen can be read from its
beginning when it was created after that (its lines were written while the
agent was down) and from its end otherwise.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

FLUSH_INTERVAL = 1.0


class Checkpoints:
    def __init__(self, path: str) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        self.last_run: float | None = None  # wall-clock time of the previous run's last save
        self.dirty = False
        self.error = ""

    @staticmethod
    def key(dev: int, ino: int) -> str:
        return f"{dev}:{ino}"

    def load(self) -> str | None:
        """Reads the store; returns a warning for a damaged file (then starts empty)."""
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            return f"checkpoints {self.path} unreadable, starting without them: {e}"
        if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
            return f"checkpoints {self.path} malformed, starting without them"
        self.entries = {k: v for k, v in data["files"].items()
                        if isinstance(v, dict) and isinstance(v.get("offset"), int)}
        lr = data.get("last_run")
        self.last_run = float(lr) if isinstance(lr, (int, float)) else None
        return None

    def get(self, dev: int, ino: int) -> dict[str, Any] | None:
        return self.entries.get(self.key(dev, ino))

    def find_fingerprint(self, fingerprint: str) -> tuple[str, dict[str, Any]] | None:
        """The entry whose file began with these bytes (a file that changed inode)."""
        if not fingerprint:
            return None
        for k, v in self.entries.items():
            if v.get("fingerprint") == fingerprint:
                return k, v
        return None

    def set(self, dev: int, ino: int, path: str, offset: int, fingerprint: str,
            name: str) -> None:
        """``path``: where the file really is; ``name``: the path it was found
        by (a symlink, for container logs), which says how it is named."""
        k = self.key(dev, ino)
        e = self.entries.get(k)
        if (e is None or e["offset"] != offset or e.get("path") != path
                or e.get("fingerprint") != fingerprint):
            self.entries[k] = {"path": path, "name": name, "offset": offset,
                               "fingerprint": fingerprint}
            self.dirty = True

    def finish(self, dev: int, ino: int) -> None:
        """A rotated file read to its end and delivered."""
        e = self.entries.get(self.key(dev, ino))
        if e is not None and not e.get("finished"):
            e["finished"] = time.time()
            self.dirty = True

    def forget_finished(self, older_than: float) -> None:
        """Drops finished files finished more than ``older_than`` seconds ago."""
        limit = time.time() - older_than
        for k in [k for k, v in self.entries.items()
                  if v.get("finished") and float(v["finished"]) < limit]:
            self.forget(k)

    def forget(self, key: str) -> None:
        if self.entries.pop(key, None) is not None:
            self.dirty = True

    def save(self, force: bool = False) -> bool:
        """Writes the store when it changed (or ``force``); False on failure
        (kept in ``error``; the next save tries again)."""
        if not (self.dirty or force):
            return True
        tmp = self.path + ".tmp"
        data = json.dumps({"version": 1, "last_run": time.time(), "files": self.entries},
                          separators=(",", ":"))
        try:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as e:
            self.error = f"{self.path}: {e.strerror or e}"
            return False
        self.dirty = False
        self.error = ""
        return True
