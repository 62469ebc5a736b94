"""http(s):// (one packet JSON per POST, as the original posts it) and
syslog+http(s):// (newline-separated RFC5424 body posted once a second, or
``framing=octet`` for an application/logplex-1 body), over keep-alive
connections from urllib3 pools. ``insecure=true`` turns TLS verification off.

A 4xx answer other than 408 and 429 means the endpoint refuses that body:
retrying cannot help, so it is dropped and counted; anything else is retried.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlencode

from logtrain.outputs.base import Connection, Output, Rejected
from logtrain.packet import Packet
from logtrain.runtime import Runtime
from logtrain.serialize import packet_jsons
from logtrain.syslog import format_rfc5424
from logtrain.trust import DestinationRefused, open_socket, refusal_in
from logtrain.urls import DrainURL

_RETRYABLE_4XX = (408, 429)


def _urllib3():
    from logtrain.tls import urllib3_module

    return urllib3_module()


def _guarded(base: type, output: _HTTPOutput) -> type:
    """urllib3's connection class with its socket opened by trust.open_socket,
    so the address the policy checked is the one connected to (urllib3 would
    resolve the name again)."""
    urllib3 = _urllib3()
    exc = urllib3.exceptions

    class GuardedConnection(base):
        def _new_conn(self):
            timeout = self.timeout if isinstance(self.timeout, (int, float)) else None
            try:
                return open_socket(self._dns_host, self.port, "tcp", timeout, output.guard,
                                   self.socket_options or ())
            except socket.gaierror as e:
                raise exc.NameResolutionError(self.host, self, e) from e
            except TimeoutError as e:
                raise exc.ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={timeout})") from e
            except DestinationRefused:
                raise
            except OSError as e:  # as urllib3 itself says it: the request was not sent
                raise exc.NewConnectionError(
                    self, f"Failed to establish a new connection: {e}") from e

    return GuardedConnection


class _HTTPOutput(Output):
    content_type = "application/octet-stream"

    def __init__(self, url: DrainURL, rt: Runtime) -> None:
        super().__init__(url, rt)
        urllib3 = _urllib3()
        scheme = url.scheme.removeprefix("syslog+")
        if not url.host:
            raise ValueError("no host in the URL")
        self.insecure = url.flag("insecure")
        query = {k: v for k, v in url.query.items() if k not in self.own_options}
        self.target = (url.path or "/") + ("?" + urlencode(query) if query else "")
        self.headers = {"Content-Type": self.content_type, "User-Agent": "logtrain"}
        if url.username is not None:
            self.headers.update(urllib3.util.make_headers(
                basic_auth=f"{url.username}:{url.password or ''}"))
        cfg = rt.config
        kw: dict[str, Any] = dict(
            maxsize=cfg.drain_max_connections,
            timeout=urllib3.Timeout(connect=cfg.drain_connect_timeout, read=cfg.drain_write_timeout),
            retries=False,
        )
        if scheme == "https":
            from logtrain import tls

            # one context per trust configuration for all https drains
            kw.update(ssl_context=tls.client_context(url, "https"))
            if self.insecure:
                kw.update(cert_reqs="CERT_NONE", assert_hostname=False)
            self.pool = urllib3.HTTPSConnectionPool(url.host, url.port or 443, **kw)
        else:
            self.pool = urllib3.HTTPConnectionPool(url.host, url.port or 80, **kw)
        self.pool.ConnectionCls = _guarded(self.pool.ConnectionCls, self)

    def destination(self) -> tuple[str, int, str]:
        return self.pool.host, self.pool.port, "tcp"

    @classmethod
    def check(cls, url: DrainURL, rt: Runtime) -> tuple[str, int, str]:
        """What the constructor checks, without urllib3 (an import of its
        own) or a pool: the pool is built when the drain is first used."""
        if not url.host:
            raise ValueError("no host in the URL")
        url.flag("insecure")
        if "framing" in cls.own_options:
            url.octet_framing()
        https = url.scheme.removeprefix("syslog+") == "https"
        return url.host, url.port or (443 if https else 80), "tcp"

    own_options: tuple[str, ...] = ("insecure",)

    def connect(self) -> Connection:
        return HTTPConnection(self)

    def deliver(self, items: list[Any]) -> None:
        """Posts the items; raises OSError (retried) or Rejected (dropped)."""
        raise NotImplementedError

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            r = self.pool.urlopen("POST", self.target, body=body, headers=headers or self.headers,
                                  preload_content=True, assert_same_host=False)
        except Exception as e:
            refused = refusal_in(e)  # urllib3 wraps it; the drain should say why
            if refused is not None:
                raise refused from None
            raise
        if 200 <= r.status < 300:
            return
        reason = f"HTTP {r.status} from {self.url.safe}"
        if 400 <= r.status < 500 and r.status not in _RETRYABLE_4XX:
            raise Rejected(reason)
        raise OSError(reason)


class HTTPConnection(Connection):
    """A drain writer's connection: the output's urllib3 pool does the pooling."""

    def __init__(self, output: _HTTPOutput) -> None:
        self.output = output

    def send(self, items: list[Any]) -> None:
        self.output.deliver(items)


class JSONHTTPOutput(_HTTPOutput):
    content_type = "application/json"

    def encode(self, packets: list[Packet]) -> tuple[list[bytes], int]:
        bodies = packet_jsons(packets)
        return bodies, sum(map(len, bodies))

    def deliver(self, items: list[Any]) -> None:
        refused: set[int] = set()
        n = 0
        last: Rejected | None = None
        for i, bodies in enumerate(items):
            done = 0
            try:
                for body in bodies:
                    try:
                        self.post(body)
                    except Rejected as e:
                        refused.add(i)
                        n += 1
                        last = e
                    done += 1
            finally:
                # Delivered (or refused) bodies leave the item, so a retry
                # sends only the rest.
                del bodies[:done]
        if last is not None:
            # one packet per body: the drain counts these as dropped, the rest as sent
            raise Rejected(str(last), packets=n, items=refused)


class SyslogHTTPOutput(_HTTPOutput):
    flush_interval = 1.0
    max_write = 1 << 20
    own_options = ("insecure", "framing")

    def __init__(self, url: DrainURL, rt: Runtime) -> None:
        self.octet = url.octet_framing()
        self.content_type = "application/logplex-1" if self.octet else "application/syslog"
        super().__init__(url, rt)

    def encode(self, packets: list[Packet]) -> tuple[tuple[bytes, int], int]:
        data = format_rfc5424(packets, self.octet)
        return (data, len(packets)), len(data)

    def deliver(self, items: list[Any]) -> None:
        headers = self.headers
        if self.octet:
            headers = dict(headers, **{"Logplex-Msg-Count": str(sum(n for _, n in items))})
        self.post(b"".join(d for d, _ in items), headers)
