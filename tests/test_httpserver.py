"""The agent's own HTTP/1.1 server, spoken to byte by byte over a raw socket:
keep-alive, chunked bodies, Expect: 100-continue, and malformed requests."""

from __future__ import annotations

import json
import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from peers import Agent, wait_for

EVENT = b'{"hostname":"web-1","tag":"api","message":"%s"}'


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    d = tmp_path_factory.mktemp("httpserver")
    out = d / "out.log"
    a = Agent(d / "agent", {"HTTP_EVENTS": "true", "HTTP_SYSLOG": "true", "IDLE_TIMEOUT": "2",
                            "HTTP_MAX_BODY": "4096"},
              routes=f"* file://{out}\n").start()
    a.out = out
    yield a
    a.stop()


def connect(agent: Agent) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", agent.http_port), timeout=5)
    return s


def read_response(s: socket.socket, buf: bytearray) -> tuple[int, dict, bytes]:
    """One response from ``s`` (what is left over stays in ``buf``)."""
    while b"\r\n\r\n" not in buf:
        data = s.recv(65536)
        if not data:
            raise ConnectionError("closed before a response")
        buf += data
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    n = int(headers.get("content-length", 0))
    while len(rest) < n:
        data = s.recv(65536)
        if not data:
            raise ConnectionError("closed in the body")
        rest += data
    buf[:] = rest[n:]
    return status, headers, rest[:n]


def delivered(agent: Agent, mark: str) -> bool:
    return agent.out.exists() and mark in agent.out.read_text()


def test_keep_alive_serves_many_requests_on_one_connection(agent):
    s, buf = connect(agent), bytearray()
    for i in range(5):
        body = EVENT % f"keep-{i}".encode()
        s.sendall(b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(body), body))
        status, headers, resp = read_response(s, buf)
        assert status == 200 and json.loads(resp)["accepted"] == 1
        assert headers["connection"] == "keep-alive"
    # pipelined: two requests in one write
    s.sendall(b"GET /health HTTP/1.1\r\n\r\nGET /health HTTP/1.1\r\n\r\n")
    assert read_response(s, buf)[2] == b"ok\n" and read_response(s, buf)[2] == b"ok\n"
    s.close()
    wait_for(lambda: delivered(agent, "keep-4"), 5)


def test_chunked_body(agent):
    s, buf = connect(agent), bytearray()
    body = b"<14>1 2026-11-24T00:00:00Z web-1 api - - - chunked-one\n" \
           b"<14>1 2026-11-24T00:00:00Z web-1 api - - - chunked-two\n"
    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
                      for i in range(0, len(body), 7))
    s.sendall(b"POST /syslog HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
              + b"0\r\nX-Trailer: y\r\n\r\n")
    status, _, resp = read_response(s, buf)
    assert status == 200 and json.loads(resp)["accepted"] == 2
    s.sendall(b"GET /health HTTP/1.1\r\n\r\n")  # still usable afterwards
    assert read_response(s, buf)[0] == 200
    s.close()
    wait_for(lambda: delivered(agent, "chunked-two"), 5)


def test_chunked_body_over_the_limit_is_refused(agent):
    s, buf = connect(agent), bytearray()
    s.sendall(b"POST /events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
              + b"1000\r\n" + b"x" * 4096 + b"\r\n" + b"1000\r\n" + b"x" * 4096 + b"\r\n0\r\n\r\n")
    status, headers, _ = read_response(s, buf)
    assert status == 413 and headers["connection"] == "close"
    s.close()


def test_expect_100_continue(agent):
    s, buf = connect(agent), bytearray()
    body = EVENT % b"after-continue"
    s.sendall(b"POST /events HTTP/1.1\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n"
              % len(body))
    status, _, _ = read_response(s, buf)
    assert status == 100  # only now does the client send the body
    s.sendall(body)
    status, _, resp = read_response(s, buf)
    assert status == 200 and json.loads(resp)["accepted"] == 1
    # a body over the limit is refused without the 100: the client never sends it
    s.sendall(b"POST /events HTTP/1.1\r\nContent-Length: 99999\r\nExpect: 100-continue\r\n\r\n")
    status, headers, _ = read_response(s, buf)
    assert status == 413 and headers["connection"] == "close"
    s.close()


@pytest.mark.parametrize("request_bytes, status", [
    (b"NONSENSE\r\n\r\n", 400),
    (b"GET /health HTTP/2.0\r\n\r\n", 505),
    (b"GET /health HTTP/1.1\r\nno colon here\r\n\r\n", 400),
    (b"GET /health HTTP/1.1\r\n folded: header\r\n\r\n", 400),
    (b"POST /events HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST /events HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    (b"POST /events HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST /events HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
    (b"POST /events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n", 431),
    (b"GET /health HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", 431),
])
def test_malformed_requests_get_an_error_and_a_closed_connection(agent, request_bytes, status):
    s, buf = connect(agent), bytearray()
    s.sendall(request_bytes)
    got, headers, _ = read_response(s, buf)
    assert got == status and headers["connection"] == "close"
    assert s.recv(10) == b""  # closed
    s.close()
    assert agent.healthy()


def test_http_10_closes_and_idle_connections_time_out(agent):
    s, buf = connect(agent), bytearray()
    s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
    status, headers, _ = read_response(s, buf)
    assert status == 200 and headers["connection"] == "close"
    s.close()
    idle = connect(agent)
    start = time.monotonic()
    assert idle.recv(10) == b""  # IDLE_TIMEOUT=2 closes a silent client
    assert 1.5 < time.monotonic() - start < 6
    idle.close()


def test_path_is_percent_decoded_and_unknown_paths_are_404(agent):
    s, buf = connect(agent), bytearray()
    s.sendall(b"GET /heal%74h?x=1 HTTP/1.1\r\n\r\n")
    assert read_response(s, buf)[:1] == (200,)
    s.sendall(b"GET /nope HTTP/1.1\r\n\r\n")
    assert read_response(s, buf)[0] == 404
    s.sendall(b"DELETE /events HTTP/1.1\r\n\r\n")
    status, headers, _ = read_response(s, buf)
    assert status == 405 and headers["allow"] == "POST"
    s.close()


request_parts = st.one_of(
    st.sampled_from([b"GET ", b"POST ", b"/events", b"/health", b" HTTP/1.1", b" HTTP/1.0",
                     b"\r\n", b"\n", b"Content-Length: 5", b"Content-Length: 99999999999",
                     b"Transfer-Encoding: chunked", b"Expect: 100-continue", b"5\r\nhello\r\n",
                     b"0\r\n\r\n", b"ffffffffffffffff\r\n", b": ", b"Connection: close", b"\x00"]),
    st.binary(max_size=40),
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(request_parts, max_size=30))
def test_any_bytes_get_an_answer_or_a_close_and_the_server_lives_on(agent, parts):
    s = connect(agent)
    s.settimeout(3)
    try:
        s.sendall(b"".join(parts))
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):  # until the server closes: it must not hang on us
            pass
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        s.close()
    assert agent.healthy()
