"""Inputs, registered by the setting that enables them. Adding one is a module
and a line here; modules are imported only when their input is enabled."""

from __future__ import annotations

REGISTRY: dict[str, str] = {
    "SYSLOG_TCP": "logtrain.inputs.syslog_stream:SyslogTCPInput",
    "SYSLOG_TLS": "logtrain.inputs.syslog_stream:SyslogTLSInput",
    "SYSLOG_UDP": "logtrain.inputs.syslog_udp:SyslogUDPInput",
    "HTTP_SYSLOG": "logtrain.inputs.http:HTTPSyslogInput",
    "HTTP_EVENTS": "logtrain.inputs.http:HTTPEventsInput",
    "KUBERNETES": "logtrain.inputs.kubernetes:KubernetesInput",
    "FILES": "logtrain.inputs.files:FilesInput",
    "ENVOY": "logtrain.inputs.envoy:EnvoyInput",
}
