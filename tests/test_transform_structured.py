"""Structured (JSON) container lines, as pino and structlog write them
(tests/data/structured, made by generate.sh; structlog also live): severity
from their level, message kept or extracted, and the Elasticsearch document
fields, through the real agent tailing container logs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from peers import wait_for
from test_kubernetes_files import Pod, k8s_agent

from logtrain.packet import Packet
from logtrain.tail import CRIParser, DockerParser
from logtrain.transform.structured import Structured, es_fields, es_fields_batch, severity_of

DATA = Path(__file__).resolve().parent / "data" / "structured"
TS = "2026-11-25T07:00:00.000000001Z"


def lines(name: str) -> list[str]:
    return (DATA / f"{name}.txt").read_text().splitlines()


def cri(msgs: list[str], stream: str = "stdout") -> bytes:
    return "".join(f"{TS} {stream} F {m}\n" for m in msgs).encode()


def docker(msgs: list[str]) -> bytes:
    return "".join(json.dumps({"log": m + "\n", "stream": "stdout", "time": TS}) + "\n"
                   for m in msgs).encode()


def parsed(data: bytes, parser=CRIParser) -> list[Packet]:
    packets, bad = parser("web.shop", "web-1").parse_batch(data.split(b"\n")[:-1])
    assert bad == 0
    return packets


def test_severity_from_real_loggers_and_lines_kept():
    text = lines("pino") + lines("structlog") + ["plain line", "{not json", "[1, 2]", "{}",
                                                 '{"level": "loud", "msg": "x"}']
    packets = parsed(cri(text))
    raws = [p.raw for p in packets]
    Structured(extract_message=False).apply(packets)
    # pino 30 info, 40 warn, 50 error, 60 fatal; structlog info, warning, error
    assert [p.severity for p in packets] == [6, 4, 3, 2, 6, 4, 3, 6, 6, 6, 6, 6]
    assert [p.message for p in packets] == text  # other drains get the line as it was
    assert packets[0].raw is raws[0]  # unchanged severity: the frame is kept
    assert packets[1].raw.startswith(b"<12>1 ")  # only its PRI rewritten
    assert packets[1].raw[packets[1].msg_at:] == text[1].encode()


def test_message_extracted_when_configured():
    packets = parsed(docker(lines("pino")[:2] + lines("structlog")[:1]), DockerParser)
    Structured(extract_message=True).apply(packets)
    assert [p.message for p in packets] == ["server listening", "slow start", "user logged in"]


def test_level_spellings():
    for obj, sev in (({"level": "WARN"}, 4), ({"severity": "critical"}, 2), ({"level": 7}, 7),
                     ({"levelname": "ERROR"}, 3), ({"lvl": "dbug"}, None), ({"level": "3"}, 3),
                     ({"level": 20}, 7), ({"level": True}, None), ({}, None)):
        assert severity_of(obj) == sev, obj


@pytest.mark.parametrize("key", ["", "fields"])
def test_elasticsearch_document_fields(key):
    packets = parsed(cri(lines("pino")[1:2] + ["plain"]))
    extra = es_fields_batch(packets, key)
    assert extra[1] == {}
    one = es_fields(packets[0], key)
    assert one == extra[0]
    obj = json.loads(lines("pino")[1])
    if key:
        assert one == {key: obj} and one[key]["port"] == 8080
    else:
        # merged: the object's fields less those the document has of its own
        # (pino's "hostname" and "time" stay the packet's)
        assert one == {k: v for k, v in obj.items() if k != "hostname"}
        assert one["port"] == 8080 and one["msg"] == "slow start" and one["time"] == obj["time"]


def test_live_structlog_lines():
    structlog = pytest.importorskip("structlog")
    import io

    buf = io.StringIO()
    structlog.configure(processors=[structlog.processors.add_log_level,
                                    structlog.processors.JSONRenderer()],
                        logger_factory=structlog.PrintLoggerFactory(buf))
    log = structlog.get_logger()
    log.critical("reactor overheating", temp=900)
    log.debug("tick")
    packets = parsed(cri(buf.getvalue().splitlines()))
    Structured(extract_message=True).apply(packets)
    assert [(p.severity, p.message) for p in packets] == [(2, "reactor overheating"), (7, "tick")]
    structlog.reset_defaults()


def test_agent_takes_severity_from_json_container_lines(tmp_path):
    root = tmp_path / "logs"
    pod = Pod(root, "web-7d9f8c6b5-abc12")
    a, out = k8s_agent(tmp_path)
    a.start()
    try:
        text = lines("pino") + ["not json"]
        pod.log.write_bytes(cri(text))
        wait_for(lambda: out.exists() and len(out.read_text().splitlines()) == 5, 10,
                 what="5 lines")
        got = out.read_text().splitlines()
        # facility user (1): PRI 8 + severity
        assert [g.split(">", 1)[0] for g in got] == ["<14", "<12", "<11", "<10", "<14"]
        assert [g.split(" - - - ", 1)[1] for g in got] == text
    finally:
        a.stop()
    time.sleep(0.1)


def test_hostile_json_lines_change_nothing():
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    junk = ["{", '{"level": ["err"]}', '{"level": {"x": 1}, "msg": 5}', deep,
            '{"level":"error"' + " " * 60_000, '{"level": 1e999}']
    packets = parsed(cri(junk) + b"2026-11-25T07:00:00.000000001Z stdout F {\xff\xfe}\n")
    Structured(extract_message=True).apply(packets)
    assert [p.severity for p in packets] == [6] * (len(junk) + 1)
    assert [p.message for p in packets][:4] == junk[:4]
