"""Settings from the environment, a TOML file and command-line flags.

One table (``SETTINGS``) names every setting once: its environment variable (the
original logtrain's names and defaults), its type, and whether it is secret. The
TOML file uses the same names in lower case; flags are ``--name-in-lower-case``.
Precedence: flags over environment over file over defaults. Everything is
validated up front; a ConfigError names the setting and what is wrong with it.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from logtrain.urls import redact_url


class ConfigError(Exception):
    """Invalid configuration; the message names the setting."""


class Setting(NamedTuple):  # not a dataclass: dataclasses loads inspect and ast (~1 MB)
    name: str  # the environment variable
    kind: str  # bool, int, float, str, size
    default: Any
    help: str
    secret: bool = False
    url: bool = False  # a URL whose password is masked when printed


S = Setting
SETTINGS: list[Setting] = [
    S("HTTP_PORT", "int", 9000, "port of the HTTP server (HTTP inputs, /metrics, /health)"),
    S("BIND_ADDRESS", "str", "0.0.0.0", "address every listener binds to"),
    S("LOG_LEVEL", "str", "info", "the agent's own log level: debug, info, warning, error"),
    S("STATE_DIR", "str", "/var/lib/logtrain", "directory for checkpoints and spools"),
    S("METRICS", "bool", False, "serve Prometheus metrics on HTTP_PORT at /metrics"),
    S("ROUTES_FILE", "str", "", "static routes file: 'HOSTNAME-OR-GLOB DRAIN-URL' per line"),
    S("ROUTES_RELOAD_INTERVAL", "float", 0.5, "seconds between checks of ROUTES_FILE for changes"),
    S("POSTGRES", "bool", False, "routes from the Postgres drains table"),
    S("DATABASE_URL", "str", "", "Postgres URL for POSTGRES", secret=True, url=True),
    S("KUBERNETES_DATASOURCE", "bool", False, "routes from Kubernetes annotations"),
    S("KUBERNETES", "bool", False, "tail container logs on this node"),
    S("KUBERNETES_LOG_PATH", "str", "/var/log/containers", "directory of container logs"),
    S("ENVOY", "bool", False, "Envoy/Istio gRPC access-log input"),
    S("ENVOY_PORT", "int", 9001, "port of the Envoy access-log service"),
    S("HTTP_EVENTS", "bool", False, "JSON packets posted to HTTP_EVENTS_PATH"),
    S("HTTP_EVENTS_PATH", "str", "/events", "path of the HTTP events input"),
    S("HTTP_SYSLOG", "bool", False, "syslog frames posted to HTTP_SYSLOG_PATH"),
    S("HTTP_SYSLOG_PATH", "str", "/syslog", "path of the HTTP syslog input"),
    S("SYSLOG_TCP", "bool", False, "syslog over TCP input"),
    S("SYSLOG_TCP_PORT", "int", 9002, "port of the syslog TCP input"),
    S("SYSLOG_UDP", "bool", False, "syslog over UDP input"),
    S("SYSLOG_UDP_PORT", "int", 9003, "port of the syslog UDP input"),
    S("SYSLOG_TLS", "bool", False, "syslog over TLS input"),
    S("SYSLOG_TLS_CERT_PEM", "str", "", "server certificate chain (PEM text, or a file path)"),
    S("SYSLOG_TLS_KEY_PEM", "str", "", "server private key (PEM text, or a file path)", secret=True),
    S("SYSLOG_TLS_CA_PEM", "str", "", "CA (PEM text or path): when set, client certificates are required"),
    S("SYSLOG_TLS_SERVER_NAME", "str", "", "server name of the TLS input (informational)"),
    S("SYSLOG_TLS_PORT", "int", 9004, "port of the syslog TLS input"),
    S("AKKERIS", "bool", False, "Akkeris naming of Kubernetes workloads"),
    S("EXCLUDE_NAMESPACES", "str", "", "comma-separated namespaces not to tail"),
    S("ONLY_AKKERIS", "bool", False, "tail only Akkeris-managed workloads"),
    S("PERSISTENT", "bool", False, "the persistent:// drain and its read endpoint"),
    S("PERSISTENT_DATABASE_URL", "str", "", "Postgres URL of the persistent drain", secret=True, url=True),
    S("PERSISTENT_PATH", "str", "/logs/", "HTTP path prefix serving persistent logs"),
    S("API_TOKEN", "str", "", "bearer token of the routes API (off when unset) and of persistent reads",
      secret=True),
    # Limits and tuning added by this project.
    S("MAX_FRAME_SIZE", "size", 65536, "largest syslog frame accepted, bytes"),
    S("IDLE_TIMEOUT", "float", 300.0, "seconds before a silent input connection is closed"),
    S("MAX_CONNECTIONS", "int", 1024, "most concurrent connections per stream input"),
    S("HTTP_MAX_BODY", "size", 4 << 20,
      "largest HTTP input request body, bytes (chunk framing counted). Bodies are streamed, so "
      "this bounds what a sender may have to send again after a 503 (half the default drain "
      "buffer), not memory"),
    S("UDP_RECEIVE_BUFFER", "size", 4 << 20, "SO_RCVBUF of the UDP input, bytes"),
    S("DRAIN_BUFFER_SIZE", "size", 8 << 20, "memory buffer per drain, bytes; beyond it lines are dropped and counted"),
    S("DRAIN_MAX_CONNECTIONS", "int", 4, "most connections per drain (the pool grows under pressure)"),
    S("DRAIN_CONNECT_TIMEOUT", "float", 5.0, "seconds to connect to a drain"),
    S("DRAIN_WRITE_TIMEOUT", "float", 30.0, "seconds for one write to a drain"),
    S("DRAIN_BACKOFF_MAX", "float", 10.0, "longest wait between reconnection attempts, seconds"),
    S("DRAIN_PAUSE_AFTER", "int", 10, "consecutive failures after which a drain is paused"),
    S("DRAIN_PAUSE_INTERVAL", "float", 30.0, "seconds between attempts of a paused drain"),
    S("DRAIN_IDLE_TIMEOUT", "float", 60.0, "seconds before an idle drain connection is closed"),
    S("UDP_MAX_PAYLOAD", "size", 2048, "largest syslog+udp datagram sent, bytes"),
    S("DATASOURCE_BACKOFF_MAX", "float", 30.0, "longest wait between reconnections to a datasource, seconds"),
    S("SHUTDOWN_TIMEOUT", "float", 10.0, "seconds to flush drains on SIGTERM"),
    S("STATS_INTERVAL", "float", 60.0, "seconds between progress lines in the agent's log (0: never)"),
    # Hostile HTTP clients (the HTTP server's limits).
    S("HTTP_HEADER_TIMEOUT", "float", 5.0,
      "seconds a client has to send a request head (from connecting, or from its first byte "
      "on a kept-alive connection)"),
    S("HTTP_MAX_HEADER_SIZE", "size", 32 << 10, "largest request head (request line and headers), bytes"),
    S("HTTP_BUFFER_BUDGET", "size", 4 << 20,
      "bytes all HTTP connections together may hold in request heads and bodies being read; "
      "beyond it requests get 503 (each connection's first 4 KiB of head are not counted)"),
]
BY_NAME = {s.name: s for s in SETTINGS}
LOG_LEVELS = ("debug", "info", "warning", "error")
_PATHS = ("ROUTES_FILE", "STATE_DIR", "SYSLOG_TLS_CERT_PEM", "SYSLOG_TLS_KEY_PEM", "SYSLOG_TLS_CA_PEM")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def _convert(setting: Setting, raw: Any, origin: str) -> Any:
    where = f"{setting.name} ({origin})"
    kind = setting.kind
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        s = str(raw).strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
        raise ConfigError(f"{where}: expected true or false, got {raw!r}")
    if kind in ("int", "size"):
        if isinstance(raw, bool):
            raise ConfigError(f"{where}: expected a whole number, got {raw!r}")
        if isinstance(raw, int):
            return raw
        s = str(raw).strip()
        mult = 1
        if kind == "size" and s[-1:].upper() in ("K", "M", "G"):
            mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[s[-1].upper()]
            s = s[:-1]
        try:
            return int(s) * mult
        except ValueError:
            raise ConfigError(f"{where}: expected a whole number, got {raw!r}") from None
    if kind == "float":
        if isinstance(raw, bool):
            raise ConfigError(f"{where}: expected a number, got {raw!r}")
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {raw!r}") from None
    if not isinstance(raw, str):
        raise ConfigError(f"{where}: expected a string, got {raw!r}")
    return raw


class Config:
    """The effective settings, as attributes named like the lower-cased variables."""

    def __init__(self, values: dict[str, Any], origins: dict[str, str]) -> None:
        self._values = values
        self._origins = origins

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name.upper()]
        except KeyError:
            raise AttributeError(name) from None

    def origin(self, name: str) -> str:
        return self._origins[name.upper()]

    def describe(self) -> list[str]:
        """``NAME=value  (origin)`` lines, secrets masked, for check-config."""
        lines = []
        for s in SETTINGS:
            v = self._values[s.name]
            if s.url and v:
                shown = redact_url(v)
            elif s.secret and v:
                shown = "********"
            elif isinstance(v, str) and v.startswith("-----BEGIN"):
                shown = f"<PEM, {len(v)} bytes>"
            elif isinstance(v, bool):
                shown = "true" if v else "false"
            else:
                shown = str(v)
            lines.append(f"{s.name}={shown}  ({self._origins[s.name]})")
        return lines


def load(
    env: dict[str, str] | None = None,
    config_file: str | None = None,
    flags: dict[str, Any] | None = None,
) -> Config:
    """Builds and validates the configuration; raises ConfigError."""
    env = dict(os.environ) if env is None else env
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    origins = {s.name: "default" for s in SETTINGS}
    path = config_file or env.get("LOGTRAIN_CONFIG") or ""
    if path:
        import tomllib  # only with a file: 0.6 MB the environment-only agent does without

        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except OSError as e:
            raise ConfigError(f"config file {path}: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path}: {e}") from None
        for key, raw in data.items():
            setting = BY_NAME.get(key.upper())
            if setting is None:
                raise ConfigError(f"config file {path}: unknown setting {key!r}")
            value = _convert(setting, raw, f"config file {path}")
            if (setting.name in _PATHS and value and not os.path.isabs(value)
                    and not value.lstrip().startswith("-----BEGIN")):  # PEM text, not a path
                # relative to the file, so an example directory works from anywhere
                value = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), value))
            values[setting.name] = value
            origins[setting.name] = "file"
    for s in SETTINGS:
        if s.name in env:
            values[s.name] = _convert(s, env[s.name], "environment")
            origins[s.name] = "environment"
    for name, raw in (flags or {}).items():
        if raw is None:
            continue
        s = BY_NAME[name]
        values[s.name] = _convert(s, raw, "flag --" + name.lower().replace("_", "-"))
        origins[s.name] = "flag"
    cfg = Config(values, origins)
    validate(cfg)
    return cfg


NOT_YET = {
    "KUBERNETES_DATASOURCE": "the Kubernetes datasource",
    "KUBERNETES": "the Kubernetes file input",
    "ENVOY": "the Envoy access-log input",
}


def validate(cfg: Config) -> None:
    for s in SETTINGS:
        v = cfg._values[s.name]
        if s.name.endswith("_PORT") and not 0 <= v <= 65535:
            raise ConfigError(f"{s.name}: {v} is not a port number (0-65535)")
        if s.kind in ("int", "size", "float") and not s.name.endswith("_PORT") and v < 0:
            raise ConfigError(f"{s.name}: must not be negative, got {v}")
    for name in ("MAX_FRAME_SIZE", "MAX_CONNECTIONS", "DRAIN_MAX_CONNECTIONS", "DRAIN_BUFFER_SIZE",
                 "HTTP_MAX_BODY", "UDP_MAX_PAYLOAD", "ROUTES_RELOAD_INTERVAL", "HTTP_HEADER_TIMEOUT",
                 "HTTP_MAX_HEADER_SIZE", "HTTP_BUFFER_BUDGET"):
        if not cfg._values[name]:
            raise ConfigError(f"{name}: must be greater than zero")
    if cfg.log_level.lower() not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL: {cfg.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    for name in ("HTTP_EVENTS_PATH", "HTTP_SYSLOG_PATH", "PERSISTENT_PATH"):
        if not cfg._values[name].startswith("/"):
            raise ConfigError(f"{name}: must start with '/', got {cfg._values[name]!r}")
    for name, what in NOT_YET.items():
        if cfg._values[name]:
            raise ConfigError(f"{name}=true: {what} is not available in this version yet")
    for flag, url in (("POSTGRES", "DATABASE_URL"), ("PERSISTENT", "PERSISTENT_DATABASE_URL")):
        value = cfg._values[url]
        if cfg._values[flag] and not value:
            raise ConfigError(f"{url}: required when {flag}=true "
                              "(for example postgres://user:password@host:5432/dbname)")
        if value and "://" in value and not value.startswith(("postgres://", "postgresql://")):
            raise ConfigError(f"{url}: expected a postgres:// URL, got {redact_url(value)!r}")
    if not cfg.persistent_path.endswith("/"):
        raise ConfigError(f"PERSISTENT_PATH: must end with '/', got {cfg.persistent_path!r}")
    if cfg.syslog_tls:
        for name in ("SYSLOG_TLS_CERT_PEM", "SYSLOG_TLS_KEY_PEM"):
            if not cfg._values[name]:
                raise ConfigError(f"{name}: required when SYSLOG_TLS=true")
    inputs = [n for n in ("SYSLOG_TCP", "SYSLOG_UDP", "SYSLOG_TLS", "HTTP_EVENTS", "HTTP_SYSLOG",
                          "KUBERNETES", "ENVOY") if cfg._values[n]]
    if not inputs:
        raise ConfigError(
            "no input is enabled: set at least one of SYSLOG_TCP, SYSLOG_UDP, SYSLOG_TLS, "
            "HTTP_EVENTS, HTTP_SYSLOG (for example SYSLOG_TCP=true)"
        )
    if not (cfg.routes_file or cfg.postgres or cfg.kubernetes_datasource):
        raise ConfigError(
            "no datasource of routes is configured: set ROUTES_FILE to a routes file "
            "('HOSTNAME-OR-GLOB DRAIN-URL' per line), or enable POSTGRES or KUBERNETES_DATASOURCE"
        )
