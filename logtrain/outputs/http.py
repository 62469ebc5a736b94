"""http(s):// (one packet JSON per POST, as the original posts it, or with
``batch=ndjson`` one NDJSON body a second) and
syslog+http(s):// (newline-separated RFC5424 body posted once a second, or
``framing=octet`` for an application/logplex-1 body), over keep-alive
connections from urllib3 pools. ``insecure=true`` turns TLS verification off.

A 4xx answer other than 408 and 429 means the endpoint refuses that body:
retrying cannot help, so it is dropped and counted. 408, 429 and 5xx answers
(``Busy``) and connection errors are retried with the drain's backoff, after
Retry-After when the endpoint sends one. Each drain writer keeps one
keep-alive connection, so a drain has at most DRAIN_MAX_CONNECTIONS.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlencode

from logtrain.outputs.base import Busy, Connection, Output, Rejected
from logtrain.packet import Packet
from logtrain.runtime import Runtime
from logtrain.serialize import ndjson, packet_jsons
from logtrain.syslog import format_rfc5424
from logtrain.tlsopts import decode_ca
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
    #: query options this drain reads itself, not sent on to the endpoint
    own_options: tuple[str, ...] = ("insecure", "ca")

    def __init__(self, url: DrainURL, rt: Runtime) -> None:
        super().__init__(url, rt)
        urllib3 = _urllib3()
        if not url.host:
            raise ValueError("no host in the URL")
        self.https = self.uses_tls(url.scheme)
        self.insecure = url.flag("insecure")
        query = {k: v for k, v in url.query.items() if k not in self.own_options}
        self.target = self.path(url.path) + ("?" + urlencode(query) if query else "")
        self.headers = {"Content-Type": self.content_type, "User-Agent": "logtrain"}
        self.headers.update(self.auth_headers(url))
        cfg = rt.config
        self.host, self.port = url.host, url.port or (443 if self.https else 80)
        # One keep-alive connection per drain writer: the drain's pool of
        # writers is the connection pool (DRAIN_MAX_CONNECTIONS at most, grown
        # under pressure, closed when idle).
        self.pool_kw: dict[str, Any] = dict(
            maxsize=1,
            timeout=urllib3.Timeout(connect=cfg.drain_connect_timeout, read=cfg.drain_write_timeout),
            retries=False,
        )
        self.pool_cls = urllib3.HTTPConnectionPool
        if self.https:
            from logtrain.tls import client_context

            self.pool_cls = urllib3.HTTPSConnectionPool
            # verification on unless insecure=true; ca= adds a CA (logtrain.tls)
            # one context per trust configuration for all https drains
            self.pool_kw["ssl_context"] = client_context(url, "https")
            if self.insecure:
                self.pool_kw.update(cert_reqs="CERT_NONE", assert_hostname=False)
        self.conn_cls = _guarded(self.pool_cls.ConnectionCls, self)

    def uses_tls(self, scheme: str) -> bool:
        return scheme.removeprefix("syslog+") == "https"

    def path(self, path: str) -> str:
        return path or "/"

    def auth_headers(self, url: DrainURL) -> dict[str, str]:
        """``user:password@`` in the URL is Basic authentication."""
        if url.username is None:
            return {}
        return _urllib3().util.make_headers(basic_auth=f"{url.username}:{url.password or ''}")

    def destination(self) -> tuple[str, int, str]:
        return self.host, self.port, "tcp"

    @classmethod
    def check(cls, url: DrainURL, rt: Runtime) -> tuple[str, int, str]:
        """What the constructor checks, without urllib3 (an import of its
        own) or a pool: the pool is built when the drain is first used."""
        if not url.host:
            raise ValueError("no host in the URL")
        url.flag("insecure")
        if "framing" in cls.own_options:
            url.octet_framing()
        if "batch" in cls.own_options:
            url.choice("batch", ("none", "ndjson"))
        https = url.scheme.removeprefix("syslog+") == "https"
        if https:
            decode_ca(url)  # a bad ca= is refused now, with no ssl loaded
        return url.host, url.port or (443 if https else 80), "tcp"

    def connect(self) -> Connection:
        pool = self.pool_cls(self.host, self.port, **self.pool_kw)
        pool.ConnectionCls = self.conn_cls
        return HTTPConnection(self, pool)

    def deliver(self, pool: Any, items: list[Any]) -> None:
        """Posts the items; raises OSError (retried) or Rejected (dropped)."""
        raise NotImplementedError

    def request(self, pool: Any, body: bytes | list[bytes],
                headers: dict[str, str] | None = None) -> Any:
        """POSTs ``body`` (bytes, or pieces sent in turn when ``headers``
        carry their Content-Length); the response when the status is 2xx. Raises Busy
        for 408, 429 and 5xx (retried with backoff), Rejected for another
        4xx (dropped: the same bytes cannot succeed), OSError when the
        endpoint cannot be reached."""
        try:
            r = pool.urlopen("POST", self.target, body=body, headers=headers or self.headers,
                             preload_content=True, assert_same_host=False)
        except Exception as e:
            refused = refusal_in(e)  # urllib3 wraps it; the drain should say why
            if refused is not None:
                raise refused from None
            raise
        if 200 <= r.status < 300:
            return r
        reason = f"HTTP {r.status} from {self.url.safe}"
        if 400 <= r.status < 500 and r.status not in self.retry_4xx:
            raise Rejected(reason)
        raise Busy(reason, _retry_after(r.headers.get("Retry-After")))

    retry_4xx: tuple[int, ...] = _RETRYABLE_4XX

    def post(self, pool: Any, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.request(pool, body, headers)


def _retry_after(value: str | None) -> float:
    """Retry-After in seconds (an HTTP date is not worth parsing here: 0)."""
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


class HTTPConnection(Connection):
    """A drain writer's connection: one keep-alive urllib3 connection."""

    def __init__(self, output: _HTTPOutput, pool: Any) -> None:
        self.output = output
        self.pool = pool

    def send(self, items: list[Any]) -> None:
        self.output.deliver(self.pool, items)

    def close(self) -> None:
        self.pool.close()


class JSONHTTPOutput(_HTTPOutput):
    """One packet JSON per POST, as the original; ``batch=ndjson`` posts
    the packets of up to a second (at most 1 MiB) as one NDJSON body, for
    receivers that take it."""

    content_type = "application/json"
    own_options = ("insecure", "ca", "batch")

    def __init__(self, url: DrainURL, rt: Runtime) -> None:
        self.batched = url.choice("batch", ("none", "ndjson")) == "ndjson"
        if self.batched:
            self.content_type = "application/x-ndjson"
            self.flush_interval = 1.0
            self.max_write = 1 << 20
        super().__init__(url, rt)

    def encode(self, packets: list[Packet]) -> tuple[Any, int]:
        if self.batched:
            body = ndjson(packets)
            return body, len(body)
        bodies = packet_jsons(packets)
        return Posts(bodies), sum(map(len, bodies))

    def deliver(self, pool: Any, items: list[Any]) -> None:
        if self.batched:
            self.post(pool, b"".join(items))  # a 4xx drops the whole body
            return
        for item in items:
            done = 0
            try:
                for body in item.bodies:
                    try:
                        self.post(pool, body)
                    except Rejected as e:
                        item.dropped += 1
                        item.reason = str(e)
                    done += 1
            finally:
                # Delivered (or refused) bodies leave the item, so a retry
                # sends only the rest; its refusals are remembered until the
                # write is over, when the drain counts them.
                del item.bodies[:done]
        dropped = sum(item.dropped for item in items)
        if dropped:
            # one packet per body: the drain counts these as dropped, the rest as sent
            raise Rejected(next(i.reason for i in items if i.dropped), packets=dropped,
                           items={n for n, i in enumerate(items) if i.dropped})


class Posts:
    """One batch of a per-packet JSON drain: the bodies not posted yet and how
    many were refused so far."""

    __slots__ = ("bodies", "dropped", "reason")

    def __init__(self, bodies: list[bytes]) -> None:
        self.bodies = bodies
        self.dropped = 0
        self.reason = ""


class SyslogHTTPOutput(_HTTPOutput):
    flush_interval = 1.0
    max_write = 1 << 20
    own_options = ("insecure", "ca", "framing")

    def __init__(self, url: DrainURL, rt: Runtime) -> None:
        self.octet = url.octet_framing()
        self.content_type = "application/logplex-1" if self.octet else "application/syslog"
        super().__init__(url, rt)

    def encode(self, packets: list[Packet]) -> tuple[tuple[bytes, int], int]:
        data = format_rfc5424(packets, self.octet)
        return (data, len(packets)), len(data)

    def deliver(self, pool: Any, items: list[Any]) -> None:
        headers = self.headers
        if self.octet:
            headers = dict(headers, **{"Logplex-Msg-Count": str(sum(n for _, n in items))})
        self.post(pool, b"".join(d for d, _ in items), headers)
