"""Envoy access-log entries -> packets (logtrain/envoy_als.py), and the protos
behind them: field numbers and types checked against an independent
implementation of Envoy's data-plane-api (the envoy-data-plane package,
betterproto2), messages it encodes decoded into the same packets, and the
committed generated code checked against a fresh generation."""

from __future__ import annotations

import dataclasses
import datetime as dt
import filecmp
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from logtrain.envoy_als import hostname_of, packets_of
from logtrain.envoy_pb.envoy.api.v2.core import address_pb2 as address_v2
from logtrain.envoy_pb.envoy.api.v2.core import base_pb2 as base_v2
from logtrain.envoy_pb.envoy.config.core.v3 import address_pb2 as address_v3
from logtrain.envoy_pb.envoy.config.core.v3 import base_pb2 as base_v3
from logtrain.envoy_pb.envoy.data.accesslog.v2 import accesslog_pb2 as data_v2
from logtrain.envoy_pb.envoy.data.accesslog.v3 import accesslog_pb2 as data_v3
from logtrain.envoy_pb.envoy.service.accesslog.v2 import als_pb2 as als_v2
from logtrain.envoy_pb.envoy.service.accesslog.v3 import als_pb2 as als_v3

ROOT = Path(__file__).resolve().parent.parent
# envoy-data-plane's pydantic models warn about their own validators when imported
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
ALS = {"v3": als_v3, "v2": als_v2}
CLUSTER = "outbound|8080||web.shop.svc.cluster.local"

# What the original Go agent's layout() writes for FULL below, field by field.
FULL_HTTP = (
    "bytes=1234 request_size=300 response_size=934 method=POST request_id=req-7 "
    "fwd=10.1.2.3 authority=web.shop.example origin=https://shop.example/orig?q=1 "
    "protocol=http2 tls=TLSv1_3 status=201 connect=1.25ms service=31.50ms total=1002.00ms "
    "path=/api/items")


def full_http(version: str):
    m = ALS[version].StreamAccessLogsMessage()
    e = m.http_logs.log_entry.add()
    c = e.common_properties
    c.upstream_cluster = CLUSTER
    c.start_time.seconds = 1764028800  # 2025-11-25T00:00:00Z
    c.start_time.nanos = 123456789
    c.time_to_last_upstream_tx_byte.nanos = 1_250_000
    c.time_to_last_upstream_rx_byte.nanos = 31_500_000
    c.time_to_last_downstream_tx_byte.seconds = 1
    c.time_to_last_downstream_tx_byte.nanos = 2_000_000
    c.tls_properties.tls_version = 4
    c.tls_properties.tls_sni_hostname = "shop.example"
    e.protocol_version = 3
    r = e.request
    r.request_method = 3
    r.request_id = "req-7"
    r.forwarded_for = "10.1.2.3"
    r.authority = "web.shop.example"
    r.original_path = "/orig?q=1"
    r.path = "/api/items"
    r.request_headers_bytes = 200
    r.request_body_bytes = 100
    e.response.response_code.value = 201
    e.response.response_headers_bytes = 900
    e.response.response_body_bytes = 34
    return m


@pytest.mark.parametrize("version", ["v3", "v2"])
def test_http_entry_as_the_original_writes_it(version):
    msg = ALS[version].StreamAccessLogsMessage.FromString(full_http(version).SerializeToString())
    packets, bad, _ = packets_of(msg, akkeris=False)
    assert bad == 0 and len(packets) == 1
    p = packets[0]
    assert (p.severity, p.facility, p.hostname, p.tag, p.time) == (
        0, 0, "web.shop", "envoy", "2025-11-25T00:00:00.123456Z")
    assert p.message == FULL_HTTP


def test_akkeris_names_and_tag():
    p = packets_of(full_http("v3"), akkeris=True)[0][0]
    assert (p.hostname, p.tag) == ("web-shop", "akkeris/router")


def test_minimal_entry_defaults_and_499_for_downstream_disconnects():
    m = als_v3.StreamAccessLogsMessage()
    e = m.http_logs.log_entry.add()
    e.common_properties.upstream_cluster = CLUSTER
    e.common_properties.response_flags.downstream_connection_termination = True
    p = packets_of(m, akkeris=False)[0][0]
    # no TLS: no origin= nor tls=; missing durations are 1.00ms (the original's fallback)
    assert p.message == ("bytes=0 request_size=0 response_size=0 method=METHOD_UNSPECIFIED "
                         "request_id= fwd= authority= protocol=protocol_unspecified status=499 "
                         "connect=1.00ms service=1.00ms total=1.00ms path=")
    assert p.time.endswith("Z") and p.time[:2] == "20"  # no start_time: now
    e.response.response_code.value = 0  # Envoy sets 0 when nothing was answered
    assert "status=499" in packets_of(m, akkeris=False)[0][0].message
    e.response.response_code.value = 200  # a code was sent before the client left
    assert "status=200" in packets_of(m, akkeris=False)[0][0].message
    e.common_properties.response_flags.downstream_connection_termination = False
    e.response.response_code.value = 0
    assert "status=0" in packets_of(m, akkeris=False)[0][0].message


def test_unknown_enum_values_are_written_as_numbers():
    m = full_http("v3")
    m.http_logs.log_entry[0].request.request_method = 42
    m.http_logs.log_entry[0].protocol_version = 9
    msg = als_v3.StreamAccessLogsMessage.FromString(m.SerializeToString())
    assert "method=42 " in packets_of(msg, False)[0][0].message
    assert "protocol=9 " in packets_of(msg, False)[0][0].message


@pytest.mark.parametrize("cluster,host", [
    ("outbound|80||web.shop.svc.cluster.local", "web.shop"),
    ("outbound|9080|v1|reviews.bookinfo.svc.cluster.local", "reviews.bookinfo"),
    ("outbound|80||web.shop", "web.shop"),
    ("inbound|8080||", None),  # newer Istio's inbound clusters: the original crashed here
    ("inbound|8080||web", None),
    ("outbound|80||.shop.svc", None),
    ("PassthroughCluster", None),
    ("BlackHoleCluster", None),
    ("", None),
])
def test_hostname_from_the_upstream_cluster(cluster, host):
    assert hostname_of(cluster, akkeris=False) == host


def test_unparsable_clusters_are_counted_and_the_rest_kept():
    m = als_v3.StreamAccessLogsMessage()
    for cluster in (CLUSTER, "PassthroughCluster", CLUSTER, "inbound|80||"):
        m.http_logs.log_entry.add().common_properties.upstream_cluster = cluster
    packets, bad, _ = packets_of(m, akkeris=False)
    assert bad == 2 and [p.hostname for p in packets] == ["web.shop", "web.shop"]


@pytest.mark.parametrize("version", ["v3", "v2"])
def test_tcp_entry_layout(version):
    m = ALS[version].StreamAccessLogsMessage()
    e = m.tcp_logs.log_entry.add()
    c = e.common_properties
    c.upstream_cluster = "outbound|5432||db.shop.svc.cluster.local"
    c.start_time.seconds = 1764028800
    c.downstream_remote_address.socket_address.address = "10.0.0.9"
    c.downstream_remote_address.socket_address.port_value = 40000
    c.upstream_remote_address.socket_address.address = "fd00::5"
    c.upstream_remote_address.socket_address.port_value = 5432
    c.tls_properties.tls_version = 3
    c.tls_properties.tls_sni_hostname = "db.example"
    c.response_flags.downstream_connection_termination = True
    c.response_flags.upstream_connection_failure = True
    c.time_to_last_upstream_tx_byte.nanos = 500_000
    c.time_to_last_downstream_tx_byte.seconds = 3
    e.connection_properties.received_bytes = 70
    e.connection_properties.sent_bytes = 30
    total = "3000.00ms"
    if version == "v3":
        c.duration.seconds = 4  # v3's connection duration wins over the last byte's time
        total = "4000.00ms"
    msg = ALS[version].StreamAccessLogsMessage.FromString(m.SerializeToString())
    p = packets_of(msg, akkeris=False)[0][0]
    assert (p.hostname, p.tag, p.time) == ("db.shop", "envoy", "2025-11-25T00:00:00.000000Z")
    assert p.message == (
        "bytes=100 request_size=70 response_size=30 fwd=10.0.0.9:40000 upstream=[fd00::5]:5432 "
        "sni=db.example protocol=tcp tls=TLSv1_2 flags=UF,DC connect=0.50ms service=1.00ms "
        f"total={total}")
    c.ClearField("response_flags")
    c.ClearField("tls_properties")
    assert "protocol=tcp flags=- connect" in packets_of(m, False)[0][0].message


# ----------------------------------------------------------------- against envoy-data-plane

PB_TYPES = {1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 8: "bool",
            9: "string", 11: "message", 12: "bytes", 13: "uint32", 14: "enum"}


def _their_class(full_name: str, package: str):
    """The envoy-data-plane class of a message or enum: betterproto2 names
    nested types by joining their names, with its own capitalisation."""
    mod = importlib.import_module("envoy_data_plane." + package)
    local = full_name[len(package) + 1:].replace(".", "").lower()
    for name in dir(mod):
        if name.lower() == local:
            return getattr(mod, name)
    raise AssertionError(f"envoy-data-plane has no {full_name}")


def _messages(desc):
    yield desc
    for nested in desc.nested_types:
        yield from _messages(nested)


@pytest.mark.parametrize("module", [als_v3, als_v2, data_v3, data_v2, address_v3, address_v2,
                                    base_v3, base_v2])
def test_field_numbers_and_types_match_envoy_data_plane(module):
    checked = 0
    for desc in module.DESCRIPTOR.message_types_by_name.values():
        for m in _messages(desc):
            theirs = {f.name: f.metadata["betterproto"]
                      for f in dataclasses.fields(_their_class(m.full_name, m.file.package))}
            for f in m.fields:
                meta = theirs.get(f.name)
                assert meta is not None, f"{m.full_name}.{f.name}: not in upstream"
                assert meta.number == f.number, f"{m.full_name}.{f.name}: number"
                if f.message_type is not None and f.message_type.full_name.startswith(
                        "google.protobuf."):
                    assert meta.proto_type == "message" and meta.unwrap is not None
                else:
                    assert meta.proto_type == PB_TYPES[f.type], f"{m.full_name}.{f.name}: type"
                assert meta.repeated == f.is_repeated, f"{m.full_name}.{f.name}"
                if f.enum_type is not None:
                    e = f.enum_type
                    them = _their_class(e.full_name, e.file.package)
                    assert {v.name: v.number for v in e.values} == {
                        v.name: v.value for v in them}, e.full_name
                checked += 1
    assert checked >= 2


def _their_http_message(version: str):
    """FULL_HTTP's entry, built and encoded by envoy-data-plane."""
    core = importlib.import_module(
        "envoy_data_plane.envoy." + ("config.core.v3" if version == "v3" else "api.v2.core"))
    data = importlib.import_module(f"envoy_data_plane.envoy.data.accesslog.{version}")
    als = importlib.import_module(f"envoy_data_plane.envoy.service.accesslog.{version}")
    common = data.AccessLogCommon(
        upstream_cluster=CLUSTER,
        start_time=dt.datetime(2025, 11, 25, 0, 0, 0, 123456, tzinfo=dt.UTC),
        time_to_last_upstream_tx_byte=dt.timedelta(milliseconds=1.25),
        time_to_last_upstream_rx_byte=dt.timedelta(milliseconds=31.5),
        time_to_last_downstream_tx_byte=dt.timedelta(seconds=1, milliseconds=2),
        tls_properties=data.TlsProperties(tls_version=data.TlsPropertiesTlsVersion.TLSv1_3,
                                          tls_sni_hostname="shop.example"),
        response_flags=data.ResponseFlags(),
    )
    entry = data.HttpAccessLogEntry(
        common_properties=common,
        protocol_version=data.HttpAccessLogEntryHttpVersion.HTTP2,
        request=data.HttpRequestProperties(
            request_method=core.RequestMethod.POST, request_id="req-7", forwarded_for="10.1.2.3",
            authority="web.shop.example", original_path="/orig?q=1", path="/api/items",
            request_headers_bytes=200, request_body_bytes=100, user_agent="curl/8",
            referer="https://ref.example/"),
        response=data.HttpResponseProperties(response_code=201, response_headers_bytes=900,
                                             response_body_bytes=34,
                                             response_code_details="via_upstream"),
    )
    node = core.Node(id="sidecar~1", cluster="web.shop")
    msg = als.StreamAccessLogsMessage(
        identifier=als.StreamAccessLogsMessageIdentifier(node=node, log_name="als"),
        http_logs=als.StreamAccessLogsMessageHttpAccessLogEntries(log_entry=[entry]))
    return bytes(msg)


@pytest.mark.parametrize("version", ["v3", "v2"])
def test_messages_encoded_by_envoy_data_plane_decode_into_the_same_packets(version):
    raw = _their_http_message(version)
    msg = ALS[version].StreamAccessLogsMessage.FromString(raw)
    ours = packets_of(full_http(version), akkeris=False)[0]
    theirs, bad, _ = packets_of(msg, akkeris=False)
    assert bad == 0
    assert [p.to_dict() for p in theirs] == [p.to_dict() for p in ours]
    assert theirs[0].message == FULL_HTTP
    assert msg.identifier.node.id == "sidecar~1" and msg.identifier.log_name == "als"


def test_tcp_entries_encoded_by_envoy_data_plane():
    core = importlib.import_module("envoy_data_plane.envoy.config.core.v3")
    data = importlib.import_module("envoy_data_plane.envoy.data.accesslog.v3")
    als = importlib.import_module("envoy_data_plane.envoy.service.accesslog.v3")
    addr = core.Address(socket_address=core.SocketAddress(address="10.0.0.9", port_value=4000))
    entry = data.TcpAccessLogEntry(
        common_properties=data.AccessLogCommon(
            upstream_cluster="outbound|6379||cache.shop.svc.cluster.local",
            downstream_remote_address=addr, upstream_remote_address=addr,
            response_flags=data.ResponseFlags(no_healthy_upstream=True, no_cluster_found=True),
            duration=dt.timedelta(milliseconds=12)),
        connection_properties=data.ConnectionProperties(received_bytes=5, sent_bytes=6))
    raw = bytes(als.StreamAccessLogsMessage(
        tcp_logs=als.StreamAccessLogsMessageTcpAccessLogEntries(log_entry=[entry])))
    p = packets_of(als_v3.StreamAccessLogsMessage.FromString(raw), False)[0][0]
    assert p.hostname == "cache.shop"
    assert p.message == ("bytes=11 request_size=5 response_size=6 fwd=10.0.0.9:4000 "
                         "upstream=10.0.0.9:4000 protocol=tcp flags=UH,NC connect=1.00ms "
                         "service=1.00ms total=12.00ms")


def test_committed_generated_code_is_what_the_protos_generate(tmp_path):
    out = tmp_path / "envoy_pb"
    subprocess.run(["bash", "scripts/gen-envoy-protos.sh", str(out)], cwd=ROOT, check=True,
                   capture_output=True, env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"})
    committed = ROOT / "logtrain" / "envoy_pb"
    mine = sorted(p.relative_to(committed) for p in committed.rglob("*.py"))
    fresh = sorted(p.relative_to(out) for p in out.rglob("*.py"))
    assert mine == fresh
    _, mismatch, errors = filecmp.cmpfiles(committed, out, [str(p) for p in mine], shallow=False)
    assert not mismatch and not errors, f"out of date: {mismatch or errors}; run the script"
