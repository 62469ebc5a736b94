"""Elasticsearch drains: es+https://, es+http://, es://, elasticsearch://,
elasticsearch+https://, elasticsearch+http:// (es:// and elasticsearch:// are
https, as in the original).

Batches are posted as NDJSON ``create`` actions to ``{url}/_bulk`` (unless the
path already ends in ``_bulk``) at least once a second, earlier when
``batch_size`` bytes (5 MiB) are waiting. Bodies come from the compiled
serializer (logtrain.serialize.es_bulk): @timestamp in UTC with microseconds,
and a document id hashed from the document line, so a request sent again
creates nothing twice (Elasticsearch answers 409 for a ``create`` of an id it
has, which counts as delivered). There is no ``_source`` in the action line:
current Elasticsearch refuses it.

URL options: ``index=`` (default: the packet's hostname in lower case),
``daily=true`` (``{index}-YYYY.MM.DD``, the document's UTC day),
``data_stream=true`` (Elasticsearch 8 data streams: the stream ``index=`` names,
or ``logs-{hostname}-default``, which the built-in ``logs-*-*`` template
matches), ``auth=basic|bearer|apikey`` (basic when the URL has a password),
``insecure=true``, ``ca=BASE64PEM``, ``gzip=true``, ``batch_size=`` (bytes,
K or M suffix). Other query parameters (``pipeline=``, ``routing=``) are sent on.

Responses: 408, 429, 5xx, 401 and 403 (credentials, not the data, are at
fault) and connection errors are retried with the drain's backoff while the
batch stays buffered. A 200 with ``errors: true`` is read item by item: 429
and 5xx documents are sent again (only they), other 4xx documents (mapping
errors) are dropped and counted, the drain logging a sample reason at most
once a minute.
"""

from __future__ import annotations

import base64
import json
import re
import time
import zlib
from typing import Any
from urllib.parse import unquote

from logtrain.outputs.base import Busy, Rejected
from logtrain.outputs.http import _HTTPOutput
from logtrain.packet import Packet
from logtrain.runtime import Runtime
from logtrain.serialize import es_bulk
from logtrain.tlsopts import decode_ca
from logtrain.urls import DrainURL

_TLS_SCHEMES = ("es", "es+https", "elasticsearch", "elasticsearch+https")
# What a bulk answer needs to carry: less to read than whole items.
_FILTER = "errors,items.*.status,items.*.error.type,items.*.error.reason"
_NO_ERRORS = re.compile(rb'"errors"\s*:\s*false')
# Elasticsearch's rules for index names (lower case, none of these characters)
_BAD_INDEX = re.compile(r'[\\/*?"<>| ,#:A-Z]|^[-_+]|^\.\.?$')
_SIZE = re.compile(r"([0-9]+)([KkMm]?)")


class Bulk:
    """One batch's part of a bulk request: the NDJSON lines of the documents
    not settled yet, and what was dropped from it so far (the drain counts
    the drops once the write is over)."""

    __slots__ = ("body", "docs", "dropped", "reason")

    def __init__(self, body: bytes, docs: int) -> None:
        self.body = body
        self.docs = docs
        self.dropped = 0
        self.reason = ""

    def keep(self, indexes: list[int]) -> None:
        """Keeps only the documents at ``indexes`` (to be sent again)."""
        lines = self.body.split(b"\n")  # JSON escapes newlines: two lines per document
        self.body = b"".join(lines[2 * k] + b"\n" + lines[2 * k + 1] + b"\n" for k in indexes)
        self.docs = len(indexes)


class ElasticsearchOutput(_HTTPOutput):
    content_type = "application/x-ndjson"
    flush_interval = 1.0
    max_write = 5 << 20
    own_options = ("insecure", "ca", "index", "daily", "data_stream", "auth", "gzip",
                   "batch_size", "filter_path")
    retry_4xx = (401, 403, 408, 429)

    def __init__(self, url: DrainURL, rt: Runtime) -> None:
        self.daily, self.data_stream, self.gzip, self.index, size = self._options(url)
        self.prefix, self.suffix = ("logs-", "-default") if self.data_stream else ("", "")
        if size:
            self.max_write = size
        super().__init__(url, rt)
        self.target += ("&" if "?" in self.target else "?") + "filter_path=" + _FILTER
        if self.gzip:
            self.headers["Content-Encoding"] = "gzip"

    @staticmethod
    def _options(url: DrainURL) -> tuple[bool, bool, bool, str, int]:
        """daily, data_stream, gzip, index and batch_size (0: the default) from
        the URL; ValueError names a bad one."""
        q = url.query
        daily = url.flag("daily")
        data_stream = url.flag("data_stream")
        gzip = url.flag("gzip")
        index = q.get("index", "")
        if index and _BAD_INDEX.search(index):
            raise ValueError(f"index={index!r} is not a valid Elasticsearch index name "
                             "(lower case, none of \\ / * ? \" < > | , # : or space, "
                             "not starting with - _ +)")
        if data_stream and daily:
            raise ValueError("daily=true does not apply to data_stream=true "
                             "(a data stream rolls over its own backing indices)")
        size = 0
        if "batch_size" in q:
            m = _SIZE.fullmatch(q["batch_size"])
            size = int(m.group(1)) << {"": 0, "k": 10, "m": 20}[m.group(2).lower()] if m else 0
            if not 64 << 10 <= size <= 100 << 20:
                raise ValueError(f"batch_size={q['batch_size']!r}: expected 64K to 100M bytes")
        return daily, data_stream, gzip, index, size

    @classmethod
    def check(cls, url: DrainURL, rt: Runtime) -> tuple[str, int, str]:
        """The options and the credentials, without a pool or a TLS context."""
        cls._options(url)
        cls.auth_headers(cls, url)
        if url.scheme in _TLS_SCHEMES:
            decode_ca(url)
        dest = super().check(url, rt)
        return dest[0], url.port or (443 if url.scheme in _TLS_SCHEMES else 80), "tcp"

    def uses_tls(self, scheme: str) -> bool:
        return scheme in _TLS_SCHEMES

    def path(self, path: str) -> str:
        path = path.rstrip("/")
        return path if path.endswith("/_bulk") or path == "_bulk" else path + "/_bulk"

    def auth_headers(self, url: DrainURL) -> dict[str, str]:
        mode = url.query.get("auth", "").lower()
        if mode not in ("", "basic", "bearer", "apikey"):
            raise ValueError("auth= must be basic, bearer or apikey")
        user = unquote(url.username) if url.username else ""
        password = unquote(url.password) if url.password is not None else None
        if not mode:
            if password is None:
                return {}  # as the original: credentials mean a password
            mode = "basic"
        if mode == "basic":
            if not user and not password:
                raise ValueError("auth=basic needs user:password@ in the URL")
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            return {"Authorization": "Basic " + token}
        if mode == "bearer":
            token = password or user  # the password is the token (a lone user is too)
            if not token:
                raise ValueError("auth=bearer needs the token as the URL's password")
            return {"Authorization": "Bearer " + token}
        if user and password:  # id:key, encoded as Elasticsearch's API keys are
            return {"Authorization": "ApiKey " + base64.b64encode(
                f"{user}:{password}".encode()).decode()}
        if not (user or password):
            raise ValueError("auth=apikey needs id:key@ (or the encoded key) in the URL")
        return {"Authorization": "ApiKey " + (password or user)}

    def encode(self, packets: list[Packet]) -> tuple[Bulk, int]:
        today = time.strftime("%Y.%m.%d", time.gmtime()) if self.daily else ""
        body = es_bulk(packets, self.index, self.prefix, self.suffix, self.daily, today)
        return Bulk(body, len(packets)), len(body)

    def deliver(self, pool: Any, items: list[Any]) -> None:
        live = [b for b in items if b.docs]
        if live:
            # the batches' bodies go out one after the other, not joined into
            # one more copy of the request (a megabyte or more per writer)
            chunks = [b.body for b in live]
            if self.gzip:
                z = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: gzip framing
                chunks = [z.compress(c) for c in chunks] + [z.flush()]
            headers = dict(self.headers, **{"Content-Length": str(sum(map(len, chunks)))})
            data = self.request(pool, chunks, headers).data
            if _NO_ERRORS.search(data, 0, 256):
                for b in live:
                    b.docs, b.body = 0, b""
            else:
                self._settle(live, data)
        dropped = sum(b.dropped for b in items)
        if dropped:
            sample = next(b.reason for b in items if b.dropped)
            raise Rejected(f"{dropped} documents refused by {self.url.safe}, e.g. {sample}",
                           packets=dropped, items={i for i, b in enumerate(items) if b.dropped})

    def _settle(self, live: list[Bulk], data: bytes) -> None:
        """Reads a bulk answer item by item: delivered (2xx, or 409 for a
        ``create`` of an id already there), to send again (429, 5xx), or
        dropped (another 4xx). Raises Busy when documents are to be sent again."""
        try:
            answer = json.loads(data)
            results = answer.get("items") if answer.get("errors") else None
        except (ValueError, AttributeError):
            raise Busy(f"unreadable bulk answer from {self.url.safe}") from None
        want = sum(b.docs for b in live)
        if results is None:
            if answer.get("errors") is False:
                for b in live:
                    b.docs, b.body = 0, b""
                return
            results = []
        if len(results) != want:
            # sending again is safe: the ids make a document already there a 409
            raise Busy(f"bulk answer from {self.url.safe} has {len(results)} items "
                       f"for {want} documents")
        pos = again = settled = 0
        for b in live:
            keep = []
            for k in range(b.docs):
                r = _result(results[pos + k])
                status = r.get("status")
                if not isinstance(status, int) or status == 429 or status >= 500:
                    keep.append(k)
                elif not (200 <= status < 300 or status == 409):
                    b.dropped += 1
                    err = r.get("error")
                    if isinstance(err, dict):
                        b.reason = f"{status} {err.get('type', '')}: {err.get('reason', '')}"
                    else:
                        b.reason = f"{status} {err or ''}".rstrip()
                    b.reason = b.reason[:300]  # a sample for the log, not the whole story
            pos += b.docs
            settled += b.docs - len(keep)
            if keep:
                b.keep(keep)
                again += len(keep)
            else:
                b.docs, b.body = 0, b""
        if again:
            raise Busy(f"{again} of {want} documents to be sent again (429/5xx items) "
                       f"to {self.url.safe}", progress=settled > 0)


def _result(item: Any) -> dict:
    """The result of one bulk item: ``{"create": {...}}``."""
    if isinstance(item, dict):
        for v in item.values():
            if isinstance(v, dict):
                return v
    return {}
