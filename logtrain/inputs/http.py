"""HTTP inputs on the shared server.

HTTP_SYSLOG_PATH: syslog frames, newline-separated or octet-counted
(``application/logplex-1`` bodies, as Heroku-style drains send them); framing
is detected per frame, so either body works whatever its Content-Type.
HTTP_EVENTS_PATH: one packet JSON per body (as the original takes it), a JSON
array of them, or NDJSON.

A body is read, decoded and routed a piece at a time (never whole), with
backpressure between pieces, so its size does not decide the agent's memory.
Malformed frames or items are counted and skipped; the answer says how many
were accepted and rejected (400 when none was accepted). When a drain has no
room the answer is 503 with Retry-After, so the sender keeps the data (and may
send again what was routed before the refusal: at least once).
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any

import gevent

from logtrain.drain import Ack, Drain
from logtrain.httpconn import Body
from logtrain.httpserver import Response, json_response
from logtrain.inputs.base import Input
from logtrain.packet import Packet, packet_from_json
from logtrain.syslog import Framer

MAX_REPORTED_ERRORS = 5
BACKPRESSURE_WAIT = 5.0
SLICE = 2000  # packets routed at a time


class _Progress:
    """One body's decoder and what it produced so far, for its answer (bodies
    are read concurrently: nothing of a request lives on the input)."""

    __slots__ = ("decoder", "accepted", "rejected", "errors", "frames", "reasons")

    def __init__(self, decoder: Any) -> None:
        self.decoder = decoder
        self.accepted = 0
        self.rejected = 0
        self.errors: list[str] = []
        self.frames = 0
        self.reasons: dict[str, int] = {}  # frames rejected, by reason

    def error(self, message: str) -> None:
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(message)

    def summary(self) -> dict:
        out: dict = {"accepted": self.accepted, "rejected": self.rejected}
        if self.errors:
            out["errors"] = self.errors
        return out


class _HTTPInput(Input):
    path_setting = ""
    piece = 32 << 10  # body bytes decoded and routed between two yields

    def describe(self) -> str:
        return f"{self.name} on {self.http.address}{self.path}"

    def start(self) -> None:
        self.path = getattr(self.rt.config, self.path_setting.lower())
        self.http.add(self.path, ("POST",), self.handle, stream=True)

    def route(self, progress: _Progress, packets: list[Packet]) -> list[Drain] | None:
        """Routes one slice; the congested drains to wait for, or None when a
        drain refused it for lack of room. The caller keeps no reference to
        the packets while it waits."""
        if not packets:
            return []
        ack = Ack(lambda ok: None)
        congested = self.router.route(packets, ack)
        if not ack.ok:
            return None
        progress.accepted += len(packets)
        return congested

    def handle(self, env: dict, body: Body) -> Response:
        progress = _Progress(self.decoder())
        while True:
            data = body.read(self.piece)
            # A body can hold more than a drain's whole buffer: routed in one
            # piece it could never be accepted and the sender would retry it
            # forever. Pieces are routed one after another, waiting for
            # congested drains between them.
            for congested in self.pieces(progress, data):
                if congested is None:
                    # a drain refused a slice for lack of room: ask the sender
                    # to retry (what was routed before may then arrive twice)
                    return json_response("503 Service Unavailable",
                                         dict(progress.summary(), error="a drain is full, retry later",
                                              routed_before_refusal=progress.accepted),
                                         [("Retry-After", "1")])
                for drain in congested:
                    drain.wait_space(BACKPRESSURE_WAIT)
                    if drain.full:
                        # its disk spool is at its cap (or cannot be written):
                        # the sender keeps the rest and retries
                        return json_response("503 Service Unavailable",
                                             dict(progress.summary(),
                                                  error="a drain's spool is full, retry later",
                                                  routed_before_refusal=progress.accepted),
                                             [("Retry-After", "5")])
            gevent.sleep(0)  # a client that always has data must not starve the others
            if not data:
                break
        self.finish(progress)
        if not progress.accepted:
            return json_response("400 Bad Request", progress.summary())
        return json_response("200 OK", progress.summary())

    def decoder(self) -> Any:
        raise NotImplementedError

    def pieces(self, progress: _Progress, data: bytes):  # noqa: ANN201 - a generator of route() results
        """Decodes ``data`` (b"" at the end of the body) and routes it, yielding
        the result of each slice routed."""
        raise NotImplementedError

    def finish(self, progress: _Progress) -> None:
        pass


class HTTPSyslogInput(_HTTPInput):
    name = "http_syslog"
    path_setting = "HTTP_SYSLOG_PATH"

    def decoder(self) -> Framer:
        return Framer(self.rt.config.max_frame_size)

    def pieces(self, progress: _Progress, data: bytes):  # noqa: ANN201
        framer = progress.decoder
        frames = framer.feed(data) if data else framer.finish()
        reasons = progress.reasons
        for reason, n in framer.errors.take().items():
            self.reject(reason, n)
            reasons[reason] = reasons.get(reason, 0) + n
            progress.rejected += n
        progress.frames += len(frames)
        for start in range(0, len(frames), SLICE):
            batch = frames[start:start + SLICE]
            packets = self.parse_frames(batch)
            bad = len(batch) - len(packets)
            if bad:
                progress.rejected += bad
                reasons["malformed"] = reasons.get("malformed", 0) + bad
            result = self.route(progress, packets)
            del packets
            yield result

    def finish(self, progress: _Progress) -> None:
        malformed = progress.reasons.pop("malformed", 0)
        for reason, n in progress.reasons.items():
            progress.error(f"{n} frame(s) {reason}")
        if malformed:
            progress.error(f"{malformed} malformed frame(s)")
        if not progress.frames and not progress.reasons:
            progress.error("empty body")


class HTTPEventsInput(_HTTPInput):
    name = "http_events"
    path_setting = "HTTP_EVENTS_PATH"
    piece = 8 << 10  # JSON costs more per byte than syslog frames: smaller pieces keep /health quick

    def decoder(self) -> EventsDecoder:
        return EventsDecoder(self.rt.config.max_frame_size)

    def pieces(self, progress: _Progress, data: bytes):  # noqa: ANN201
        items, errors = progress.decoder.feed(data, final=not data)
        for start in range(0, len(items), SLICE):
            packets = []
            for where, obj in items[start:start + SLICE]:
                try:
                    packets.append(packet_from_json(obj))
                except ValueError as e:
                    errors.append(f"{where}: {e}")
            self.rt.metrics.inc("logtrain_input_frames_total", len(packets), input=self.name)
            result = self.route(progress, packets)
            del packets
            yield result
        if errors:
            self.rt.metrics.inc("logtrain_input_frames_total", len(errors), input=self.name)
            self.reject("malformed", len(errors), errors[0])
            progress.rejected += len(errors)
            for e in errors:
                progress.error(e)


_WS = re.compile(r"[ \t\r\n]*")
_DECODER = json.JSONDecoder()


class EventsDecoder:
    """The JSON values of a body, decoded as it arrives: one value, an array of
    values, or one value per line (NDJSON). ``feed`` returns the complete
    values so far as (where, value) pairs, and errors. A value is at most
    ``max_item`` characters; the text held is that plus one piece."""

    def __init__(self, max_item: int) -> None:
        self.max_item = max_item
        self.utf8 = codecs.getincrementaldecoder("utf-8")()
        self.text = ""
        self.bytes = 0  # bytes decoded so far, for error positions
        self.line = 1  # line number at the start of self.text
        self.tried = 0  # characters a value attempt failed on: retried when twice as many
        self.in_array = False
        self.after_item = False
        self.index = 0  # item number in the array
        self.seen = False
        self.skip_line = False
        self.broken = False  # an error decoding cannot recover from: the rest is ignored

    def feed(self, data: bytes, final: bool = False) -> tuple[list[tuple[str, object]], list[str]]:
        if self.broken:
            return [], []
        try:
            text = self.text + self.utf8.decode(data, final)
        except UnicodeDecodeError as e:
            self.broken = True
            return [], [f"body is not UTF-8 ({e.reason} at byte {self.bytes + e.start})"]
        self.bytes += len(data)
        items: list[tuple[str, object]] = []
        errors: list[str] = []
        pos, n = 0, len(text)
        if self.skip_line:
            nl = text.find("\n")
            pos = n if nl < 0 else nl
            self.skip_line = nl < 0
        while True:
            end = _WS.match(text, pos).end()
            self.line += text.count("\n", pos, end)
            pos = end
            if pos == n:
                break
            self.seen = True
            c = text[pos]
            if self.in_array:
                if c == "]":
                    self.in_array = self.after_item = False
                    pos += 1
                    continue
                if self.after_item:
                    if c == ",":
                        self.after_item = False
                        pos += 1
                        continue
                    errors.append(f"item {self.index}: invalid JSON: expected ',' or ']'")
                    self.broken = True
                    break
            elif c == "[":
                self.in_array, self.after_item, self.index = True, False, 0
                pos += 1
                continue
            avail = n - pos
            if not final and self.tried and avail < min(2 * self.tried, self.max_item):
                break  # the value is still incomplete: wait for more
            try:
                value, end = _DECODER.raw_decode(text, pos)
            except json.JSONDecodeError as e:
                if not final and avail < self.max_item:
                    self.tried = avail
                    break
                self.tried = 0
                where = f"item {self.index}" if self.in_array else \
                    f"line {self.line + text.count(chr(10), pos, e.pos)}"
                col = e.pos - (text.rfind("\n", 0, e.pos) + 1) + 1
                errors.append(f"{where}: invalid JSON: {e.msg} at column {col}")
                if self.in_array:
                    self.broken = True
                    break
                nl = text.find("\n", e.pos)  # go on at the next line
                if nl < 0:
                    self.skip_line = not final
                    pos = n
                    break
                self.line += text.count("\n", pos, nl)
                pos = nl
                continue
            if end == n and not final and not isinstance(value, (dict, list, str)):
                break  # a number or literal may go on in the next piece
            self.tried = 0
            where = f"item {self.index}" if self.in_array else f"line {self.line}"
            if end - pos > self.max_item:
                errors.append(f"{where}: over {self.max_item} characters")
            else:
                items.append((where, value))
            self.line += text.count("\n", pos, end)
            pos = end
            if self.in_array:
                self.index += 1
                self.after_item = True
        self.text = "" if self.broken else text[pos:]
        if final and not self.broken:
            if self.in_array:
                errors.append("invalid JSON: the array is not closed")
            elif not self.seen:
                errors.append("empty body")
        return items, errors
