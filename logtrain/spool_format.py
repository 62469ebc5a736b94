"""The bytes of a spool segment: records with a checksum each, and the codec
of the drain items they carry.

A segment file is a sequence of records, appended and never rewritten:

    "LR" | payload length (u32) | crc32 of count+payload (u32) | packets (u32) | payload

all big-endian. The payload is one buffered drain item (what ``Output.encode``
made of a batch) in a small tagged form: bytes, ints, lists and tuples of
them are what the drains build their items from. Written by hand: pickle
would run code found on disk, and msgpack or the like is a dependency for a
dozen lines.

``scan`` walks a segment's records and says where the valid part ends, so a
torn last record (a write cut short) is found and cut off, and a record that
fails its checksum marks the segment corrupt.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, BinaryIO

MAGIC = b"LR"
HEAD = struct.Struct(">2sIII")  # magic, payload length, crc, packets
HEAD_SIZE = HEAD.size
MAX_RECORD = 64 << 20  # a length above this is garbage, not a record

_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")


class CodecError(ValueError):
    """An item the codec cannot write, or a payload it cannot read."""


def dump_item(item: Any) -> bytes:
    """The item in the tagged form (bytes, int, list and tuple, nested)."""
    return b"".join(dump_parts(item))


def dump_parts(item: Any) -> list[bytes]:
    """The tagged form as a list of buffers, the item's own bytes not copied."""
    out: list[bytes] = []
    _dump(item, out)
    return out


def _dump(item: Any, out: list[bytes]) -> None:
    if isinstance(item, (bytes, bytearray, memoryview)):
        out.append(b"B" + _U32.pack(len(item)))
        out.append(item)
    elif isinstance(item, bool) or not isinstance(item, (int, list, tuple)):
        raise CodecError(f"cannot spool an item of type {type(item).__name__}")
    elif isinstance(item, int):
        out.append(b"I" + _I64.pack(item))
    else:
        out.append((b"L" if isinstance(item, list) else b"T") + _U32.pack(len(item)))
        for x in item:
            _dump(x, out)


def load_item(data: bytes) -> Any:
    item, end = _load(memoryview(data), 0)
    if end != len(data):
        raise CodecError("trailing bytes after the item")
    return item


def _load(data: memoryview, pos: int) -> tuple[Any, int]:
    tag = bytes(data[pos:pos + 1])
    pos += 1
    if tag == b"B":
        (n,) = _U32.unpack_from(data, pos)
        pos += 4
        if pos + n > len(data):
            raise CodecError("bytes run past the payload")
        return bytes(data[pos:pos + n]), pos + n
    if tag == b"I":
        return _I64.unpack_from(data, pos)[0], pos + 8
    if tag in (b"L", b"T"):
        (n,) = _U32.unpack_from(data, pos)
        pos += 4
        items = []
        for _ in range(n):
            x, pos = _load(data, pos)
            items.append(x)
        return (items if tag == b"L" else tuple(items)), pos
    raise CodecError(f"unknown tag {tag!r}")


def record(item: Any, packets: int) -> list[bytes]:
    """One record of the item as buffers to write together (os.writev): the
    item's bytes are not copied (a batch can be hundreds of KiB, and copies of
    it raised the peak memory of 200 flooding senders by megabytes). Raises
    CodecError for an item it cannot write."""
    parts = dump_parts(item)
    count = _U32.pack(packets)
    crc = zlib.crc32(count)
    length = 0
    for p in parts:
        crc = zlib.crc32(p, crc)
        length += len(p)
    return [HEAD.pack(MAGIC, length, crc, packets), *parts]


def read_record(f: BinaryIO) -> tuple[Any, int, int] | None:
    """(item, packets, record size) of the record at the file's position;
    None at the end of the file or at a torn record (too short). Raises
    CodecError when the record is damaged (bad magic, checksum or payload)."""
    head = f.read(HEAD_SIZE)
    if len(head) < HEAD_SIZE:
        return None
    magic, length, crc, packets = HEAD.unpack(head)
    if magic != MAGIC or length > MAX_RECORD:
        raise CodecError("bad record header")
    payload = f.read(length)
    if len(payload) < length:
        return None
    if zlib.crc32(payload, zlib.crc32(head[10:14])) != crc:
        raise CodecError("checksum mismatch")
    return load_item(payload), packets, HEAD_SIZE + length


def scan(f: BinaryIO, verify: bool) -> tuple[int, int, bool]:
    """Walks the records from the start: (bytes of whole records, their
    packets, True if something after them is damaged rather than merely cut
    short). With ``verify`` False only the headers are read (fast, for the
    sealed segments a start-up scan only needs to count); checksums are then
    checked when the records are replayed."""
    f.seek(0, 2)
    size = f.tell()
    f.seek(0)
    good = packets = 0
    while good < size:
        f.seek(good)
        if verify:
            try:
                rec = read_record(f)
            except CodecError:
                return good, packets, True
            if rec is None:
                return good, packets, False
            good += rec[2]
            packets += rec[1]
            continue
        head = f.read(HEAD_SIZE)
        if len(head) < HEAD_SIZE:
            return good, packets, False
        magic, length, _crc, n = HEAD.unpack(head)
        if magic != MAGIC or length > MAX_RECORD:
            return good, packets, True
        if good + HEAD_SIZE + length > size:
            return good, packets, False
        good += HEAD_SIZE + length
        packets += n
    return good, packets, False
