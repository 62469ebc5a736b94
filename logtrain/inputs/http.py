"""HTTP inputs on the shared server.

HTTP_SYSLOG_PATH: syslog frames, newline-separated or octet-counted
(``application/logplex-1`` bodies, as Heroku-style drains send them); framing
is detected per frame, so either body works whatever its Content-Type.
HTTP_EVENTS_PATH: one packet JSON per body (as the original takes it), a JSON
array of them, or NDJSON.

Malformed frames or items are counted and skipped; the answer says how many
were accepted and rejected (400 when none was accepted). When a drain has no
room the answer is 503 with Retry-After, so the sender keeps the data (and may
send again what was routed before the refusal: at least once).
"""

from __future__ import annotations

import json

from logtrain.drain import Ack
from logtrain.httpserver import Response, json_response
from logtrain.inputs.base import Input
from logtrain.packet import Packet, packet_from_json
from logtrain.syslog import Framer

MAX_REPORTED_ERRORS = 5
BACKPRESSURE_WAIT = 5.0
SLICE = 2000  # packets routed at a time from one body


class _HTTPInput(Input):
    path_setting = ""

    def describe(self) -> str:
        return f"{self.name} on :{self.rt.config.http_port}{self.path}"

    def start(self) -> None:
        self.path = getattr(self.rt.config, self.path_setting.lower())
        self.http.add(self.path, ("POST",), self.handle)

    def deliver(self, packets: list[Packet], rejected: int, errors: list[str]) -> Response:
        summary = {"accepted": len(packets), "rejected": rejected}
        if errors:
            summary["errors"] = errors[:MAX_REPORTED_ERRORS]
        if not packets:
            return json_response("400 Bad Request", summary)
        # A body can hold more than a drain's whole buffer (HTTP_MAX_BODY is
        # 10 MiB, DRAIN_BUFFER_SIZE 8 MiB): routed in one piece it could never
        # be accepted and the sender would retry it forever. Slices are routed
        # one after another, waiting for congested drains between them.
        for start in range(0, len(packets), SLICE):
            ack = Ack(lambda ok: None)
            congested = self.router.route(packets[start:start + SLICE], ack)
            if not ack.ok:
                # A drain refused a slice for lack of room: ask the sender to
                # retry (what was routed before it may then arrive twice).
                return json_response("503 Service Unavailable",
                                     dict(summary, error="a drain is full, retry later",
                                          routed_before_refusal=start),
                                     [("Retry-After", "1")])
            for drain in congested:
                drain.wait_space(BACKPRESSURE_WAIT)
        return json_response("200 OK", summary)

    def handle(self, env: dict, body: bytes) -> Response:
        raise NotImplementedError


class HTTPSyslogInput(_HTTPInput):
    name = "http_syslog"
    path_setting = "HTTP_SYSLOG_PATH"

    def handle(self, env: dict, body: bytes) -> Response:
        framer = Framer(self.rt.config.max_frame_size)
        frames = framer.feed(body) + framer.finish()
        frame_errors = framer.errors.take()
        packets = self.parse_frames(frames)
        for reason, n in frame_errors.items():
            self.reject(reason, n)
        malformed = len(frames) - len(packets)
        errors = [f"{n} frame(s) {reason}" for reason, n in frame_errors.items()]
        if malformed:
            errors.append(f"{malformed} malformed frame(s)")
        if not frames and not frame_errors:
            errors.append("empty body")
        return self.deliver(packets, malformed + sum(frame_errors.values()), errors)


class HTTPEventsInput(_HTTPInput):
    name = "http_events"
    path_setting = "HTTP_EVENTS_PATH"

    def handle(self, env: dict, body: bytes) -> Response:
        items, errors = decode_events(body)
        packets = []
        for where, obj in items:
            try:
                packets.append(packet_from_json(obj))
            except ValueError as e:
                errors.append(f"{where}: {e}")
        rejected = len(errors)
        self.rt.metrics.inc("logtrain_input_frames_total", len(packets) + rejected, input=self.name)
        if rejected:
            self.reject("malformed", rejected, errors[0])
        return self.deliver(packets, rejected, errors)


def decode_events(body: bytes) -> tuple[list[tuple[str, object]], list[str]]:
    """The JSON values of a body: one object, an array, or one per line (NDJSON).
    Returns (where, value) pairs and the errors of lines that are not JSON."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        return [], [f"body is not UTF-8 ({e.reason} at byte {e.start})"]
    if not text.strip():
        return [], ["empty body"]
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        if e.msg != "Extra data":
            if "\n" not in text.strip():
                return [], [f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}"]
        value = None
    else:
        if isinstance(value, list):
            return [(f"item {i}", v) for i, v in enumerate(value)], []
        return [("body", value)], []
    items, errors = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append((f"line {n}", json.loads(line)))
        except json.JSONDecodeError as e:
            errors.append(f"line {n}: invalid JSON: {e.msg} at column {e.colno}")
    return items, errors
