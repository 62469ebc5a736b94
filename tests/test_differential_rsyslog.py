"""Differential test, rsyslog as the oracle: the same messages go through the
agent and through rsyslog (configured as a relay, RFC5424 out) to the same
kind of receiver, and every field that arrives is compared one by one.

The corpus: RFC5424 with several SD elements, escapes and NILVALUEs, a BOM,
bytes that are not UTF-8, RFC5424's own examples, RFC3164, and what util-linux
logger and Python's logging.handlers.SysLogHandler send (captured from the real
clients first, then replayed byte for byte to both relays).
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import socket
import subprocess

import pytest
from peers import Agent, LineSink, Rsyslog, free_port

RFC5424 = [
    b'<13>1 2026-11-24T00:00:00Z host1 app 1234 ID47 [exampleSDID@32473 iut="3" eventSource="App"] hello',
    # RFC5424 section 6.5, examples 1 to 4
    b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
    b"\xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8",
    b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
    b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" '
    b'eventSource="Application" eventID="1011"] \xef\xbb\xbfAn application event log entry...',
    b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" '
    b'eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]',
    # escapes inside PARAM-VALUEs, several elements
    b'<14>1 2026-11-24T01:02:03.1+05:30 h2 esc 77 M1 [a@1 q="say \\"hi\\"" b="back\\\\slash" '
    b'c="br\\]acket"][b@2 x="1"][c@3] escaped',
    b"<14>1 2026-11-24T01:02:03.123456-07:00 - - - - - all NILVALUEs",
    b"<14>1 2026-11-24T01:02:03Z h3 bytes - - - not utf-8: \xff\xfe\xc0\xaf end",
    b"<191>1 2026-11-24T01:02:03Z h4 app - - [x@1 k=\"v\"]",
]
RFC3164 = [
    b"<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed for lonvick on /dev/pts/8",
    b"<13>Nov 24 01:02:03 host1 app: plain RFC3164",
]
FIELDS = ("pri", "timestamp", "hostname", "app", "procid", "msgid", "sd", "msg")
_LINE = re.compile(
    rb'<([0-9]{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) '
    rb'(-|(?:\[[^ \]"]+(?: [^ ="\]]+="(?:\\.|[^"\\])*")*\])+)(?: (.*))?', re.S)


def fields(line: bytes) -> dict[str, bytes]:
    """An RFC5424 line split by the RFC's grammar (not the agent's parser)."""
    m = _LINE.fullmatch(line)
    assert m, f"not RFC5424: {line!r}"
    return dict(zip(FIELDS, (g if g is not None else b"" for g in m.groups()), strict=True))


def capture_logger(args: list[str]) -> bytes:
    """What util-linux logger sends over TCP, byte for byte."""
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
        subprocess.run(["logger", "-T", "-n", "127.0.0.1", "-P", str(port), *args],
                       check=True, timeout=30)
        conn, _ = srv.accept()
        with conn:
            data = b""
            conn.settimeout(5)
            while chunk := conn.recv(65536):
                data += chunk
    return data.rstrip(b"\n")


def capture_syslog_handler() -> bytes:
    """What Python's SysLogHandler sends (UDP, its default), byte for byte."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        h = logging.handlers.SysLogHandler(address=rx.getsockname())
        h.ident = "pyapp: "
        log = logging.Logger("differential")
        log.addHandler(h)
        log.warning("hello from SysLogHandler")
        h.close()
        rx.settimeout(5)
        return rx.recv(65536)


@pytest.fixture
def corpus() -> tuple[list[bytes], list[bytes]]:
    tcp = RFC5424 + RFC3164 + [
        capture_logger(["--rfc5424", "-t", "lgr", "--id=4242", "--sd-id", "zoo@123",
                        "--sd-param", 'tiger="hungry"', "logger RFC5424"]),
        capture_logger(["--rfc5424=notq,notime", "-t", "lgr", "logger without time"]),
        capture_logger(["--rfc3164", "-t", "lgr", "--id=4243", "logger RFC3164"]),
    ]
    return tcp, [capture_syslog_handler()]


def relay_through(tmp_path, kind: str, tcp: list[bytes], udp: list[bytes]) -> list[dict]:
    sink = LineSink()
    if kind == "agent":
        tcp_port, udp_port = free_port(), free_port()
        relay = Agent(tmp_path / "agent", {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(tcp_port),
                                           "SYSLOG_UDP": "true", "SYSLOG_UDP_PORT": str(udp_port)},
                      f"*  syslog+tcp://127.0.0.1:{sink.port}\n").start()
    else:
        relay = Rsyslog(tmp_path / "rsyslog", forward_to=sink.port).start()
        tcp_port, udp_port = relay.tcp_port, relay.udp_port
    try:
        # one message at a time, so that what arrives lines up with what was sent
        with socket.create_connection(("127.0.0.1", tcp_port)) as s:
            for i, m in enumerate(tcp):
                s.sendall(m + b"\n")
                sink.wait_lines(i + 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i, m in enumerate(udp):
                s.sendto(m, ("127.0.0.1", udp_port))
                sink.wait_lines(len(tcp) + i + 1)
        return [fields(x) for x in sink.lines()]
    finally:
        relay.stop()
        sink.close()


STAMP = re.compile(rb"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2})")


def where_we_differ(sent: bytes, ours: dict, theirs: dict) -> dict[str, str]:
    """The fields in which the agent differs from rsyslog on purpose, checked
    to differ exactly so, with the reason."""
    why = {}
    if not sent[sent.index(b">") + 1:].startswith(b"1 "):  # RFC3164
        # rsyslog keeps the space after "TAG:" in MSG; the agent, like syslog-ng
        # and the original logtrain, reads it as the separator
        assert theirs["msg"] == b" " + ours["msg"]
        why["msg"] = "RFC3164 separator after TAG: not part of MSG"
        if STAMP.fullmatch(theirs["timestamp"]) and b"SysLogHandler" not in sent:
            # the same instant; rsyslog writes the local zone's offset, the
            # agent UTC with Z, the one form of every time it writes itself
            from datetime import datetime

            assert ours["timestamp"].endswith(b"Z")
            assert (datetime.fromisoformat(ours["timestamp"].decode())
                    == datetime.fromisoformat(theirs["timestamp"].decode()))
            why["timestamp"] = "RFC3164 stamp written in UTC with Z"
    if b"logger without time" in sent:
        # RFC5424 NILVALUE timestamp: rsyslog writes its reception time, the
        # agent what the sender wrote
        assert ours["timestamp"] == b"-" and STAMP.fullmatch(theirs["timestamp"])
        why["timestamp"] = "NILVALUE kept"
    if b"SysLogHandler" in sent:
        # no timestamp and no HOSTNAME at all: both write their reception time
        # (in their own form); rsyslog puts the sender's resolved name as
        # HOSTNAME, the agent leaves it NILVALUE (it never looks names up)
        assert STAMP.fullmatch(ours["timestamp"]) and STAMP.fullmatch(theirs["timestamp"])
        assert ours["hostname"] == b"-" and theirs["hostname"] == b"localhost"
        why["timestamp"] = why["hostname"] = "filled in by the relay"
    return why


def test_fields_match_rsyslog(tmp_path, corpus):
    tcp, udp = corpus
    ours = relay_through(tmp_path, "agent", tcp, udp)
    theirs = relay_through(tmp_path, "rsyslog", tcp, udp)
    assert len(ours) == len(theirs) == len(tcp) + len(udp)
    compared = 0
    for sent, a, b in zip(tcp + udp, ours, theirs, strict=True):
        on_purpose = where_we_differ(sent, a, b)
        for f in FIELDS:
            if f not in on_purpose:
                assert a[f] == b[f], (sent, f, a[f], b[f])
                compared += 1
    assert compared > 100
    # and what the issue names, seen at the receiver
    first = ours[0]
    assert (first["procid"], first["msgid"], first["sd"]) == (
        b"1234", b"ID47", b'[exampleSDID@32473 iut="3" eventSource="App"]')
