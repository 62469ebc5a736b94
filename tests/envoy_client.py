"""A real gRPC client of Envoy's access-log service (grpcio), for the tests and
bench/envoy.py: builds StreamAccessLogsMessage batches with the agent's own
generated classes and streams them, v3 or v2, as a sidecar would.

Run as a script it floods a port from a separate process:
``python tests/envoy_client.py PORT SECONDS_OR_COUNT STREAMS BATCH [v3|v2]``
prints the entries it sent.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc  # noqa: E402

from logtrain.envoy_pb.envoy.service.accesslog.v2 import als_pb2 as als_v2  # noqa: E402
from logtrain.envoy_pb.envoy.service.accesslog.v3 import als_pb2 as als_v3  # noqa: E402

ALS = {"v3": als_v3, "v2": als_v2}


def method(version: str) -> str:
    return f"/envoy.service.accesslog.{version}.AccessLogService/StreamAccessLogs"


def http_batch(version: str, n: int, cluster: str = "outbound|80||web.shop.svc.cluster.local",
               start: int = 0, identifier: bool = True, path_pad: int = 0):
    """A message of ``n`` HTTP entries whose paths are /r/START.. (to count them)."""
    m = ALS[version].StreamAccessLogsMessage()
    if identifier:
        m.identifier.node.id = "sidecar~10.0.0.1~web-1.shop~shop.svc.cluster.local"
        m.identifier.node.cluster = "web.shop"
        m.identifier.log_name = "logtrain-test"
    pad = "p" * path_pad
    for i in range(start, start + n):
        e = m.http_logs.log_entry.add()
        c = e.common_properties
        c.upstream_cluster = cluster
        c.start_time.seconds = 1764000000 + i
        c.start_time.nanos = 5000
        c.time_to_last_upstream_tx_byte.nanos = 1_250_000
        c.time_to_last_upstream_rx_byte.nanos = 30_000_000
        c.time_to_last_downstream_tx_byte.seconds = 1
        e.protocol_version = 2
        e.request.request_method = 1
        e.request.path = f"/r/{i}{pad}"
        e.request.authority = "web.shop"
        e.request.request_id = f"id-{i}"
        e.request.request_headers_bytes = 100
        e.response.response_code.value = 200
        e.response.response_body_bytes = 20
    return m


class Stream:
    """One client-streaming call: put() messages (or raw bytes), close() ends
    the stream and waits for the server's answer."""

    def __init__(self, port: int, version: str = "v3", channel: grpc.Channel | None = None):
        self.channel = channel or grpc.insecure_channel(f"127.0.0.1:{port}")
        self.own_channel = channel is None
        self.queue: list = []
        self.cond = threading.Condition()
        self.done = False
        call = self.channel.stream_unary(method(version), request_serializer=_bytes,
                                         response_deserializer=lambda b: b)
        self.future = call.future(self._requests(), timeout=120)

    def _requests(self):
        while True:
            with self.cond:
                while not self.queue and not self.done:
                    self.cond.wait()
                if not self.queue:
                    return
                item = self.queue.pop(0)
            yield item

    def put(self, msg) -> None:
        with self.cond:
            self.queue.append(msg)
            self.cond.notify()

    def close(self, timeout: float = 60):
        with self.cond:
            self.done = True
            self.cond.notify()
        try:
            return self.future.result(timeout=timeout)
        finally:
            if self.own_channel:
                self.channel.close()


def _bytes(m) -> bytes:
    return m if isinstance(m, bytes) else m.SerializeToString()


def send(port: int, messages: list, version: str = "v3", timeout: float = 60) -> bytes:
    """Streams ``messages`` on one call and waits for the (empty) answer."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        call = ch.stream_unary(method(version), request_serializer=_bytes,
                               response_deserializer=lambda b: b)
        return call(iter(messages), timeout=timeout)


def flood(port: int, limit: float, streams: int, batch: int, version: str = "v3") -> int:
    """``streams`` concurrent calls each resending one pre-encoded batch until
    ``limit``: seconds when below 1000, else a number of entries in all.
    Returns the entries sent."""
    raw = http_batch(version, batch).SerializeToString()
    by_count = limit >= 1000
    per_stream = int(limit) // batch // streams if by_count else 0
    deadline = time.monotonic() + (0 if by_count else limit)
    sent = [0] * streams

    def one(k: int) -> None:
        def gen():
            n = 0
            while (n < per_stream) if by_count else (time.monotonic() < deadline):
                n += 1
                sent[k] += batch
                yield raw
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            ch.stream_unary(method(version), request_serializer=_bytes,
                            response_deserializer=lambda b: b)(gen(), timeout=600)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(sent)


if __name__ == "__main__":
    p, limit, streams, batch = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    version = sys.argv[5] if len(sys.argv) > 5 else "v3"
    print(flood(p, limit, streams, batch, version), flush=True)
