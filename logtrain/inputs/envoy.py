"""Envoy's access-log service (ALS) over gRPC: Istio and Envoy sidecars stream
their HTTP and TCP access logs here (ENVOY=true, ENVOY_PORT).

One server answers both ``envoy.service.accesslog.v3.AccessLogService`` (what
current Envoy and Istio send) and its v2 equivalent (what the original
logtrain implemented). grpcio runs cooperatively through its gevent
integration (``grpc.experimental.gevent.init_gevent``): the server's poller
and every stream's handler are greenlets of the agent's hub. This module, and
so grpcio and protobuf, is imported only when ENVOY=true.

Messages arrive as bytes and are decoded in the handler, so that a message
that does not decode is counted and dropped on its own and the stream goes
on (a deserializer of grpcio's own would abort the whole stream). Entries
become packets in logtrain/envoy_als.py. After each message the handler waits
while a drain its packets went to is congested (HTTP/2 flow control then
holds the sidecar back) and yields to the hub, so a stream that always has
data does not starve the other inputs or /health.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import gevent
import grpc
from google.protobuf.message import DecodeError
from grpc.experimental import gevent as grpc_gevent

from logtrain.envoy_als import packets_of
from logtrain.envoy_pb.envoy.service.accesslog.v2 import als_pb2 as als_v2
from logtrain.envoy_pb.envoy.service.accesslog.v3 import als_pb2 as als_v3
from logtrain.inputs.base import Input

WAIT_SLICE = 1.0  # seconds between re-checks while a drain is congested
SERVICES = (("envoy.service.accesslog.v3.AccessLogService", als_v3.StreamAccessLogsMessage, "v3"),
            ("envoy.service.accesslog.v2.AccessLogService", als_v2.StreamAccessLogsMessage, "v2"))

_gevent_ready = False


def _init_gevent() -> None:
    """grpcio's gevent integration, once per process, before any server exists."""
    global _gevent_ready
    if not _gevent_ready:
        grpc_gevent.init_gevent()
        _gevent_ready = True


class EnvoyInput(Input):
    name = "envoy"

    def __init__(self, *args) -> None:
        super().__init__(*args)
        cfg = self.rt.config
        self.address = (cfg.bind_address, cfg.envoy_port)
        self.akkeris = bool(cfg.akkeris)
        self.server: grpc.Server | None = None
        self.streams = 0
        self.stopping = False

    def describe(self) -> str:
        return f"{self.name} (gRPC access-log service v3, v2) on {self.address[0]}:{self.address[1]}"

    def start(self) -> None:
        _init_gevent()
        cfg = self.rt.config
        # Memory: grpc core reads a message whole before the handler sees it,
        # granting flow-control window up to its announced length, so the
        # unfinished messages of all streams can hold ENVOY_MAX_STREAMS x
        # ENVOY_MAX_MESSAGE bytes; both are bounded, and so are connections.
        options = [
            ("grpc.max_receive_message_length", cfg.envoy_max_message),
            ("grpc.max_send_message_length", 1024),
            ("grpc.so_reuseport", 0),
            ("grpc.max_allowed_incoming_connections", cfg.max_connections),
            # Fixed flow-control windows: no growth per stream under load.
            ("grpc.http2.bdp_probe", 0),
            ("grpc.max_concurrent_streams", 100),  # per connection; the total is capped below
        ]
        # With threading monkey-patched, the pool's workers are greenlets: one
        # per stream being served. Streams past ENVOY_MAX_STREAMS are refused
        # by grpcio (RESOURCE_EXHAUSTED), which ends them at once.
        pool = ThreadPoolExecutor(max_workers=cfg.envoy_max_streams, thread_name_prefix="envoy")
        server = grpc.server(pool, options=options,
                             maximum_concurrent_rpcs=cfg.envoy_max_streams)
        for service, cls, version in SERVICES:
            handler = grpc.stream_unary_rpc_method_handler(self._stream(cls, version))
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, {"StreamAccessLogs": handler}),))
        host = self.address[0]
        target = f"[{host}]:{self.address[1]}" if ":" in host else f"{host}:{self.address[1]}"
        try:
            port = server.add_insecure_port(target)
        except RuntimeError as e:  # grpcio reports a port it cannot bind this way
            raise OSError(f"cannot bind {target}") from e
        self.address = (host, port)
        server.start()
        self.server = server
        self.rt.metrics.gauge("logtrain_input_connections", lambda: self.streams, input=self.name)

    def stop(self) -> None:
        self.stopping = True
        if self.server is not None:
            self.server.stop(grace=1.0)

    def _stream(self, cls, version: str):
        rt = self.rt
        log = rt.log
        metrics = rt.metrics
        router = self.router
        parse = cls.FromString
        akkeris = self.akkeris

        limit = rt.config.envoy_max_streams

        def handle(requests, context) -> bytes:
            self.streams += 1
            peer = context.peer()
            if self.streams >= limit:
                held = rt.ratelimit.allow(("envoy-streams-full",))
                if held is not None:
                    log.warning("envoy access-log streams at ENVOY_MAX_STREAMS: grpcio refuses "
                                "new streams (RESOURCE_EXHAUSTED) until one ends", streams=limit)
            # A stream cut mid-message ends the requests as if it were finished;
            # only the call's end tells it was cancelled. grpcio says so in its
            # request iterator's state alone (private: if it moves, such streams
            # go uncounted, nothing else changes).
            state = getattr(requests, "_state", None)
            watched = state is not None and hasattr(state, "client")
            if watched:
                context.add_callback(lambda: state.client == "cancelled" and self._broken(
                    version, peer, "cut or cancelled by the peer"))
            first = True
            try:
                for raw in requests:
                    try:
                        msg = parse(raw)
                    except DecodeError as e:
                        metrics.inc("logtrain_input_frames_total", input=self.name)
                        self.reject("malformed", 1, f"{version} message from {peer}: {e}")
                        continue
                    if first:
                        first = False
                        ident = msg.identifier  # sent in a stream's first message only
                        log.info("envoy access-log stream opened", version=version, peer=peer,
                                 node=ident.node.id, cluster=ident.node.cluster,
                                 log_name=ident.log_name)
                    packets, bad, example = packets_of(msg, akkeris)
                    n = len(packets) + bad
                    if n:
                        metrics.inc("logtrain_input_frames_total", n, input=self.name)
                    if bad:
                        self.reject("unparsable_cluster", bad,
                                    f"upstream_cluster {example[:200]!r} names no service")
                    if packets:
                        self._wait_room(router.route(packets))
                    del packets, msg, raw
                    gevent.sleep(0)  # one message per turn: others (and /health) run between
            except grpc.RpcError as e:
                # Cancelled while waiting for a message: what was decoded is
                # routed (counted by the callback above when it could be set).
                if not watched:
                    self._broken(version, peer, str(e) or type(e).__name__)
            finally:
                self.streams -= 1
            return b""  # StreamAccessLogsResponse has no fields: its encoding is empty

        return handle

    def _broken(self, version: str, peer: str, why: str) -> None:
        self.rt.metrics.inc("logtrain_input_frames_total", input=self.name)
        self.reject("stream_broken", 1, f"{version} stream from {peer}: {why}"[:300])

    def _wait_room(self, drains) -> None:
        for drain in drains:
            while drain.congested and not self.stopping:
                drain.wait_space(WAIT_SLICE)
