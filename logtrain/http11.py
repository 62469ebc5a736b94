"""HTTP/1.1 request parsing (RFC 9112): the grammar written once as data, and
readers that take a buffer and return an event or None ("need more").

No sockets here: ``httpserver`` owns the connections and feeds these readers
what it received. A malformed request raises ``HTTPError`` carrying the status
to answer and a short reason name (used as a metric label). The shape follows
h11's ``_abnf`` and ``_readers``; strictness is the point, since the agent may
sit behind a proxy that frames requests differently from a lenient server
(request smuggling): exact token names, no NUL or bare CR in values, hex-only
bounded chunk sizes, HTTP/1.0 and 1.1 only, chunked bodies on 1.1 only.
"""

from __future__ import annotations

import re

# ----------------------------------------------------------------------------- grammar
# RFC 9110 5.6.2 token; 5.5 field-value (HTAB, SP, VCHAR, obs-text: no NUL,
# no CR, no other control); RFC 9112 3 request-line, 2.3 HTTP-version, 7.1 chunk.
TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
OWS = rb"[ \t]*"
FIELD_VALUE = rb"[\t\x20-\x7e\x80-\xff]*"
QUOTED_STRING = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
REQUEST_TARGET = rb"[\x21-\x7e]+"  # VCHAR: no space, no control
HTTP_VERSION = rb"HTTP/(?P<major>[0-9])\.(?P<minor>[0-9])"
CHUNK_SIZE = rb"[0-9A-Fa-f]{1,16}"
CHUNK_EXT = (rb"(?:" + OWS + rb";" + OWS + TOKEN
             + rb"(?:" + OWS + rb"=" + OWS + rb"(?:" + TOKEN + rb"|" + QUOTED_STRING + rb"))?)*")

REQUEST_LINE = re.compile(rb"(?P<method>" + TOKEN + rb") (?P<target>" + REQUEST_TARGET + rb") "
                          + HTTP_VERSION)
HEADER_FIELD = re.compile(rb"(?P<name>" + TOKEN + rb"):" + OWS + rb"(?P<value>" + FIELD_VALUE + rb")")
CHUNK_HEADER = re.compile(rb"(?P<size>" + CHUNK_SIZE + rb")" + CHUNK_EXT + rb"\r\n")
CONTENT_LENGTH = re.compile(rb"[0-9]{1,15}")  # ASCII digits only, bounded
HEAD_END = re.compile(rb"\n\r?\n")

MAX_LINE = 8192  # the request line, each header line, each chunk-size line
MAX_FIELDS = 100  # header fields, and trailer fields
MAX_EMPTY_LINES = 4  # stray line endings accepted before a request line


class HTTPError(Exception):
    """A request the server must refuse: ``status`` to answer, ``reason`` a
    short name for metrics, the message for the client and the log."""

    def __init__(self, status: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def _bad(reason: str, message: str) -> HTTPError:
    return HTTPError("400 Bad Request", reason, message)


def _too_large(reason: str, message: str) -> HTTPError:
    return HTTPError("431 Request Header Fields Too Large", reason, message)


class Request:
    """A request head, and how its body is framed."""

    __slots__ = ("method", "target", "version", "headers", "length", "chunked", "keep_alive",
                 "expect_continue")

    def __init__(self, method: str, target: str, version: str,
                 headers: list[tuple[str, str]]) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # (lower-cased name, value), in order
        self.length = 0  # body bytes when not chunked
        self.chunked = False
        self.keep_alive = True
        self.expect_continue = False

    def values(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n == name]


def _fields(lines: list[bytes], max_fields: int) -> list[tuple[str, str]]:
    """Header (or trailer) field lines, each already without its line ending."""
    if len(lines) > max_fields:
        raise _too_large("too_many_headers", f"more than {max_fields} header fields")
    out = []
    for line in lines:
        if len(line) > MAX_LINE:
            raise _too_large("header_too_large", f"a header line over {MAX_LINE} bytes")
        m = HEADER_FIELD.fullmatch(line)
        if m is None:
            if line[:1] in (b" ", b"\t"):
                raise _bad("bad_header", "folded header lines are not allowed")
            raise _bad("bad_header", "malformed header field")
        out.append((m["name"].decode("ascii").lower(), m["value"].rstrip(b" \t").decode("latin-1")))
    return out


def _lines(head: bytes) -> list[bytes]:
    lines = head.split(b"\n")
    return [x[:-1] if x.endswith(b"\r") else x for x in lines]


class HeadReader:
    """Reads one request head (request line and header fields) from a buffer.

    ``read(buf, pos)`` returns ``(Request, end)`` once the head is complete, or
    None when more bytes are needed; the reader remembers how far it searched,
    so a head arriving a byte at a time is scanned once. A few empty lines
    before the request line are skipped (RFC 9112 2.2). Lines may end in CRLF or LF; a CR
    anywhere else is refused with the field value.
    """

    __slots__ = ("max_head", "searched")

    def __init__(self, max_head: int) -> None:
        self.max_head = max_head
        self.searched = 0

    def read(self, buf: bytearray, pos: int) -> tuple[Request, int] | None:
        start = pos
        for _ in range(MAX_EMPTY_LINES):
            if buf[pos:pos + 2] == b"\r\n":
                pos += 2
            elif buf[pos:pos + 1] == b"\n":
                pos += 1
            else:
                break
        else:
            if buf[pos:pos + 1] in (b"\r", b"\n"):
                raise _bad("bad_request_line", "too many empty lines before a request")
        if pos == len(buf) or (len(buf) - pos == 1 and buf[pos] == 13):
            return None
        m = HEAD_END.search(buf, pos + max(0, self.searched - 2), pos + self.max_head + 3)
        if m is None:
            self.searched = len(buf) - pos
            if len(buf) - start > self.max_head:
                raise _too_large("header_too_large", f"request head over {self.max_head} bytes")
            last = buf.rfind(b"\n", pos)
            if len(buf) - (last + 1 if last >= 0 else pos) > MAX_LINE:
                raise _too_large("header_too_large", f"a request or header line over {MAX_LINE} bytes")
            if buf.count(b"\n", pos) > MAX_FIELDS + 1:
                raise _too_large("too_many_headers", f"more than {MAX_FIELDS} header fields")
            return None
        self.searched = 0
        end = m.end()
        lines = _lines(bytes(buf[pos:m.start()]))
        request_line = lines[0]
        if len(request_line) > MAX_LINE:
            raise _too_large("header_too_large", f"request line over {MAX_LINE} bytes")
        r = REQUEST_LINE.fullmatch(request_line)
        if r is None:
            raise _bad("bad_request_line", "malformed request line")
        if (r["major"], r["minor"]) not in ((b"1", b"0"), (b"1", b"1")):
            raise HTTPError("505 HTTP Version Not Supported", "bad_version",
                            "HTTP/1.0 and HTTP/1.1 only")
        version = "HTTP/1." + r["minor"].decode()
        req = Request(r["method"].decode("ascii"), r["target"].decode("ascii"), version,
                      _fields(lines[1:], MAX_FIELDS))
        _framing(req)
        return req, end


def _framing(req: Request) -> None:
    """How the body is delimited (RFC 9112 6.3), refusing anything that could
    be read two ways; and the connection options."""
    te = [t.strip().lower() for v in req.values("transfer-encoding") for t in v.split(",")]
    lengths = req.values("content-length")
    if te:
        if lengths:
            raise _bad("bad_framing", "both Content-Length and Transfer-Encoding")
        if te != ["chunked"]:
            raise _bad("bad_transfer_encoding", "only Transfer-Encoding: chunked is supported")
        if req.version != "HTTP/1.1":
            raise _bad("bad_transfer_encoding", "chunked bodies need HTTP/1.1")
        req.chunked = True
    elif lengths:
        for v in lengths:
            if not CONTENT_LENGTH.fullmatch(v.encode("latin-1")):
                raise _bad("bad_content_length", "Content-Length must be a number")
        if len(set(lengths)) > 1:
            raise _bad("bad_content_length", "conflicting Content-Length headers")
        req.length = int(lengths[0])
    options = {t.strip().lower() for v in req.values("connection") for t in v.split(",")}
    if req.version == "HTTP/1.1":
        req.keep_alive = "close" not in options
    else:
        req.keep_alive = "keep-alive" in options
    expect = req.values("expect")
    req.expect_continue = bool(expect) and expect[-1].lower() == "100-continue"


class ChunkedReader:
    """Decodes a chunked body (RFC 9112 7.1) from a buffer.

    ``read(buf, pos, end)`` decodes what ``buf[pos:end]`` completes and returns
    the data and the position up to which it consumed (chunk-size lines,
    extensions and CRLFs included: the caller counts those wire bytes against
    its limit). ``done`` turns true after the last chunk and the trailer
    section, which is checked like a head and then discarded.
    """

    __slots__ = ("left", "state", "done", "searched", "max_trailer")

    SIZE, DATA, CRLF, TRAILER = range(4)

    def __init__(self, max_trailer: int) -> None:
        self.left = 0
        self.state = self.SIZE
        self.done = False
        self.max_trailer = max_trailer
        self.searched = 0

    def read(self, buf: bytearray, pos: int, end: int) -> tuple[bytes, int]:
        parts: list[bytes] = []
        while pos < end and not self.done:
            if self.state == self.DATA:
                n = min(self.left, end - pos)
                parts.append(bytes(buf[pos:pos + n]))
                pos += n
                self.left -= n
                if not self.left:
                    self.state = self.CRLF
            elif self.state == self.CRLF:
                if end - pos < 2:
                    break
                if buf[pos:pos + 2] != b"\r\n":
                    raise _bad("bad_chunk", "chunk data not followed by CRLF")
                pos += 2
                self.state = self.SIZE
            elif self.state == self.SIZE:
                m = CHUNK_HEADER.match(buf, pos, min(end, pos + MAX_LINE))
                if m is None:
                    nl = buf.find(b"\n", pos, min(end, pos + MAX_LINE))
                    if nl >= 0 or end - pos >= MAX_LINE:
                        raise _bad("bad_chunk", "malformed chunk-size line")
                    break
                pos = m.end()
                self.left = int(m["size"], 16)
                if self.left:
                    self.state = self.DATA
                else:
                    self.state = self.TRAILER
            else:
                blank = 2 if buf[pos:pos + 2] == b"\r\n" else 1 if buf[pos:pos + 1] == b"\n" else 0
                if blank:  # no trailer fields
                    pos += blank
                    self.done = True
                    break
                # trailer fields: checked like header fields, then discarded
                got = self._trailers(buf, pos, end)
                if got is None:
                    break
                pos = got
                self.done = True
        return b"".join(parts), pos

    def _trailers(self, buf: bytearray, pos: int, end: int) -> int | None:
        m = HEAD_END.search(buf, max(pos, self.searched - 2), min(end, pos + self.max_trailer + 3))
        if m is None:
            self.searched = end
            if end - pos > self.max_trailer:
                raise _too_large("header_too_large", f"trailer section over {self.max_trailer} bytes")
            if buf.count(b"\n", pos, end) > MAX_FIELDS:
                raise _too_large("too_many_headers", f"more than {MAX_FIELDS} trailer fields")
            last = buf.rfind(b"\n", pos, end)
            if end - (last + 1 if last >= 0 else pos) > MAX_LINE:
                raise _too_large("header_too_large", f"a trailer line over {MAX_LINE} bytes")
            return None
        _fields(_lines(bytes(buf[pos:m.start()])), MAX_FIELDS)
        return m.end()
