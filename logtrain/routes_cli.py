"""``logtrain routes HOSTNAME``: asks the running agent, through its routes
API (GET /routes?hostname=, on HTTP_PORT with API_TOKEN, the same settings
the agent was started with), which routes a packet of HOSTNAME matches, and
prints one line per route: the hostname or glob, the drain (credentials
masked), the datasource and, for annotations, the object it came from."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote


def _agent_address(cfg: Any) -> str:
    host = cfg.bind_address
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def show_routes(cfg: Any, hostname: str, out: Any = None) -> int:
    out = out or sys.stdout
    if not cfg.api_token:
        print("logtrain: routes: the routes API is off; set API_TOKEN (as the running agent "
              "has it) so this command can ask the agent", file=sys.stderr)
        return 2
    url = (f"http://{_agent_address(cfg)}:{cfg.http_port}/routes?hostname="
           f"{quote(hostname, safe='')}")
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {cfg.api_token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            answer = json.loads(r.read())
    except urllib.error.HTTPError as e:
        try:
            why = json.loads(e.read()).get("error", "")
        except (ValueError, AttributeError):
            why = ""
        print(f"logtrain: routes: the agent answered {e.code} {why}".rstrip(), file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"logtrain: routes: cannot ask the agent at {url.split('?')[0]}: "
              f"{getattr(e, 'reason', None) or e}", file=sys.stderr)
        return 1
    routes = answer.get("routes", [])
    if not routes:
        print(f"no route matches {hostname}: its packets are dead (counted in "
              "logtrain_dead_packets_total)", file=out)
        return 0
    for r in routes:
        fields = [r.get("hostname", ""), r.get("endpoint", ""), r.get("datasource", "")]
        obj = r.get("object")
        if isinstance(obj, dict):
            fields.append(f"{obj.get('kind')} {obj.get('namespace')}/{obj.get('name')}")
        if r.get("error"):
            fields.append(f"REFUSED: {r['error']}")
        print("  ".join(str(f) for f in fields), file=out)
    return 0
