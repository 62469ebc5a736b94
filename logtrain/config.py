"""The effective configuration: settings from the environment, a TOML file and
command-line flags, checked against their declarations (logtrain/settings.py).

The TOML file uses the settings' names in lower case; flags are
``--name-in-lower-case``. Precedence: flags over environment over file over
defaults. Everything is validated up front; a ConfigError names the setting
and what is wrong with it.
"""

from __future__ import annotations

import os
from typing import Any

from logtrain.settings import BY_NAME, SETTINGS, Setting
from logtrain.urls import mask_dsn


class ConfigError(Exception):
    """Invalid configuration; the message names the setting."""


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def parse_files(raw: Any, where: str) -> tuple[tuple[str, str, str], ...]:
    """FILES: ``[[files]]`` tables (path, hostname, tag) in the TOML file, or
    ``GLOB HOSTNAME TAG`` entries separated by ``;`` (environment, flag)."""
    if isinstance(raw, str):
        entries = []
        for n, item in enumerate(x.strip() for x in raw.replace("\n", ";").split(";")):
            if not item:
                continue
            fields = item.split()
            if len(fields) != 3:
                raise ConfigError(f"{where}: entry {n + 1} {item!r}: expected 'GLOB HOSTNAME TAG'")
            entries.append({"path": fields[0], "hostname": fields[1], "tag": fields[2]})
    elif isinstance(raw, list):
        entries = raw
    else:
        raise ConfigError(f"{where}: expected [[files]] tables or 'GLOB HOSTNAME TAG; ...'")
    out = []
    for n, e in enumerate(entries, 1):
        if not isinstance(e, dict) or set(e) - {"path", "hostname", "tag"}:
            raise ConfigError(f"{where}: entry {n}: expected path, hostname and tag")
        path, host, tag = e.get("path"), e.get("hostname"), e.get("tag")
        if not (isinstance(path, str) and os.path.isabs(path)):
            raise ConfigError(f"{where}: entry {n}: path must be an absolute file name or glob")
        for name, v in (("hostname", host), ("tag", tag)):
            if not isinstance(v, str) or not v or any(c.isspace() for c in v):
                raise ConfigError(f"{where}: entry {n}: {name} must be a word without spaces")
        out.append((path, host, tag))
    return tuple(out)


def parse_table(raw: Any, where: str, many: bool) -> Any:
    """A TOML table (``tables``: an array of tables); from the environment, JSON."""
    if isinstance(raw, str):
        import json

        try:
            raw = json.loads(raw) if raw.strip() else ([] if many else {})
        except ValueError as e:
            raise ConfigError(f"{where}: expected JSON ({e})") from None
    if many and isinstance(raw, dict):
        raw = [raw]
    if many and not (isinstance(raw, list) and all(isinstance(e, dict) for e in raw)):
        raise ConfigError(f"{where}: expected a list of tables")
    if not many and not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table")
    return raw


def _convert(setting: Setting, raw: Any, origin: str) -> Any:
    where = f"{setting.name} ({origin})"
    kind = setting.kind
    if kind == "files":
        return parse_files(raw, where)
    if kind in ("table", "tables"):
        return parse_table(raw, where, kind == "tables")
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        s = str(raw).strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
        raise ConfigError(f"{where}: expected true or false, got {raw!r}")
    if kind in ("int", "port", "size"):
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
            if kind == "size":
                raise ConfigError(f"{where}: expected a whole number of bytes, optionally with "
                                  f"a K, M or G suffix (such as 512K or 8M), got {raw!r}") from None
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
            if s.dsn and v:
                shown = mask_dsn(v)
            elif s.secret and v:
                shown = "********"
            elif isinstance(v, str) and v.startswith("-----BEGIN"):
                shown = f"<PEM, {len(v)} bytes>"
            elif isinstance(v, bool):
                shown = "true" if v else "false"
            elif s.kind == "files":
                shown = "; ".join(" ".join(e) for e in v)
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
            if (setting.path and value and not os.path.isabs(value)
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


def validate(cfg: Config) -> None:
    values = cfg._values
    for s in SETTINGS:
        v = values[s.name]
        if s.kind == "port" and not 0 <= v <= 65535:
            raise ConfigError(f"{s.name}: {v} is not a port number (0-65535)")
        if s.low is not None and v < s.low:
            if s.low == 1 and s.kind != "float":
                raise ConfigError(f"{s.name}: must be greater than zero, got {v}")
            if s.low == 0:
                raise ConfigError(f"{s.name}: must not be negative, got {v}")
            raise ConfigError(f"{s.name}: must be at least {s.low}, got {v}")
        if s.high is not None and v > s.high:
            raise ConfigError(f"{s.name}: must be at most {s.high}, got {v}")
        if s.choices and v.lower() not in s.choices:
            raise ConfigError(f"{s.name}: {v!r} is not one of {', '.join(s.choices)}")
        if s.check is not None:
            problem = s.check(v)
            if problem:
                raise ConfigError(f"{s.name}: {problem}")
        if v is True:
            if s.unavailable:
                raise ConfigError(f"{s.name}=true: {s.unavailable} is not available in this "
                                  "version yet")
            for need in s.needs:
                if not values[need]:
                    hint = (" (for example postgres://user:password@host:5432/dbname)"
                            if BY_NAME[need].dsn else "")
                    raise ConfigError(f"{need}: required when {s.name}=true{hint}")
    inputs = [s.name for s in SETTINGS if s.role == "input"]
    if not any(values[n] for n in inputs):
        offered = [n for n in inputs if not BY_NAME[n].unavailable]
        raise ConfigError(f"no input is enabled: set at least one of {', '.join(offered)} "
                          "(for example SYSLOG_TCP=true)")
    if not any(values[s.name] for s in SETTINGS if s.role == "datasource"):
        raise ConfigError(
            "no datasource of routes is configured: set ROUTES_FILE to a routes file "
            "('HOSTNAME-OR-GLOB DRAIN-URL' per line), or enable POSTGRES or KUBERNETES_DATASOURCE"
        )
