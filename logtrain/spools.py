"""Every drain's spool together: the cap they share, and taking over at start
what an earlier run left (see logtrain.spool for the files)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from logtrain import spool_format as fmt
from logtrain.spool import Segment, Spool, _unlink, spool_dir


class Spools:
    """Every drain's spool, under STATE_DIR/spool, with the cap they share."""

    def __init__(self, rt: Any, state_dir: str, cap: int, total_cap: int) -> None:
        self.rt = rt
        self.root = os.path.join(state_dir, "spool")
        self.cap = cap
        self.total_cap = total_cap
        self.total = 0
        self.spools: dict[str, Spool] = {}

    def open(self, url: str, name: str, on_drop: Callable[[int, str], None]) -> Spool:
        sp = Spool(self, url, name, on_drop)
        recover(sp)
        self.total += sp.bytes
        self.spools[sp.dir] = sp
        return sp

    def has_data(self, url: str) -> bool:
        """A spool left by an earlier run for this URL (its drain should open at
        once to replay it, not wait for the next packet routed to it)."""
        d = spool_dir(self.root, url)
        try:
            return d not in self.spools and any(n.endswith(".seg") for n in os.listdir(d))
        except OSError:
            return False

    def oldest(self) -> Spool | None:
        """The spool whose oldest segment is the oldest of all (and not its only
        one being written, which would leave it nowhere to write)."""
        best = None
        for sp in self.spools.values():
            if len(sp.segments) > 1 or (sp.segments and sp.fd < 0):
                if best is None or sp.segments[0].created < best.segments[0].created:
                    best = sp
        return best


def recover(sp: Spool) -> None:
    """Takes over what an earlier run left in ``sp.dir``: segments before the
    cursor removed, the rest counted (headers only), the last one verified and
    a torn record at its end cut off, a damaged segment set aside."""
    try:
        names = sorted(n for n in os.listdir(sp.dir) if n.endswith(".seg"))
    except FileNotFoundError:
        return
    cseq, coff = _read_cursor(sp.dir)
    sp.commit = (cseq, coff)
    for i, n in enumerate(names):
        try:
            seq = int(n[:-4])
        except ValueError:
            continue
        path = os.path.join(sp.dir, n)
        if seq < cseq:
            _unlink(path)  # delivered before the last stop
            continue
        last = i == len(names) - 1
        with open(path, "rb+") as f:
            good, packets, damaged = fmt.scan(f, verify=last)
            size = f.seek(0, 2)
            if damaged:
                sp.set_aside(path, packets, f"a damaged record at byte {good}")
                continue
            if good < size:
                f.truncate(good)
                sp.owner.rt.metrics.inc("logtrain_spool_torn_total", drain=sp.name)
                sp.owner.rt.log.warning("spool: torn last record skipped", drain=sp.name,
                                        segment=path, bytes=size - good)
        seg = Segment(seq, path, good, packets)
        sp.segments.append(seg)
        sp.bytes += good
        sp.packets += packets
        if seq == cseq and coff:
            _skip_to(sp, seg, min(coff, good))
    if sp.segments:
        first = sp.segments[0]
        sp.read_seq, sp.read_off = first.seq, (sp.read_off if first.seq == cseq else 0)
        sp.commit = (sp.read_seq, sp.read_off)
        sp.owner.rt.log.info("spool found: replaying", drain=sp.name,
                             packets=sp.packets, bytes=sp.bytes)


def _skip_to(sp: Spool, seg: Segment, off: int) -> None:
    """Starts reading ``seg`` at ``off`` (the cursor): what lies before it was delivered."""
    skipped = 0
    with open(seg.path, "rb") as f:
        pos = 0
        while pos < off:
            head = f.read(fmt.HEAD_SIZE)
            if len(head) < fmt.HEAD_SIZE:
                break
            _m, length, _c, n = fmt.HEAD.unpack(head)
            pos += fmt.HEAD_SIZE + length
            f.seek(pos)
            skipped += n
    seg.read_packets = skipped
    sp.packets -= skipped
    sp.read_off = off


def _read_cursor(directory: str) -> tuple[int, int]:
    try:
        with open(os.path.join(directory, "cursor")) as f:
            seq, off = f.read().split()
        return int(seq), int(off)
    except (OSError, ValueError):
        return 0, 0

