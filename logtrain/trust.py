"""The trust policy of routes: which datasource may name which drain, and
which addresses a drain may connect to.

Every route carries the trust of its datasource: the operator's routes file
(``file``) is trusted; ``postgres``, ``api`` and ``kubernetes`` are not unless
ROUTE_TRUST names them. Untrusted routes may name network drains only (no
file://, stdout://). A drain is checked as untrusted unless at least one
trusted route names its URL, and that is looked up again at every connection,
so it follows the routes as they change. The checks of an untrusted drain are
made on the address actually connected to, after name resolution: one in
DRAIN_DENY_NETWORKS and not in DRAIN_ALLOW_NETWORKS is refused (IPv4-mapped
IPv6 addresses are checked as the IPv4 address they carry). No drain, trusted
or not, may point at one of the agent's own listeners: that loops every line
back into the agent.

Refusals are ``Refused`` (a ValueError: the route is not admitted) when a
route is added, and ``DestinationRefused`` (an OSError: a drain failure,
retried like an unreachable endpoint) at connect time. Both are counted in
``logtrain_routes_refused_total{source,reason}`` and logged at a bounded rate.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any

SOURCES = ("file", "postgres", "api", "kubernetes")
LOCAL_DRAIN = "local_drain"
OWN_LISTENER = "own_listener"
DENIED_NETWORK = "denied_network"
_LOCALHOST_NAMES = ("localhost", "localhost.", "ip6-localhost", "ip6-loopback")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Refused(ValueError):
    """A route the policy does not admit; ``reason`` is the metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class DestinationRefused(ConnectionRefusedError):
    """A drain's resolved address the policy refuses; a drain failure."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    def __str__(self) -> str:
        return self.args[0]


def kind(source: str) -> str:
    """The datasource kind of a route's source (``file:/etc/routes`` -> ``file``)."""
    return source.split(":", 1)[0]


def parse_trust(text: str) -> frozenset[str]:
    """ROUTE_TRUST as a set of datasource kinds; ValueError names a bad one."""
    kinds = frozenset(k.strip().lower() for k in text.split(",") if k.strip())
    bad = sorted(kinds - set(SOURCES))
    if bad:
        raise ValueError(f"unknown datasource {bad[0]!r} (expected a comma-separated list of "
                         f"{', '.join(SOURCES)})")
    return kinds


def parse_networks(text: str) -> list[Network]:
    """Comma-separated CIDRs (a bare address is a /32 or /128); ValueError
    names the entry that is not one."""
    nets = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item))
        except ValueError as e:
            raise ValueError(f"{item!r} is not a network in CIDR notation ({e})") from None
    return nets


def _addresses(host: str) -> list[Address] | None:
    """The address a literal host is, plus the IPv4 address an IPv4-mapped
    IPv6 address carries; None for a name."""
    addrs = _literal(host)
    return None if addrs is None else list(addrs)


@functools.lru_cache(maxsize=1024)  # thousands of routes name a few endpoints' hosts
def _literal(host: str) -> tuple[Address, ...] | None:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip, ip.ipv4_mapped
    return (ip,)


def _in(addrs: Iterable[Address], nets: list[Network]) -> Network | None:
    for a in addrs:
        for n in nets:
            if a.version == n.version and a in n:
                return n
    return None


def _is_local(addrs: list[Address]) -> bool:
    """True when an address is the machine's own: loopback, unspecified (which
    reaches the machine itself), or assigned to an interface here (binding to
    it succeeds)."""
    for a in addrs:
        if a.is_loopback or a.is_unspecified:
            return True
    a = addrs[-1]
    family = socket.AF_INET if a.version == 4 else socket.AF_INET6
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((str(a), 0))
        return True
    except OSError:
        return False


def own_ports(cfg: Any) -> frozenset[tuple[str, int]]:
    """(transport, port) of every listener the configuration opens."""
    ports = {("tcp", cfg.http_port)}
    for flag, transport, port in (("syslog_tcp", "tcp", "syslog_tcp_port"),
                                  ("syslog_tls", "tcp", "syslog_tls_port"),
                                  ("syslog_udp", "udp", "syslog_udp_port"),
                                  ("envoy", "tcp", "envoy_port")):
        if getattr(cfg, flag):
            ports.add((transport, getattr(cfg, port)))
    return frozenset(p for p in ports if p[1])


class Policy:
    """The policy of one agent, from its configuration (validated by config)."""

    def __init__(self, rt: Any) -> None:
        cfg = rt.config
        self.rt = rt
        self.trusted_kinds = parse_trust(cfg.route_trust)
        self.deny = parse_networks(cfg.drain_deny_networks)
        self.allow = parse_networks(cfg.drain_allow_networks)
        self.own = own_ports(cfg)

    def trusted(self, source: str) -> bool:
        return kind(source) in self.trusted_kinds

    def admit(self, source: str, output: Any) -> None:
        """Raises Refused when ``source`` may not route to ``output`` (checks
        that need no name resolution; the rest is done at connect time)."""
        if output.local and not self.trusted(source):
            raise Refused(LOCAL_DRAIN, f"{output.url.scheme}:// drains are not allowed from the "
                          f"{kind(source)} datasource, which is not trusted (ROUTE_TRUST="
                          f"{','.join(sorted(self.trusted_kinds))}): untrusted routes name "
                          "network drains only")
        dest = output.destination()
        if dest is None:
            return
        host, port, transport = dest
        addrs = _addresses(host)
        if addrs is None and (host.lower() in _LOCALHOST_NAMES or host.lower().endswith(".localhost")):
            addrs = [ipaddress.ip_address("127.0.0.1")]
        if addrs is not None and (transport, port) in self.own and _is_local(addrs):
            raise Refused(OWN_LISTENER, self._own_message(host, port, transport))

    def _own_message(self, host: str, port: int, transport: str) -> str:
        return (f"{host}:{port}/{transport} is one of the agent's own listeners: "
                "a drain there would loop every line back into the agent")

    def check(self, sockaddr: tuple, transport: str, trusted: bool) -> None:
        """Raises DestinationRefused when a drain may not connect to ``sockaddr``."""
        addrs = _addresses(sockaddr[0])
        if addrs is None:  # not an IP address: nothing to check against
            return
        port = sockaddr[1]
        shown = f"{sockaddr[0]}:{port}"
        if (transport, port) in self.own and _is_local(addrs):
            raise DestinationRefused(OWN_LISTENER, self._own_message(sockaddr[0], port, transport))
        if trusted:
            return
        net = _in(addrs, self.deny)
        if net is not None and _in(addrs, self.allow) is None:
            raise DestinationRefused(DENIED_NETWORK, (
                f"{shown} is in DRAIN_DENY_NETWORKS ({net}) and not in DRAIN_ALLOW_NETWORKS, "
                "and no trusted route names this drain"))

    def report(self, source: str, reason: str, endpoint: str, error: str, **fields: Any) -> None:
        """Counts a refusal and logs it at a bounded rate (``endpoint`` masked)."""
        rt = self.rt
        rt.metrics.inc("logtrain_routes_refused_total", source=source, reason=reason)
        held = rt.ratelimit.allow(("route-refused", source, reason, endpoint))
        if held is not None:
            rt.log.warning("route refused", source=source, reason=reason, endpoint=endpoint,
                           error=error, refusals_since_last_report=held, **fields)


class Guard:
    """The connect-time check of one drain: its trust is asked of the router
    at each connection, so it follows the routes naming the drain."""

    def __init__(self, policy: Policy, name: str, trusted: Callable[[], bool],
                 sources: Callable[[], str]) -> None:
        self.policy = policy
        self.name = name
        self.trusted = trusted
        self.sources = sources

    def check(self, sockaddr: tuple, transport: str) -> None:
        try:
            self.policy.check(sockaddr, transport, self.trusted())
        except DestinationRefused as e:
            self.policy.report(self.sources(), e.reason, self.name, str(e),
                               address=f"{sockaddr[0]}:{sockaddr[1]}")
            raise


def open_socket(host: str, port: int, transport: str, timeout: float | None,
                guard: Guard | None, options: Iterable[tuple] = ()) -> socket.socket:
    """A socket connected to ``host:port``, each resolved address checked by
    ``guard`` before it is connected to (the address checked is the one used:
    nothing is resolved twice). Raises DestinationRefused when every address
    was refused, else the last connection error."""
    kind_ = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    infos = socket.getaddrinfo(host, port, 0, kind_)
    refused: DestinationRefused | None = None
    error: OSError | None = None
    for family, type_, proto, _, addr in infos:
        if guard is not None:
            try:
                guard.check(addr, transport)
            except DestinationRefused as e:
                refused = refused or e
                continue
        sock = socket.socket(family, type_, proto)
        try:
            for opt in options:
                sock.setsockopt(*opt)
            if timeout is not None:
                sock.settimeout(timeout)
            sock.connect(addr)
            return sock
        except OSError as e:
            sock.close()
            error = e
    if refused is not None:
        raise refused
    raise error or OSError(f"{host} resolved to no address")


def refusal_in(err: BaseException) -> DestinationRefused | None:
    """The DestinationRefused behind ``err`` (a library may have wrapped it)."""
    seen = 0
    stack = [err]
    while stack and seen < 16:
        e = stack.pop()
        seen += 1
        if isinstance(e, DestinationRefused):
            return e
        stack += [x for x in (e.__cause__, e.__context__, *getattr(e, "args", ()))
                  if isinstance(x, BaseException)]
    return None
