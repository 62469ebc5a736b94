"""file:///path (one RFC5424 line per packet, appended) and stdout://, for local use."""

from __future__ import annotations

import os
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
        os.makedirs(os.path.dirname(self.path) or "/", exist_ok=True)
        return StreamWriter(open(self.path, "ab"), owned=True)


class StdoutOutput(FileOutput):
    def __init__(self, url: DrainURL, rt: Runtime) -> None:
        Output.__init__(self, url, rt)

    def connect(self) -> Connection:
        return StreamWriter(sys.stdout.buffer, owned=False)
