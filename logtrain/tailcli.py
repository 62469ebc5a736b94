"""``logtrain tail HOSTNAME... [--url URL] [--token TOKEN] [--json]``: prints an
agent's live tail of those hostnames (globs allowed), like ``kubectl logs -f``.

A client of GET /tail (logtrain/livetail.py) written with the standard
library's http.client, without gevent: it is a short-lived command, not the
agent. When the agent goes away (a restart, a rollout) it says so on stderr
and connects again, backing off up to a few seconds; lines routed while it
was disconnected are not replayed. A refused token or a bad glob ends it
(exit 2); too many tails (429) is retried.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from urllib.parse import urlencode, urlsplit

BACKOFF_MAX = 5.0


class Fatal(Exception):
    """The agent refused the request for a reason retrying will not change."""


def _open(url: str, hostnames: list[str], token: str, json_lines: bool, timeout: float):
    import http.client

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Fatal(f"--url must be http://HOST:PORT or https://HOST:PORT, got {url!r}")
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname, parts.port, timeout=timeout)
    headers = {"Accept": "application/x-ndjson" if json_lines else "text/plain"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    path = parts.path.rstrip("/") + "/tail?" + urlencode([("hostname", h) for h in hostnames])
    conn.request("GET", path, headers=headers)
    sock = conn.sock  # http.client lets go of it when the answer says Connection: close
    resp = conn.getresponse()
    if resp.status != 200:
        body = resp.read(4096).decode("utf-8", "replace").strip()
        conn.close()
        if resp.status in (429, 502, 503, 504):
            raise OSError(f"HTTP {resp.status}: {body}")
        raise Fatal(f"HTTP {resp.status}: {body}")
    import socket

    sock.settimeout(None)  # a quiet hostname is not a dead agent; a dead node is
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)  # found by keepalives
    return conn, resp


def follow(url: str, hostnames: list[str], token: str = "", json_lines: bool = False,
           out=None, err=None) -> int:
    """Prints the tail until interrupted; returns the exit status."""
    out = out or sys.stdout.buffer
    err = err or sys.stderr
    delay = 0.2
    connected_once = False
    while True:
        try:
            conn, resp = _open(url, hostnames, token, json_lines, timeout=10)
        except Fatal as e:
            print(f"logtrain tail: {e}", file=err, flush=True)
            return 2
        except OSError as e:
            print(f"logtrain tail: cannot reach {url} ({e}); retrying in {delay:.1f} s",
                  file=err, flush=True)
            time.sleep(delay)
            delay = min(BACKOFF_MAX, delay * 2)
            continue
        if connected_once:
            print("logtrain tail: reconnected", file=err, flush=True)
        connected_once = True
        delay = 0.2
        try:
            while True:
                data = resp.read1(65536)
                if not data:
                    break
                out.write(data)
                out.flush()
        except BrokenPipeError:
            raise  # the reader of our output is gone (| head): done
        except (OSError, ValueError) as e:
            print(f"logtrain tail: connection lost ({e})", file=err, flush=True)
        else:
            print("logtrain tail: the agent closed the tail (restarting?); reconnecting",
                  file=err, flush=True)
        finally:
            resp.close()
            conn.close()
        time.sleep(delay)


def main(argv: list[str]) -> int:
    port = os.environ.get("HTTP_PORT", "9000")
    ap = argparse.ArgumentParser(
        prog="logtrain tail",
        formatter_class=lambda prog: argparse.HelpFormatter(prog, width=100),
        description="Follows the lines an agent routes for HOSTNAMEs (globs such as '*.prod' "
        "allowed), from now on, reconnecting when the agent restarts.")
    ap.add_argument("hostnames", nargs="+", metavar="HOSTNAME")
    ap.add_argument("--url", default=os.environ.get("LOGTRAIN_URL") or f"http://127.0.0.1:{port}",
                    help="the agent's HTTP_PORT (default: LOGTRAIN_URL, else "
                    "http://127.0.0.1:$HTTP_PORT, else port 9000)")
    ap.add_argument("--token", default=os.environ.get("API_TOKEN", ""),
                    help="the agent's API_TOKEN (default: the API_TOKEN variable)")
    ap.add_argument("--json", action="store_true", help="packet JSON, one per line (NDJSON), "
                    "instead of RFC5424 lines")
    args = ap.parse_args(argv)
    try:
        return follow(args.url, args.hostnames, args.token, args.json)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # | head
        try:
            sys.stdout = None  # nothing left to flush into the closed pipe at exit
        except Exception:  # noqa: BLE001
            pass
        return 0
