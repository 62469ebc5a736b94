"""The interface every drain scheme implements.

An Output turns a batch of packets into one buffered item (``encode``, called
once per batch) and opens Connections that deliver lists of such items. It knows
nothing about buffering, retries or pooling: the Drain does those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from logtrain.packet import Packet
from logtrain.runtime import Runtime
from logtrain.urls import DrainURL

if TYPE_CHECKING:
    from logtrain.trust import Guard


class Rejected(Exception):
    """The endpoint refused the data itself (an HTTP 4xx): retrying the same
    bytes cannot succeed, so the drain drops them, counted, instead.

    Raised once a write is over. ``items`` names the indexes of the items
    (batches) that held refused data and ``packets`` how many packets were
    refused; None for both means the whole write was refused. The drain
    alone counts and logs the refusal and fails the acknowledgements."""

    def __init__(self, reason: str, packets: int | None = None,
                 items: set[int] | None = None) -> None:
        super().__init__(reason)
        self.packets = packets
        self.items = items


class Busy(OSError):
    """The endpoint answered but asks for the data again later (HTTP 429 or
    5xx, or some documents of a bulk request): retried with backoff, even on a
    connection that sat in the pool, and not before ``retry_after`` seconds.
    ``progress``: it took part of the write (a bulk request some of whose
    documents are to be sent again), so it is not failing: the rest is sent
    again after a short wait, without counting towards a pause."""

    def __init__(self, reason: str, retry_after: float = 0.0, progress: bool = False) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.progress = progress


class Connection:
    def send(self, items: list[Any]) -> None:
        """Delivers the items or raises (OSError and the like: retried; Rejected: dropped)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class Output:
    #: seconds a writer waits to gather a fuller request (syslog+http posts once a second)
    flush_interval = 0.0
    #: bytes gathered into one write
    max_write = 256 << 10
    #: most connections (writers) for one drain; 0: DRAIN_MAX_CONNECTIONS. A drain
    #: whose endpoint must receive batches in order sets 1.
    max_connections = 0
    #: True for drains that write on this machine (file://, stdout://): only
    #: trusted routes may name them
    local = False
    #: the connect-time check of the drain's addresses (set by the router)
    guard: Guard | None = None

    def __init__(self, url: DrainURL, rt: Runtime) -> None:
        self.url = url
        self.rt = rt

    @classmethod
    def check(cls, url: DrainURL, rt: Runtime) -> tuple[str, int, str] | None:
        """Validates ``url`` for this scheme (ValueError: why not) and returns
        what ``destination`` would, without building anything that does I/O
        or loads certificates: a route is admitted with this, and its output
        is built only when its drain is first used. Outputs whose constructor
        is that cheap keep this default."""
        return cls(url, rt).destination()

    def encode(self, packets: list[Packet]) -> tuple[Any, int]:
        """The batch as one item and its size in bytes."""
        raise NotImplementedError

    def destination(self) -> tuple[str, int, str] | None:
        """(host, port, "tcp" or "udp") a network drain connects to; None for
        the others. The trust policy checks it when a route is added."""
        return None

    def connect(self) -> Connection:
        raise NotImplementedError
