"""Drain schemes, registered by URL scheme. Adding one is a module and a line here.

Modules are imported when a route first names their scheme, so a scheme nobody
uses costs no memory.
"""

from __future__ import annotations

import importlib

from logtrain.outputs.base import Output
from logtrain.runtime import Runtime
from logtrain.urls import DrainURL

REGISTRY: dict[str, str] = {
    "syslog+tcp": "logtrain.outputs.syslog:TCPOutput",
    "syslog+tls": "logtrain.outputs.syslog:TLSOutput",
    "syslog+udp": "logtrain.outputs.syslog:UDPOutput",
    "syslog": "logtrain.outputs.syslog:UDPOutput",
    "syslog+http": "logtrain.outputs.http:SyslogHTTPOutput",
    "syslog+https": "logtrain.outputs.http:SyslogHTTPOutput",
    "http": "logtrain.outputs.http:JSONHTTPOutput",
    "https": "logtrain.outputs.http:JSONHTTPOutput",
    "file": "logtrain.outputs.local:FileOutput",
    "stdout": "logtrain.outputs.local:StdoutOutput",
    "persistent": "logtrain.outputs.persistent:PersistentOutput",
    "es": "logtrain.outputs.elasticsearch:ElasticsearchOutput",
    "es+http": "logtrain.outputs.elasticsearch:ElasticsearchOutput",
    "es+https": "logtrain.outputs.elasticsearch:ElasticsearchOutput",
    "elasticsearch": "logtrain.outputs.elasticsearch:ElasticsearchOutput",
    "elasticsearch+http": "logtrain.outputs.elasticsearch:ElasticsearchOutput",
    "elasticsearch+https": "logtrain.outputs.elasticsearch:ElasticsearchOutput",
}

# Named by the design, served by later versions: say so rather than "unknown".
PLANNED: tuple[str, ...] = ()


class Checked:
    """What admitting a route needs of its drain URL (the trust policy reads
    ``url``, ``local`` and ``destination()``), known without building the
    output: no socket, no TLS context, no HTTP pool."""

    __slots__ = ("url", "local", "dest")

    def __init__(self, url: DrainURL, local: bool, dest: tuple[str, int, str] | None) -> None:
        self.url = url
        self.local = local
        self.dest = dest

    def destination(self) -> tuple[str, int, str] | None:
        return self.dest


def check_url(raw: str, rt: Runtime) -> Checked:
    """Parses and validates a drain URL as ``create_output`` would, but
    builds nothing (see Output.check); raises ValueError with the reason."""
    url = DrainURL(raw)
    cls = _output_class(url)
    return Checked(url, cls.local, cls.check(url, rt))


def create_output(raw: str, rt: Runtime) -> Output:
    """Parses and validates a drain URL; raises ValueError with the reason."""
    url = DrainURL(raw)
    return _output_class(url)(url, rt)


def _output_class(url: DrainURL) -> type[Output]:
    target = REGISTRY.get(url.scheme)
    if target is None:
        if url.scheme in PLANNED:
            raise ValueError(f"drain scheme {url.scheme}:// is not available in this version yet")
        raise ValueError(
            f"unknown drain scheme {url.scheme!r} (known: {', '.join(sorted(REGISTRY))})"
        )
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)
