"""FILES: plain log files on servers (the original README's "Using Logtrain
with Servers: TODO"), with the same tailer as the container logs: rotation
(rename as logrotate and kubelet do it, gzip of older files, copytruncate),
checkpoints committed on acknowledgement, backpressure, inotify.

Each entry names a glob, a hostname and a tag; every line of a matching file
becomes a packet with that hostname and tag, severity 6 (info), facility 1
(user), and the time it was read (plain lines carry no timestamp the agent
could trust). Files appearing later that match a glob are followed too.
"""

from __future__ import annotations

import fnmatch
import glob
import os
from collections.abc import Callable
from typing import Any

from logtrain.inputs.base import Input
from logtrain.packet import Packet, now_rfc3339
from logtrain.tailer import Tailer


class PlainParser:
    """Whole lines into packets; nothing is ever joined."""

    __slots__ = ("hostname", "tag", "partial")

    def __init__(self, hostname: str, tag: str) -> None:
        self.hostname = hostname
        self.tag = tag
        self.partial: dict = {}

    def parse_batch(self, lines: list[bytes]) -> tuple[list[Packet], int]:
        t = now_rfc3339()  # one clock read per chunk, not per line
        host, tag = self.hostname, self.tag
        out = [Packet(6, 1, host, tag, t, line.rstrip(b"\r").decode("utf-8", "surrogateescape"))
               for line in lines if line]
        return out, 0


class FilesInput(Input):
    name = "files"

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.entries: tuple[tuple[str, str, str], ...] = self.rt.config.files
        self.tailer: Tailer | None = None

    def describe(self) -> str:
        return f"{self.name} ({len(self.entries)} glob(s))"

    def start(self) -> None:
        dirs = sorted({_static_dir(g) for g, _, _ in self.entries})
        self.tailer = Tailer(self.rt, self.router, self.name, self._discover, self._describe,
                             [d for d in dirs if os.path.isdir(d)])
        self.tailer.start()

    def stop(self) -> None:
        if self.tailer is not None:
            self.tailer.stop()

    def close(self) -> None:
        if self.tailer is not None:
            self.tailer.close()

    def _discover(self) -> list[str]:
        out: list[str] = []
        for pattern, _, _ in self.entries:
            out.extend(p for p in glob.glob(pattern) if os.path.isfile(p))
        return out

    def _describe(self, path: str) -> tuple[str, str, Callable[[bytes], Any]] | None:
        for pattern, hostname, tag in self.entries:
            if fnmatch.fnmatch(path, pattern):
                return hostname, tag, lambda first, h=hostname, t=tag: PlainParser(h, t)
        return None


def _static_dir(pattern: str) -> str:
    """The deepest directory of a glob without wildcards: watched for new files."""
    parts = pattern.split(os.sep)
    for i, part in enumerate(parts):
        if any(c in part for c in "*?["):
            return os.sep.join(parts[:i]) or os.sep
    return os.path.dirname(pattern)
