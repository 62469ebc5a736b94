"""A small local server speaking Elasticsearch's _bulk API, for the tests
(no Elasticsearch can be installed here).

What it implements, as the bulk API documentation describes it: POST
``/_bulk`` or ``/{index}/_bulk`` with an NDJSON body (``Content-Encoding:
gzip`` accepted) of action and document lines; ``create`` of an ``_id``
already in the index answers 409 (``version_conflict_engine_exception``) for
that item; an action line with an unknown parameter such as ``_source`` fails
the whole request with 400 (``illegal_argument_exception``); answers are
``{"took", "errors", "items": [{"create": {"_index", "_id", "status",
"error"?}}]}``, trimmed to errors and items' status and error when
``filter_path`` is given. 401 without the expected Authorization header.

``plan`` scripts the answers request by request (then everything is
"ok"): "ok"; an HTTP status (429, 503: nothing stored); "store+503" (stored,
then 503, as when an answer is lost); ("slow", seconds: stored, then
answered that much later). In every request
that reaches the bulk logic, ``item_status(doc, attempt)`` decides each
document's fate (default 201: stored; 429 or 5xx: refused for now; 400: a
mapping error), ``attempt`` being how many times its ``_id`` has arrived.
"""

from __future__ import annotations

import gzip
import json
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_ACTION_KEYS = {"_index", "_id", "routing", "pipeline", "require_alias", "dynamic_templates",
                "if_seq_no", "if_primary_term", "version", "version_type"}


class BulkServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, plan: list | None = None, tls: ssl.SSLContext | None = None,
                 auth: str | None = None,
                 item_status: Callable[[dict, int], int] | None = None, port: int = 0) -> None:
        self.plan = list(plan or [])
        self.auth = auth
        self.item_status = item_status
        self.lock = threading.Lock()
        self.indices: dict[str, dict[str, dict]] = {}
        self.seen: dict[str, int] = {}  # _id -> times it arrived
        self.requests: list[dict] = []
        self.conflicts = 0
        super().__init__(("127.0.0.1", port), _Handler)
        if tls:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def docs(self) -> list[tuple[str, str, dict]]:
        """Every stored document: (index, _id, source)."""
        with self.lock:
            return [(i, k, d) for i, docs in self.indices.items() for k, d in docs.items()]

    def messages(self) -> list[str]:
        return sorted(d["message"] for _, _, d in self.docs())

    def handle_error(self, request, client_address) -> None:
        pass  # a client that gave up on a slow answer: nothing to report

    def close(self) -> None:
        self.shutdown()
        self.server_close()

    # the bulk API itself: returns (status, answer)
    def bulk(self, path: str, body: bytes) -> tuple[int, dict]:
        url = urlsplit(path)
        parts = [p for p in url.path.split("/") if p]
        if not parts or parts[-1] != "_bulk" or len(parts) > 2:
            return 404, {"error": "no handler", "status": 404}
        default_index = parts[0] if len(parts) == 2 else None
        lines = body.decode("utf-8").split("\n")
        if lines[-1] != "":
            return 400, _error(400, "parse_exception", "The bulk request must be terminated "
                               "by a newline [\\n]")
        lines.pop()
        if len(lines) % 2:
            return 400, _error(400, "illegal_argument_exception", "missing document line")
        items, errors = [], False
        t0 = time.monotonic()
        for n in range(0, len(lines), 2):
            action = json.loads(lines[n])
            doc = json.loads(lines[n + 1])
            (op, meta), = action.items()
            unknown = set(meta) - _ACTION_KEYS
            if unknown:
                return 400, _error(400, "illegal_argument_exception",
                                   f"Action/metadata line [{n + 1}] contains an unknown "
                                   f"parameter [{sorted(unknown)[0]}]")
            index = meta.get("_index", default_index)
            ident = meta.get("_id")
            with self.lock:
                attempt = self.seen.get(ident, 0) + 1
                self.seen[ident] = attempt
                status = 201
                if self.item_status:
                    status = self.item_status(doc, attempt)
                if op != "create":
                    status = 400
                elif status == 201 and ident in self.indices.get(index, {}):
                    status = 409
                    self.conflicts += 1
                if status == 201:
                    self.indices.setdefault(index, {})[ident] = doc
            item = {"_index": index, "_id": ident, "status": status}
            if status >= 300:
                errors = True
                item["error"] = {409: {"type": "version_conflict_engine_exception",
                                       "reason": f"[{ident}]: version conflict, document "
                                                 "already exists"},
                                 400: {"type": "mapper_parsing_exception",
                                       "reason": "failed to parse field [message]"},
                                 429: {"type": "es_rejected_execution_exception",
                                       "reason": "rejected execution of coordinating operation"},
                                 }.get(status, {"type": "unavailable_shards_exception",
                                                "reason": "primary shard is not active"})
            items.append({op: item})
        answer = {"took": int((time.monotonic() - t0) * 1000), "errors": errors, "items": items}
        if "filter_path" in parse_qs(url.query):
            answer = {"errors": errors,
                      "items": [{op: {k: v for k, v in i.items() if k in ("status", "error")}
                                 for op, i in it.items()} for it in items]}
        return 200, answer


def _error(status: int, kind: str, reason: str) -> dict:
    return {"error": {"type": kind, "reason": reason}, "status": status}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802
        srv: BulkServer = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {k.lower(): v for k, v in self.headers.items()}
        if headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        with srv.lock:
            what = srv.plan.pop(0) if srv.plan else "ok"
            record = {"path": self.path, "headers": headers, "body": body, "plan": what,
                      "peer": self.client_address[1]}
            srv.requests.append(record)
        if srv.auth is not None and headers.get("authorization") != srv.auth:
            return self._answer(401, _error(401, "security_exception", "missing authentication"))
        if isinstance(what, int):
            return self._answer(what, _error(what, "es_rejected_execution_exception", "busy"))
        status, answer = srv.bulk(self.path, body)
        record["status"] = status
        if isinstance(what, tuple) and what[0] == "slow":
            time.sleep(what[1])  # stored, then answered late
        if what == "store+503":
            return self._answer(503, _error(503, "unavailable", "answer lost"))
        self._answer(status, answer)

    def _answer(self, status: int, answer: dict) -> None:
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass
