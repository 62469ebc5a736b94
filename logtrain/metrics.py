"""Counters and gauges, exposed in the Prometheus text format.

Written by hand: prometheus_client costs about 14 MB of resident memory, and
the text format is a few lines of code.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE")
_STARTED = time.time()

HELP = {
    "logtrain_input_frames_total": "Frames/messages received by an input.",
    "logtrain_input_rejected_total": "Frames an input rejected, by reason.",
    "logtrain_input_connections": "Open connections of a stream input.",
    "logtrain_input_connections_rejected_total": "Connections refused, by reason.",
    "logtrain_http_rejected_total": "HTTP requests refused (4xx/5xx before the handler), by reason.",
    "logtrain_input_partial_bytes": "Bytes of unfinished input all connections hold against INPUT_PARTIAL_BUDGET.",
    "logtrain_dead_packets_total": "Packets whose hostname has no route.",
    "logtrain_drain_sent_total": "Packets a drain delivered.",
    "logtrain_drain_dropped_total": "Packets a drain dropped, by reason.",
    "logtrain_drain_errors_total": "Connection or write failures of a drain.",
    "logtrain_drain_buffer_bytes": "Bytes waiting in a drain's buffer.",
    "logtrain_drain_connections": "Open connections of a drain.",
    "logtrain_drain_paused": "1 while a drain is paused after repeated failures.",
    "logtrain_drain_state": "A drain's state: 0 healthy, 1 failing, 2 paused.",
    "logtrain_drain_pause_seconds": "Length of a paused drain's current pause.",
    "logtrain_drain_retries_total": "Packets a drain wrote again after a failed write.",
    "logtrain_drain_spooled_total": "Packets a drain put in its disk spool.",
    "logtrain_drain_spool_bytes": "Bytes in a drain's disk spool.",
    "logtrain_drain_spool_packets": "Packets in a drain's disk spool not yet taken for sending.",
    "logtrain_spool_errors_total": "Writes to a drain's spool that failed (a full disk).",
    "logtrain_spool_torn_total": "Torn last records cut off a spool at start.",
    "logtrain_spool_corrupt_segments_total": "Spool segments set aside as corrupt.",
    "logtrain_datasource_routes": "Routes in the route table, by datasource.",
    "logtrain_file_lag_bytes": "Bytes of a followed file not yet committed to its checkpoint.",
    "process_resident_memory_bytes": "Resident memory of the agent.",
    "process_cpu_seconds_total": "CPU time of the agent (user and system).",
    "process_start_time_seconds": "When the agent started, seconds since the epoch.",
    "logtrain_routes": "Routes in the route table.",
    "logtrain_filtered_total": "Packets a filter dropped, by drain or hostname glob and reason.",
    "logtrain_redactions_total": "Secrets replaced by a redaction marker, by pattern.",
    "logtrain_route_errors_total": "Routes rejected by a datasource, by reason.",
    "logtrain_tails": "Live tails (GET /tail) attached now.",
    "logtrain_tails_total": "Live tails started.",
    "logtrain_tails_refused_total": "Live tails refused, by reason (max_tails, bad_request).",
    "logtrain_tail_dropped_total": "Lines live tails lost because their client read too slowly.",
    "logtrain_routes_refused_total": "Routes and drain connections the trust policy refused, by source and reason.",
    "logtrain_input_udp_kernel_drops": "Datagrams the kernel dropped for the UDP input since its "
    "socket opened, because its receive buffer (UDP_RECEIVE_BUFFER) was full.",
    "logtrain_datasource_connected": "1 while a database datasource is connected, 0 while it reconnects.",
    "logtrain_datasource_errors_total": "Connection and query failures of a database datasource.",
    "logtrain_task_crashes_total": "Crashes of a supervised long-running task (each one restarted).",
    "logtrain_kubernetes_annotated_objects": "Objects the Kubernetes datasource holds routes "
    "for (those with a logtrain.akkeris.io/drains annotation).",
    "logtrain_kubernetes_events_total": "Watch events the Kubernetes datasource read, by "
    "resource and type.",
    "logtrain_hostname_claims_refused_total": "logtrain.akkeris.io/hostname annotations "
    "refused by KUBERNETES_HOSTNAME_POLICY (a name outside the object's namespace), by reader.",
    "logtrain_router_held_packets_total": "Lines that arrived before the routes were loaded, "
    "by outcome: held until they loaded, or over ROUTES_STARTUP_BUFFER (dead).",
    "logtrain_files_watched": "Files a file input is following.",
    "logtrain_file_rotations_total": "Rotations of followed files, by kind (rename, copytruncate).",
    "logtrain_file_rewinds_total": "Times a followed file was found truncated and read again from its start.",
    "logtrain_file_lines_split_total": "Lines longer than the joined-line limit, emitted in pieces.",
    "logtrain_kubernetes_api_errors_total": "Failed Kubernetes API calls, by HTTP status (0: unreachable).",
}


def _labels(labels: tuple) -> str:
    if not labels:
        return ""
    inner = ",".join(
        '{}="{}"'.format(k, str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n"))
        for k, v in labels
    )
    return "{" + inner + "}"


class Metrics:
    def __init__(self) -> None:
        self.counters: dict[tuple, int] = {}
        self.gauges: dict[tuple, Callable[[], float]] = {}
        # functions called at each render for series that come and go, each
        # returning (name, labels, value) rows, or text in the exposition format
        self.collectors: list[Callable[[], Any]] = []

    def inc(self, name: str, n: int = 1, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        self.counters[key] = self.counters.get(key, 0) + n

    def get(self, name: str, **labels: str) -> int:
        return self.counters.get((name, tuple(sorted(labels.items()))), 0)

    def total(self, name: str, **labels: str) -> int:
        """The sum of the counters named ``name`` whose labels include ``labels``."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.counters.items() if n == name and want <= set(ls))

    def gauge(self, name: str, fn: Callable[[], float], **labels: str) -> None:
        self.gauges[(name, tuple(sorted(labels.items())))] = fn

    def remove(self, **labels: str) -> None:
        """Forgets the gauges carrying these labels (a drain that was closed)."""
        want = set(labels.items())
        for key in [k for k in self.gauges if want <= set(k[1])]:
            del self.gauges[key]

    def render(self) -> str:
        rows: dict[str, list[str]] = {}
        for (name, labels), v in sorted(self.counters.items()):
            rows.setdefault(name, []).append(f"{name}{_labels(labels)} {v}")
        for (name, labels), fn in sorted(self.gauges.items(), key=lambda kv: kv[0]):
            try:
                v = fn()
            except Exception:  # a gauge of a component being torn down
                continue
            rows.setdefault(name, []).append(f"{name}{_labels(labels)} {v:g}")
        extra = []
        for collect in self.collectors:
            try:
                got = collect()
            except Exception:  # noqa: BLE001 - a collector of a component being torn down
                continue
            if isinstance(got, str):
                if got:
                    extra.append(got)
                continue
            for name, labels, v in got:
                rows.setdefault(name, []).append(
                    f"{name}{_labels(tuple(sorted(labels.items())))} {v:g}")
        for name, v in _process():
            rows.setdefault(name, []).append(f"{name} {v:g}")
        out = []
        for name, lines in rows.items():
            kind = "counter" if name.endswith("_total") else "gauge"
            out.append(f"# HELP {name} {HELP.get(name, name)}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(lines)
        return "\n".join(out + extra) + "\n"


def _process() -> list[tuple[str, float]]:
    """The usual process_* series (resident memory, CPU seconds, start time)."""
    try:
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        rss = 0
    t = os.times()
    return [("process_resident_memory_bytes", rss),
            ("process_cpu_seconds_total", round(t.user + t.system, 3)),
            ("process_start_time_seconds", round(_STARTED, 3))]
