"""file:///path (one RFC5424 line per packet, appended) and stdout://, for local use.

Only trusted routes may name them (see logtrain/trust.py). A file drain never
blocks the agent: the file is opened non-blocking and without following a
symbolic link as its last component, and anything but a regular file (a FIFO,
a device, a socket) is refused, checked on the opened descriptor. A FIFO
without a reader would otherwise stop the whole process in open(), SIGTERM
included.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from typing import Any, BinaryIO

from logtrain.outputs.base import Connection, Output
from logtrain.packet import Packet
from logtrain.runtime import Runtime
from logtrain.syslog import format_rfc5424
from logtrain.urls import DrainURL


class StreamWriter(Connection):
    def __init__(self, f: BinaryIO, owned: bool) -> None:
        self.f = f
        self.owned = owned

    def send(self, items: list[Any]) -> None:
        self.f.write(b"".join(items))
        self.f.flush()

    def close(self) -> None:
        if self.owned:
            self.f.close()


class FileOutput(Output):
    local = True

    def __init__(self, url: DrainURL, rt: Runtime) -> None:
        super().__init__(url, rt)
        if url.host not in ("", "localhost"):
            raise ValueError("file:// drains take a local path: file:///var/log/x.log")
        if not url.path.startswith("/") or url.path.endswith("/"):
            raise ValueError("file:// needs an absolute path to a file")
        self.path = url.path

    def encode(self, packets: list[Packet]) -> tuple[bytes, int]:
        data = format_rfc5424(packets)
        return data, len(data)

    def connect(self) -> Connection:
        if self.guard is None or self.guard.trusted():
            os.makedirs(os.path.dirname(self.path) or "/", exist_ok=True)
        return StreamWriter(open_regular(self.path), owned=True)


def open_regular(path: str) -> BinaryIO:
    """``path`` opened for appending, or OSError if it is not a regular file.
    A regular file ignores O_NONBLOCK; a FIFO opened with it fails at once
    (ENXIO) with no reader instead of waiting for one."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    # Refused before open(): opening some devices has effects of its own.
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OSError(f"{path} is not a regular file: refused")
    flags = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_NOFOLLOW
             | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    try:
        fd = os.open(path, flags, 0o640)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENXIO):  # a symbolic link; a FIFO with no reader
            raise OSError(e.errno, f"{path} is not a regular file: refused") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped in after the stat above
            raise OSError(f"{path} is not a regular file: refused")
        return os.fdopen(fd, "ab")
    except BaseException:
        os.close(fd)
        raise


class StdoutOutput(FileOutput):
    def __init__(self, url: DrainURL, rt: Runtime) -> None:
        Output.__init__(self, url, rt)

    def connect(self) -> Connection:
        return StreamWriter(sys.stdout.buffer, owned=False)
