"""Every setting the agent reads, each declared once with its own rules.

A declaration carries the environment variable's name (the original
logtrain's names and defaults), its kind, default, help, the section it is
documented under, and its rules: bounds, choices, a check of its value,
whether it is a path (resolved relative to the TOML file), secret or a
database URL (masked when printed), what it needs (``needs``: settings that must be set
when this one is true), and its role (an input or a datasource). The command
line flags, the configuration checks, check-config and the README's table
(``logtrain settings``) are all made from these declarations, as gunicorn
makes its own from its Setting classes: a new setting is one declaration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = Callable[[Any], str | None]  # the value -> what is wrong with it, or None


class Setting:  # not a dataclass: dataclasses loads inspect and ast (~1 MB)
    __slots__ = ("name", "kind", "default", "help", "section", "secret", "low", "high",
                 "choices", "path", "needs", "role", "check", "unavailable", "dsn")

    def __init__(self, name: str, kind: str, default: Any, help: str, section: str, *,
                 secret: bool = False, dsn: bool = False, low: float | None = None,
                 high: float | None = None, choices: tuple[str, ...] = (), path: bool = False,
                 needs: tuple[str, ...] = (), role: str = "", check: Check | None = None,
                 unavailable: str = "") -> None:
        self.name = name
        self.kind = kind  # bool, int, port, size, float, str, files, table, tables
        self.default = default
        self.help = help
        self.section = section
        self.secret = secret
        self.dsn = dsn  # a database URL or key=value string, masked with mask_dsn when printed
        self.low = low  # inclusive bounds of a number
        self.high = high
        self.choices = choices
        self.path = path
        self.needs = needs
        self.role = role  # "input", "datasource" or ""
        self.check = check
        self.unavailable = unavailable  # what this version does not offer yet


def _http_path(v: str) -> str | None:
    return None if v.startswith("/") else f"must start with '/', got {v!r}"


def _prefix(v: str) -> str | None:
    if not v.startswith("/"):
        return f"must start with '/', got {v!r}"
    if not v.endswith("/"):
        return f"must end with '/', got {v!r}"
    return None


def _by(parse_name: str) -> Check:
    """A check that runs logtrain.trust's parser ``parse_name`` on the value."""
    def check(v: str) -> str | None:
        from logtrain import trust

        try:
            getattr(trust, parse_name)(v)
        except ValueError as e:
            return str(e)
        return None

    return check


def _transform(name: str) -> Check:
    """A check from logtrain/transform/checks.py (imported only to check)."""
    def check(v: Any) -> str | None:
        if v in ("", (), [], {}):
            return None  # nothing configured: nothing to load
        from logtrain.transform import checks

        return getattr(checks, name)(v)

    return check


def _postgres_url(v: str) -> str | None:
    if v and "://" in v and not v.startswith(("postgres://", "postgresql://")):
        from logtrain.urls import mask_dsn

        return f"expected a postgres:// URL, got {mask_dsn(v)!r}"
    return None


LOG_LEVELS = ("debug", "info", "warning", "error")

S = Setting
SETTINGS: list[Setting] = [
    # --- the agent
    S("HTTP_PORT", "port", 9000,
      "port of the HTTP server, always on: /health, and the HTTP inputs, /metrics and the API "
      "when enabled", "agent"),
    S("BIND_ADDRESS", "str", "0.0.0.0", "address every listener binds to", "agent"),
    S("LOG_LEVEL", "str", "info", "the agent's own log level: debug, info, warning, error", "agent",
      choices=LOG_LEVELS),
    S("STATE_DIR", "str", "/var/lib/logtrain", "directory for checkpoints and spools", "agent",
      path=True),
    S("METRICS", "bool", False, "serve Prometheus metrics on HTTP_PORT at /metrics", "agent"),
    S("METRICS_ORIGINAL_INTERVAL", "float", 300.0,
      "seconds between the observations of the original logtrain's histograms "
      "(logtrain_packets_sent and the like) on /metrics", "agent", low=0.1),
    S("STATS_INTERVAL", "float", 60.0,
      "seconds between progress lines in the agent's log (0: never)", "agent", low=0),
    S("SHUTDOWN_TIMEOUT", "float", 10.0, "seconds to flush drains on SIGTERM", "agent", low=0),
    # --- routes
    S("ROUTES_FILE", "str", "", "static routes file: 'HOSTNAME-OR-GLOB DRAIN-URL' per line",
      "routes", path=True, role="datasource"),
    S("ROUTES_RELOAD_INTERVAL", "float", 0.5, "seconds between checks of ROUTES_FILE for changes",
      "routes", low=0.01),
    S("ROUTES_STARTUP_WAIT", "float", 30.0,
      "seconds lines for hostnames without a route wait at start while datasources load "
      "their routes (then they are dead packets)", "routes", low=0.0),
    S("ROUTES_STARTUP_BUFFER", "size", 4 << 20,
      "bytes of such early lines held at most (beyond: dead packets, counted)", "routes", low=0),
    S("POSTGRES", "bool", False, "routes from the Postgres drains table", "routes",
      needs=("DATABASE_URL",), role="datasource"),
    S("DATABASE_URL", "str", "", "Postgres URL for POSTGRES", "routes", secret=True, dsn=True,
      check=_postgres_url),
    S("KUBERNETES_DATASOURCE", "bool", False, "routes from the logtrain.akkeris.io/drains "
      "annotations of deployments, daemonsets, statefulsets, replicasets and pods", "routes",
      role="datasource"),
    S("ROUTE_TRUST", "str", "file", "comma-separated datasources whose routes are trusted: "
      "file, postgres, api, kubernetes (untrusted routes name network drains only)", "routes",
      check=_by("parse_trust")),
    S("DRAIN_DENY_NETWORKS", "str", "127.0.0.0/8,::1/128,169.254.0.0/16,fe80::/10,0.0.0.0/8,::/128",
      "comma-separated CIDRs drains of untrusted routes may not connect to", "routes",
      check=_by("parse_networks")),
    S("DRAIN_ALLOW_NETWORKS", "str", "", "comma-separated CIDRs excepted from DRAIN_DENY_NETWORKS",
      "routes", check=_by("parse_networks")),
    S("DATASOURCE_BACKOFF_MAX", "float", 30.0,
      "longest wait between reconnections to a datasource, seconds", "routes", low=0),
    S("API_TOKEN", "str", "",
      "bearer token of the routes API (off when unset), of persistent reads, live tails and "
      "the status page's data", "routes", secret=True),
    # --- live tails and the status page
    S("STATUS_PAGE", "bool", True, "the status page at / (its data at /status.json; behind "
      "API_TOKEN when it is set)", "tails"),
    S("MAX_TAILS", "int", 10, "most concurrent live tails (GET /tail); beyond it 429 (0: no "
      "tails)", "tails", low=0),
    S("TAIL_BUFFER_SIZE", "size", 256 << 10, "bytes queued per live tail; a client reading "
      "slower than lines flow loses lines (counted, and a marker line says how many)", "tails",
      low=1024),
    S("TAIL_CPU_SHARE", "float", 0.02, "most of the agent's time all live tails together may "
      "take, in cores (0.02: a fiftieth of one, split between the tails); past it a tail's "
      "lines are dropped and marked, so tails never slow the drains", "tails", low=0.001,
      high=1),
    # --- inputs
    S("SYSLOG_TCP", "bool", False, "syslog over TCP input", "inputs", role="input"),
    S("SYSLOG_TCP_PORT", "port", 9002, "port of the syslog TCP input", "inputs"),
    S("SYSLOG_UDP", "bool", False, "syslog over UDP input", "inputs", role="input"),
    S("SYSLOG_UDP_PORT", "port", 9003, "port of the syslog UDP input", "inputs"),
    S("SYSLOG_TLS", "bool", False, "syslog over TLS input", "inputs", role="input",
      needs=("SYSLOG_TLS_CERT_PEM", "SYSLOG_TLS_KEY_PEM")),
    S("SYSLOG_TLS_CERT_PEM", "str", "", "server certificate chain (PEM text, or a file path)",
      "inputs", path=True),
    S("SYSLOG_TLS_KEY_PEM", "str", "", "server private key (PEM text, or a file path)", "inputs",
      secret=True, path=True),
    S("SYSLOG_TLS_CA_PEM", "str", "",
      "CA (PEM text or path): when set, client certificates are required", "inputs", path=True),
    S("SYSLOG_TLS_SERVER_NAME", "str", "", "server name of the TLS input (informational)",
      "inputs"),
    S("SYSLOG_TLS_PORT", "port", 9004, "port of the syslog TLS input", "inputs"),
    S("HTTP_EVENTS", "bool", False, "JSON packets posted to HTTP_EVENTS_PATH", "inputs",
      role="input"),
    S("HTTP_EVENTS_PATH", "str", "/events", "path of the HTTP events input", "inputs",
      check=_http_path),
    S("HTTP_SYSLOG", "bool", False, "syslog frames posted to HTTP_SYSLOG_PATH", "inputs",
      role="input"),
    S("HTTP_SYSLOG_PATH", "str", "/syslog", "path of the HTTP syslog input", "inputs",
      check=_http_path),
    S("ENVOY", "bool", False, "Envoy/Istio gRPC access-log service (v3 and v2) input", "inputs",
      role="input"),
    S("ENVOY_PORT", "port", 9001, "port of the Envoy access-log service", "inputs"),
    S("ENVOY_MAX_MESSAGE", "size", 64 << 10,
      "largest gRPC message a sidecar may send to the access-log service, bytes (Envoy sends "
      "batches of a little over buffer_size_bytes, 16 KiB by default); a larger one ends its "
      "stream", "inputs", low=1024, high=64 << 20),
    S("ENVOY_MAX_STREAMS", "int", 64,
      "most access-log streams served at once (an Istio sidecar opens one per worker thread "
      "and log kind); more are refused. Unfinished messages can hold up to "
      "ENVOY_MAX_STREAMS x ENVOY_MAX_MESSAGE bytes", "inputs", low=1),
    # --- kubernetes
    S("KUBERNETES", "bool", False, "tail container logs on this node", "kubernetes",
      role="input"),
    S("KUBERNETES_LOG_PATH", "str", "/var/log/containers", "directory of container logs",
      "kubernetes"),
    S("FILES", "files", (),
      "plain files on servers: [[files]] tables (path = GLOB, hostname, tag) in the TOML file, "
      "or 'GLOB HOSTNAME TAG' entries separated by ';'", "files", role="input"),
    S("FILES_START_AT", "str", "end",
      "where a file input starts reading a file that existed before its first run ever: "
      "end or beginning (later runs resume from their checkpoints)", "files",
      choices=("end", "beginning")),
    S("AKKERIS", "bool", False, "Akkeris naming of Kubernetes workloads", "kubernetes"),
    S("EXCLUDE_NAMESPACES", "str", "", "comma-separated namespaces not to tail", "kubernetes"),
    S("ONLY_AKKERIS", "bool", False, "tail only Akkeris-managed workloads", "kubernetes"),
    S("KUBE_CONFIG", "str", "",
      "kubeconfig file for the Kubernetes API (unset: the pod's service account)", "kubernetes",
      path=True),
    S("KUBERNETES_API_TIMEOUT", "float", 10.0, "seconds to connect to and read from the "
      "Kubernetes API", "kubernetes", low=0.01),
    S("KUBERNETES_NAMES_TTL", "float", 300.0, "seconds a pod's hostname and tag (and its owners) "
      "are kept before they are looked up again", "kubernetes", low=1),
    S("KUBERNETES_HOSTNAME_POLICY", "str", "namespace",
      "which hostnames a logtrain.akkeris.io/hostname annotation may claim: namespace (only "
      "*.NAMESPACE, or *-NAMESPACE with AKKERIS) or any (the original's behaviour)",
      "kubernetes", choices=("namespace", "any")),
    S("KUBERNETES_WATCH_TIMEOUT", "float", 300.0, "seconds a watch of the Kubernetes datasource "
      "runs before it is renewed; a stream silent for this plus KUBERNETES_API_TIMEOUT is "
      "dropped and listed again", "kubernetes", low=1),
    # --- persistent logs
    S("PERSISTENT", "bool", False, "the persistent:// drain and its read endpoint", "persistent",
      needs=("PERSISTENT_DATABASE_URL",)),
    S("PERSISTENT_DATABASE_URL", "str", "", "Postgres URL of the persistent drain", "persistent",
      secret=True, dsn=True, check=_postgres_url),
    S("PERSISTENT_PATH", "str", "/logs/", "HTTP path prefix serving persistent logs",
      "persistent", check=_prefix),
    # --- limits of inputs
    S("MAX_FRAME_SIZE", "size", 65536, "largest syslog frame accepted, bytes", "limits", low=1),
    S("IDLE_TIMEOUT", "float", 300.0, "seconds before a silent input connection is closed (0: never)",
      "limits", low=0),
    S("FIRST_BYTES_TIMEOUT", "float", 10.0,
      "seconds a new input connection has for its first bytes (TLS: its handshake)", "limits",
      low=0.01),
    S("MAX_CONNECTIONS", "int", 1024,
      "most concurrent connections per stream input; at the limit the longest-idle one makes room",
      "limits", low=1),
    S("INPUT_PARTIAL_BUDGET", "size", 4 << 20,
      "bytes of unfinished input (syslog frames, HTTP request heads and body pieces) all input "
      "connections may hold together; past it the largest stream holders are cut and HTTP "
      "requests get 503", "limits", low=1),
    S("HTTP_MAX_BODY", "size", 4 << 20,
      "largest HTTP input request body, bytes (chunk framing counted). Bodies are streamed, so "
      "this bounds what a sender may have to send again after a 503 (half the default drain "
      "buffer), not memory", "limits", low=1),
    S("HTTP_HEADER_TIMEOUT", "float", 5.0,
      "seconds a client has to send a request head (from connecting, or from its first byte "
      "on a kept-alive connection)", "limits", low=0.01),
    S("HTTP_MAX_HEADER_SIZE", "size", 32 << 10,
      "largest request head (request line and headers), bytes", "limits", low=1),
    S("UDP_RECEIVE_BUFFER", "size", 4 << 20, "SO_RCVBUF of the UDP input, bytes", "limits", low=0),
    # --- drains
    S("DRAIN_BUFFER_SIZE", "size", 8 << 20,
      "memory buffer per drain, bytes; beyond it lines go to the spool (or, without one, are dropped, counted)", "drains", low=1),
    S("DRAIN_MAX_CONNECTIONS", "int", 4,
      "most connections per drain (the pool grows under pressure)", "drains", low=1),
    S("DRAIN_CONNECT_TIMEOUT", "float", 5.0, "seconds to connect to a drain", "drains", low=0.01),
    S("DRAIN_WRITE_TIMEOUT", "float", 30.0, "seconds for one write to a drain", "drains",
      low=0.01),
    S("DRAIN_BACKOFF_MAX", "float", 10.0, "longest wait between reconnection attempts, seconds",
      "drains", low=0),
    S("DRAIN_PAUSE_AFTER", "int", 10, "consecutive failures after which a drain is paused",
      "drains", low=1),
    S("DRAIN_PAUSE_INTERVAL", "float", 2.0,
      "first pause of a failing drain, seconds; each next pause is twice as long",
      "drains", low=0),
    S("DRAIN_PAUSE_MAX", "float", 300.0, "longest pause of a failing drain, seconds", "drains",
      low=0),
    S("SPOOL_MAX_BYTES", "size", 256 << 20,
      "disk spool per drain under STATE_DIR/spool, bytes; past it the oldest is dropped, "
      "counted; 0: no spool", "drains", low=0),
    S("SPOOL_TOTAL_MAX_BYTES", "size", 1 << 30,
      "disk spool of all drains together, bytes; past it the oldest of all is dropped",
      "drains", low=0),
    S("DRAIN_IDLE_TIMEOUT", "float", 60.0, "seconds before an idle drain connection is closed",
      "drains", low=0.01),
    S("UDP_MAX_PAYLOAD", "size", 2048, "largest syslog+udp datagram sent, bytes", "drains", low=64,
      high=65507),
    # --- transformations (logtrain/transform/)
    S("REDACT", "str", "",
      "built-in redaction for every line: default (url_password, bearer_token, api_key, "
      "aws_access_key, card_number) or a comma-separated list of names (email too); off when "
      "unset", "transform", check=_transform("check_redact")),
    S("REDACT_PATTERNS", "table", (),
      "the operator's own redaction patterns for every line: a table name = \"REGEX\" in the "
      "TOML file (JSON object in the environment); each match becomes [REDACTED:name]",
      "transform", check=_transform("check_redact_patterns")),
    S("REDACT_HOSTS", "tables", (),
      "redaction per hostname glob: [[redact_hosts]] tables (hosts, redact, patterns)",
      "transform", check=_transform("check_redact_hosts")),
    S("FILTERS", "tables", (),
      "filters per hostname glob: [[filters]] tables (hosts, min_severity, max_severity, "
      "match, exclude, tag); drain URLs take the same options as query parameters",
      "transform", check=_transform("check_filters")),
    S("MULTILINE", "tables", (),
      "multiline joining of container and file logs: [[multiline]] tables (files = GLOB, "
      "mode = java|python|go|nodejs, or start = REGEX); the pod annotation "
      "logtrain.akkeris.io/multiline does the same per pod", "transform",
      check=_transform("check_multiline")),
    S("MULTILINE_TIMEOUT", "float", 1.0,
      "seconds a pending multiline group waits for more lines before it is sent", "transform",
      low=0.01),
    S("MULTILINE_MAX_BYTES", "size", 64 << 10,
      "largest joined multiline message, bytes; a group reaching it is sent (a pending group "
      "is held in memory per stream of each joined file)", "transform", low=1),
    S("MULTILINE_MAX_LINES", "int", 1000,
      "most lines joined into one message; a group reaching it is sent", "transform", low=1),
    S("STRUCTURED_LOGS", "bool", True,
      "container lines that are JSON objects take their severity from level/severity keys",
      "transform"),
    S("STRUCTURED_MESSAGE", "str", "keep",
      "keep: drains get a JSON line as it was; extract: the message becomes its msg/message "
      "value", "transform", choices=("keep", "extract")),
    S("STRUCTURED_FIELDS_KEY", "str", "",
      "where the Elasticsearch drain puts a JSON line's fields: under this key, or merged at "
      "the top of the document when empty", "transform"),
]
BY_NAME = {s.name: s for s in SETTINGS}
SECTIONS = {
    "agent": "The agent",
    "routes": "Routes",
    "inputs": "Inputs",
    "kubernetes": "Kubernetes",
    "files": "Files (both file inputs)",
    "persistent": "Persistent logs",
    "tails": "Live tails and the status page",
    "limits": "Limits of inputs",
    "drains": "Drains",
    "transform": "Transformations",
}


def markdown_table() -> str:
    """The README's settings table, section by section."""
    out = []
    for key, title in SECTIONS.items():
        out.append(f"| **{title}** | | |")
        for s in SETTINGS:
            if s.section != key:
                continue
            default = s.default
            if isinstance(default, bool):
                shown = f"`{'true' if default else 'false'}`"
            elif default == ():
                shown = ""
            else:
                shown = f"`{default}`" if default != "" else ""
            out.append(f"| `{s.name}` | {shown} | {s.help} |")
    return "| variable | default | meaning |\n|---|---|---|\n" + "\n".join(out) + "\n"
