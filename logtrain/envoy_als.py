"""Envoy access-log entries as packets: the original logtrain's layout.

Pure functions over decoded StreamAccessLogsMessage objects (v3 or v2: the
fields read have the same names and numbers in both), so they are tested
without a server. The gRPC side is logtrain/inputs/envoy.py.

HTTP entries follow the original Go agent (pkg/input/envoy): hostname from
the upstream cluster (``outbound|PORT||NAME.NAMESPACE.svc.cluster.local`` ->
``NAME.NAMESPACE``, or ``NAME-NAMESPACE`` with AKKERIS), tag ``envoy``
(``akkeris/router`` with AKKERIS), severity and facility 0, time from
start_time, and the message

    bytes=N request_size=N response_size=N method=M request_id=ID fwd=XFF
    authority=HOST [origin=https://SNI+ORIGINAL_PATH] protocol=http11
    [tls=TLSv1_2] status=CODE connect=Xms service=Xms total=Xms path=PATH

(one line; the bracketed parts only when the entry has TLS properties).
connect, service and total are the times to the last upstream byte sent,
the last upstream byte received and the last downstream byte sent; a
missing one is written 1.00ms, as the original did. status is the response
code, or 499 when the downstream connection ended before a code was set.

TCP entries (the original dropped them) use the same style:

    bytes=N request_size=RECEIVED response_size=SENT fwd=DOWNSTREAM_ADDR
    upstream=UPSTREAM_ADDR [sni=SNI] protocol=tcp [tls=TLSv1_3]
    flags=DC,UF|- connect=Xms service=Xms total=Xms

with total the connection's duration (v3) or the time to the last
downstream byte sent, and flags Envoy's short response-flag names.
"""

from __future__ import annotations

import time as _time

from logtrain.packet import Packet, now_rfc3339

METHODS = ("METHOD_UNSPECIFIED", "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT",
           "OPTIONS", "TRACE", "PATCH")
PROTOCOLS = ("protocol_unspecified", "http10", "http11", "http2", "http3")
TLS_VERSIONS = ("VERSION_UNSPECIFIED", "TLSv1", "TLSv1_1", "TLSv1_2", "TLSv1_3")
# Envoy's short names of the response flags (its %RESPONSE_FLAGS% operator).
FLAGS = (("failed_local_healthcheck", "LH"), ("no_healthy_upstream", "UH"),
         ("upstream_request_timeout", "UT"), ("local_reset", "LR"),
         ("upstream_remote_reset", "UR"), ("upstream_connection_failure", "UF"),
         ("upstream_connection_termination", "UC"), ("upstream_overflow", "UO"),
         ("no_route_found", "NR"), ("downstream_connection_termination", "DC"),
         ("stream_idle_timeout", "SI"), ("duration_timeout", "DT"),
         ("no_cluster_found", "NC"))
STATUS_DOWNSTREAM_GONE = 499  # nginx's "client closed request", as the original


def _name(names: tuple[str, ...], value: int) -> str:
    """An enum value's name; a value this build does not know is written as
    its number (proto3 enums are open), as Go's String() does."""
    return names[value] if 0 <= value < len(names) else str(value)


def hostname_of(cluster: str, akkeris: bool) -> str | None:
    """``outbound|80||web.shop.svc.cluster.local`` -> ``web.shop`` (``web-shop``
    with AKKERIS); None when the cluster does not name a service and its
    namespace (the original crashed on some of these, e.g. ``inbound|80||``)."""
    parts = cluster.split("|")
    if len(parts) < 4:
        return None
    labels = parts[3].split(".")
    if len(labels) < 2 or not labels[0] or not labels[1]:
        return None
    return f"{labels[0]}-{labels[1]}" if akkeris else f"{labels[0]}.{labels[1]}"


def _ms(common, field: str) -> str:
    """A duration as the original writes it: milliseconds with two decimals,
    1.00ms when Envoy did not send it."""
    if not common.HasField(field):
        return "1.00ms"
    d = getattr(common, field)
    return f"{d.seconds * 1000 + d.nanos / 1e6:.2f}ms"


def rfc3339(common) -> str:
    """start_time as RFC3339 in UTC with microseconds; now when absent or out
    of the range RFC3339 can write (years 1-9999)."""
    if not common.HasField("start_time"):
        return now_rfc3339()
    ts = common.start_time
    if not -62135596800 <= ts.seconds <= 253402300799 or not 0 <= ts.nanos < 1_000_000_000:
        return now_rfc3339()
    t = _time.gmtime(ts.seconds)
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
            f"{t.tm_sec:02d}.{ts.nanos // 1000:06d}Z")


def http_message(entry) -> str:
    common = entry.common_properties
    req = entry.request
    resp = entry.response
    code = 0
    if common.response_flags.downstream_connection_termination:
        code = STATUS_DOWNSTREAM_GONE
    if resp.HasField("response_code") and (resp.response_code.value or not code):
        code = resp.response_code.value
    tls = origin = ""
    if common.HasField("tls_properties"):
        props = common.tls_properties
        tls = f"tls={_name(TLS_VERSIONS, props.tls_version)} "
        origin = f"origin=https://{props.tls_sni_hostname}{req.original_path} "
    request_size = req.request_headers_bytes + req.request_body_bytes
    response_size = resp.response_headers_bytes + resp.response_body_bytes
    return (f"bytes={request_size + response_size} request_size={request_size} "
            f"response_size={response_size} method={_name(METHODS, req.request_method)} "
            f"request_id={req.request_id} fwd={req.forwarded_for} authority={req.authority} "
            f"{origin}protocol={_name(PROTOCOLS, entry.protocol_version)} {tls}status={code} "
            f"connect={_ms(common, 'time_to_last_upstream_tx_byte')} "
            f"service={_ms(common, 'time_to_last_upstream_rx_byte')} "
            f"total={_ms(common, 'time_to_last_downstream_tx_byte')} path={req.path}")


def _address(addr) -> str:
    kind = addr.WhichOneof("address")
    if kind == "socket_address":
        sa = addr.socket_address
        host = f"[{sa.address}]" if ":" in sa.address else sa.address
        port = sa.port_value if sa.WhichOneof("port_specifier") != "named_port" else sa.named_port
        return f"{host}:{port}"
    if kind == "pipe":
        return addr.pipe.path
    return ""


def tcp_message(entry) -> str:
    common = entry.common_properties
    conn = entry.connection_properties
    tls = sni = ""
    if common.HasField("tls_properties"):
        props = common.tls_properties
        tls = f"tls={_name(TLS_VERSIONS, props.tls_version)} "
        sni = f"sni={props.tls_sni_hostname} "
    rf = common.response_flags
    flags = ",".join(short for field, short in FLAGS
                     if getattr(rf, field, False)) if common.HasField("response_flags") else ""
    total = "duration" if "duration" in common.DESCRIPTOR.fields_by_name \
        and common.HasField("duration") else "time_to_last_downstream_tx_byte"
    return (f"bytes={conn.received_bytes + conn.sent_bytes} request_size={conn.received_bytes} "
            f"response_size={conn.sent_bytes} fwd={_address(common.downstream_remote_address)} "
            f"upstream={_address(common.upstream_remote_address)} {sni}protocol=tcp {tls}"
            f"flags={flags or '-'} connect={_ms(common, 'time_to_last_upstream_tx_byte')} "
            f"service={_ms(common, 'time_to_last_upstream_rx_byte')} total={_ms(common, total)}")


def packets_of(msg, akkeris: bool) -> tuple[list[Packet], int, str]:
    """The packets of one StreamAccessLogsMessage, how many of its entries
    were skipped because their upstream cluster names no service, and the
    first such cluster (for the log)."""
    kind = msg.WhichOneof("log_entries")
    if kind == "http_logs":
        entries, layout = msg.http_logs.log_entry, http_message
    elif kind == "tcp_logs":
        entries, layout = msg.tcp_logs.log_entry, tcp_message
    else:
        return [], 0, ""
    tag = "akkeris/router" if akkeris else "envoy"
    packets = []
    bad = 0
    example = ""
    hosts: dict[str, str | None] = {}  # a batch mostly repeats a few clusters
    for entry in entries:
        common = entry.common_properties
        cluster = common.upstream_cluster
        host = hosts.get(cluster, "")
        if host == "":
            host = hosts[cluster] = hostname_of(cluster, akkeris)
        if host is None:
            if not bad:
                example = cluster
            bad += 1
            continue
        packets.append(Packet(0, 0, host, tag, rfc3339(common), layout(entry)))
    return packets, bad, example
