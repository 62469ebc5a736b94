"""Drain URLs: parsing, and masking credentials before a URL reaches a log line
or a metric label."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SECRET_PARAMS = ("password", "passwd", "pass", "token", "secret", "key", "apikey", "api_key",
                  "auth_token", "access_token", "sig", "signature")


def redact_url(url: str) -> str:
    """The URL with its password and secret-looking query values replaced by ****."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        # user:password keeps the user; a lone userinfo is often a token
        # (https://TOKEN@host), so it is masked whole.
        netloc = f"{userinfo.split(':', 1)[0]}:****@{host}" if ":" in userinfo else f"****@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, "****" if k.lower() in _SECRET_PARAMS else _short(v)) for k, v in pairs],
            safe="*.",
        )
    out = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    if not netloc and "://" in url and "://" not in out:
        out = out.replace(":", "://", 1)  # keep stdout:// and file:///x as written
    return out


def _short(value: str) -> str:
    # A ca= certificate is kilobytes of base64: keep log lines and labels readable.
    return value if len(value) <= 48 else f"{value[:16]}...{len(value)}chars"


class DrainURL:
    """A parsed drain URL: scheme, host, port, path, query options."""

    __slots__ = ("raw", "scheme", "host", "port", "path", "query", "username", "password", "safe")

    def __init__(self, raw: str) -> None:
        self.raw = raw
        try:
            parts = urlsplit(raw.strip())
            port = parts.port
        except ValueError as e:
            raise ValueError(f"malformed URL: {e}") from None
        if not parts.scheme:
            raise ValueError("no scheme (expected for example syslog+tcp://host:port)")
        self.scheme = parts.scheme.lower()
        self.host = parts.hostname or ""
        self.port = port
        self.path = parts.path
        self.query = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.username = parts.username
        self.password = parts.password
        self.safe = redact_url(raw)

    def flag(self, name: str, default: bool = False) -> bool:
        v = self.query.get(name)
        if v is None:
            return default
        if v.lower() in ("true", "1", "yes"):
            return True
        if v.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"query option {name}={v!r}: expected true or false")

    def __str__(self) -> str:
        return self.safe
