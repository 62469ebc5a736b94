"""The agent as a relay keeps what the sender wrote: real sockets in, a syslog
TCP drain and an HTTP JSON drain out, the events input in."""

from __future__ import annotations

import json
import socket

from peers import Agent, LineSink, free_port, wait_for
from test_http_io import Recorder

ISSUE = (b'<13>1 2026-11-24T00:00:00Z host1 app 1234 ID47 '
         b'[exampleSDID@32473 iut="3" eventSource="App"] hello')
BOM = b'<14>1 2026-11-24T00:00:00.123456+05:30 host1 app - - [a@1 q="\\"\\\\\\]"] \xef\xbb\xbfcaf\xc3\xa9'
MSG_ANY = b"<14>1 2026-11-24T00:00:00Z host1 app - - - bytes \xff\xfe\x00 end"
SU = b"<34>Nov 24 22:14:15 host1 su[123]: 'su root' failed"


def start(tmp_path, routes: str) -> Agent:
    port = free_port()
    a = Agent(tmp_path / "agent", {"SYSLOG_TCP": "true", "SYSLOG_TCP_PORT": str(port),
                                   "HTTP_EVENTS": "true"}, routes).start()
    a.tcp = port
    return a


def test_syslog_and_json_drains_get_every_header_field(tmp_path):
    sink, srv = LineSink(), Recorder()
    a = start(tmp_path, f"host1  syslog+tcp://127.0.0.1:{sink.port}\n"
                        f"host1  http://127.0.0.1:{srv.port}/drain\n")
    try:
        with socket.create_connection(("127.0.0.1", a.tcp)) as s:
            # octet-counted, as a relay such as rsyslog forwards: the frames
            # carry bytes newline framing could not
            s.sendall(b"".join(b"%d %s" % (len(f), f) for f in (ISSUE, BOM, MSG_ANY, SU)))
        lines = sink.wait_lines(4)
        wait_for(lambda: len(srv.requests) == 4, 10, what="4 posts")
    finally:
        a.stop()
        sink.close()
    assert lines[:3] == [ISSUE, BOM, MSG_ANY]  # byte for byte
    assert lines[3].split(b" ")[2:7] == [b"host1", b"su", b"123", b"-", b"-"]
    assert lines[3].endswith(b" - - 'su root' failed")
    docs = sorted((json.loads(r["body"]) for r in srv.requests), key=lambda d: d["time"])
    by_msg = {d["message"]: d for d in docs}
    issue = by_msg["hello"]
    assert (issue["procid"], issue["msgid"], issue["structured_data"]) == (
        "1234", "ID47", '[exampleSDID@32473 iut="3" eventSource="App"]')
    assert by_msg["caf\u00e9"]["structured_data"] == '[a@1 q="\\"\\\\\\]"]'
    assert by_msg["caf\u00e9"]["time"] == "2026-11-24T00:00:00.123456+05:30"
    # bytes that are not UTF-8: \udcXX escapes, one per byte; the NUL as \u0000
    raw = next(r["body"] for r in srv.requests if b"bytes" in r["body"])
    assert b'"message":"bytes \\udcff\\udcfe\\u0000 end"' in raw
    assert "procid" not in by_msg["bytes \udcff\udcfe\x00 end"]
    assert by_msg["'su root' failed"]["procid"] == "123"


def test_events_input_fields_reach_a_syslog_drain(tmp_path):
    sink = LineSink()
    a = start(tmp_path, f"*  syslog+tcp://127.0.0.1:{sink.port}\n")
    try:
        ev = {"hostname": "h1", "tag": "t1", "message": "m", "time": "2026-11-24T01:02:03.4Z",
              "procid": "99", "msgid": "LOGIN", "structured_data": '[a@1 x="y\\]"][b@2]'}
        status, _, body = a.post("/events", json.dumps(ev).encode())
        assert status == 200 and json.loads(body)["accepted"] == 1
        bad = dict(ev, structured_data="[not closed")
        status, _, body = a.post("/events", json.dumps(bad).encode())
        assert json.loads(body)["accepted"] == 0
        lines = sink.wait_lines(1)
    finally:
        a.stop()
        sink.close()
    assert lines == [b'<0>1 2026-11-24T01:02:03.4Z h1 t1 99 LOGIN [a@1 x="y\\]"][b@2] m']
