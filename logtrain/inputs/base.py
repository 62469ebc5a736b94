"""What inputs share: parsing a batch of frames with counted rejections."""

from __future__ import annotations

from logtrain.httpserver import HTTPServer
from logtrain.packet import Packet
from logtrain.router import Router
from logtrain.runtime import Runtime
from logtrain.syslog import FrameErrors, parse_batch


class Input:
    name = "input"

    def __init__(self, rt: Runtime, router: Router, http: HTTPServer) -> None:
        self.rt = rt
        self.router = router
        self.http = http

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        pass

    def close(self) -> None:
        """After the drains flushed at shutdown (file inputs commit the last
        acknowledged offsets here)."""

    def describe(self) -> str:
        return self.name

    def reject(self, reason: str, n: int = 1, detail: str = "") -> None:
        """Counts rejected frames and logs them at a bounded rate."""
        rt = self.rt
        rt.metrics.inc("logtrain_input_rejected_total", n, input=self.name, reason=reason)
        held = rt.ratelimit.allow(("input-reject", self.name, reason))
        if held is not None:
            rt.log.warning("input rejected frames", input=self.name, reason=reason, frames=n,
                           detail=detail, rejections_since_last_report=held)

    def parse_frames(self, frames: list[bytes], errors: FrameErrors | None = None) -> list[Packet]:
        """Parses a batch; malformed frames are counted and skipped."""
        packets, bad, detail = parse_batch(frames)
        self.rt.metrics.inc("logtrain_input_frames_total", len(frames), input=self.name)
        if bad:
            self.reject("malformed", bad, detail)
        if errors is not None:
            for reason, n in errors.take().items():
                self.reject(reason, n)
        return packets
