"""Drain URLs and database connection strings: parsing, and masking every
credential they can carry before they reach a log line, a metric label, an API
answer, check-config or an exception message.

Two masking functions, used everywhere: ``mask_url`` for drain URLs and
``mask_dsn`` for PostgreSQL connection strings (a postgres:// URI or libpq's
``key=value`` form). The rule is an allow-list: what is not known to be
harmless is masked.

* userinfo: ``user:****@`` (a user with no password is often a token: ``****@``);
* query: every value is ``****`` except the drain options the outputs accept
  (``framing``, ``maxlen``, ``insecure``, ``index``, ``daily``, ``data_stream``,
  ``gzip``, ``batch_size``, ``batch``, ``auth`` when it names a scheme, ``ca``
  shortened, and the filter options ``min_severity``, ``max_severity``,
  ``match``, ``exclude``, ``tag``); a query item without ``=`` is ``****`` whole;
* fragment: ``#****``;
* path (network drains only): a segment that looks like a token is ``****``:
  16 or more characters of ``[A-Za-z0-9._~+=%-]`` mixing at least two of
  lower case, upper case and digits, or 32 or more such characters whatever
  they hold (Slack and Discord webhook tokens, Loggly's input UUIDs). Words
  such as ``elasticsearch-bulk`` stay readable;
* DSN: the values of every key that is not a known harmless connection
  setting (``password``, ``sslpassword`` and anything unknown) are ``****``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit

MASK = "****"
# Drain options the outputs accept whose values are not secrets.
_DRAIN_OPTIONS = frozenset(("framing", "maxlen", "insecure", "index", "ca", "daily",
                            "data_stream", "gzip", "batch_size", "batch", "min_severity",
                            "max_severity", "match", "exclude", "tag"))
_AUTH_SCHEMES = frozenset(("basic", "bearer", "apikey"))
# libpq connection settings whose values are not secrets (paths to key files
# included: a path is not the key).
_DSN_HARMLESS = frozenset((
    "host", "hostaddr", "port", "dbname", "user", "sslmode", "connect_timeout",
    "application_name", "fallback_application_name", "target_session_attrs", "keepalives",
    "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
    "sslrootcert", "sslcert", "sslkey", "sslcrl", "sslcrldir", "sslcompression",
    "gssencmode", "krbsrvname", "channel_binding", "require_auth", "load_balance_hosts",
    "sslnegotiation", "client_encoding", "replication", "passfile", "service",
))
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~+=%-]+")
_CLASSES = (re.compile(r"[a-z]"), re.compile(r"[A-Z]"), re.compile(r"[0-9]"))
_DSN_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^'\\]|\\.)*'?|\S*)")


def _token_like(segment: str) -> bool:
    if len(segment) < 16 or not _TOKEN_CHARS.fullmatch(segment):
        return False
    return len(segment) >= 32 or sum(1 for c in _CLASSES if c.search(segment)) >= 2


def _short(value: str) -> str:
    # A ca= certificate is kilobytes of base64: keep log lines and labels readable.
    return value if len(value) <= 48 else f"{value[:16]}...{len(value)}chars"


def _drain_option_harmless(key: str, value: str) -> bool:
    if key == "auth":
        return value.lower() in _AUTH_SCHEMES
    return key in _DRAIN_OPTIONS


def _dsn_option_harmless(key: str, value: str) -> bool:
    return key in _DSN_HARMLESS


def _mask_uri(url: str, harmless, token_paths: bool) -> tuple[str, list[str]]:
    """The masked URL and the secrets taken out of it (raw and decoded)."""
    secrets: list[str] = []
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "<unparseable url>", [url]
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, colon, password = userinfo.partition(":")
        if colon and password:
            netloc = f"{user}:{MASK}@{host}"
            secrets.append(password)
        else:
            netloc = f"{MASK}@{host}"
            secrets.append(user)
    path = parts.path
    if token_paths and netloc and path:
        segments = path.split("/")
        for i, seg in enumerate(segments):
            if _token_like(seg):
                secrets.append(seg)
                segments[i] = MASK
        path = "/".join(segments)
    query = parts.query
    if query:
        items = []
        for item in query.split("&"):
            key, eq, value = item.partition("=")
            if not eq:
                if item:
                    secrets.append(item)
                    items.append(MASK)
                continue
            if harmless(unquote(key).lower(), unquote(value)):
                items.append(f"{key}={_short(value)}")
            else:
                items.append(f"{key}={MASK}" if value else f"{key}=")
                if value:
                    secrets.append(value)
        query = "&".join(items)
    if parts.fragment:
        secrets.append(parts.fragment)
    out = f"{parts.scheme}://{netloc}{path}" if parts.scheme else f"{netloc}{path}"
    if query:
        out += "?" + query
    if parts.fragment:
        out += "#" + MASK
    secrets += [unquote(s) for s in secrets if "%" in s or "+" in s]
    return out, secrets


def hostport(address: tuple) -> str:
    """``host:port`` of a socket address as a URL writes it (``[::1]:9000``)."""
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def mask_url(url: str) -> str:
    """A drain URL with every credential it can carry replaced by ****."""
    return _mask_uri(url, _drain_option_harmless, token_paths=True)[0]


def _mask_keyvalue(dsn: str) -> tuple[str, list[str]]:
    out, secrets = [], []
    pos = 0
    for m in _DSN_PAIR.finditer(dsn):
        # Text between pairs that is not a pair (a malformed string) may be a
        # piece of a password: it is left out of the masked form.
        junk = dsn[pos:m.start()].split()
        secrets += junk
        pos = m.end()
        key, value = m.group(1), m.group(2)
        if key.lower() in _DSN_HARMLESS:
            out.append(f"{key}={value}")
        else:
            out.append(f"{key}={MASK}")
            if value:
                secrets.append(value)
                if value.startswith("'"):
                    secrets += value.strip("'").replace("\\'", "'").split()
    secrets += dsn[pos:].split()
    if not out:
        return "<unparseable connection string>", secrets + [dsn]
    return " ".join(out), secrets


def mask_dsn(dsn: str) -> str:
    """A PostgreSQL connection string (postgres:// URI or ``key=value`` pairs)
    with its password and every value not known to be harmless replaced by ****."""
    return dsn_secrets(dsn)[0]


def dsn_secrets(dsn: str) -> tuple[str, list[str]]:
    """``mask_dsn``'s result and the secret strings it took out, so that error
    messages (libpq quotes pieces of a malformed string) can be scrubbed."""
    if "://" in dsn:
        return _mask_uri(dsn, _dsn_option_harmless, token_paths=False)
    return _mask_keyvalue(dsn)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every occurrence of the given secrets replaced by ****.
    Secrets shorter than 4 characters are replaced only as whole words, so a
    one-letter password does not mangle the message."""
    for s in sorted(set(secrets), key=len, reverse=True):
        if not s or s == MASK:
            continue
        if len(s) >= 4:
            text = text.replace(s, MASK)
        else:
            text = re.sub(rf"(?<![\w]){re.escape(s)}(?![\w])", MASK, text)
    return text


_SAFE_PARSE_ERRORS = ("Port out of range 0-65535", "Invalid IPv6 URL")


class DrainURL:
    """A parsed drain URL: scheme, host, port, path, query options."""

    __slots__ = ("raw", "scheme", "host", "port", "path", "query", "username", "password",
                 "_masked")

    def __init__(self, raw: str) -> None:
        self.raw = raw
        try:
            parts = urlsplit(raw.strip())
            port = parts.port
        except ValueError as e:
            # Python's messages can quote the URL ("Port could not be cast to
            # integer value as 'SECRET'" for https://apikey:SECRET/x).
            msg = str(e)
            if msg not in _SAFE_PARSE_ERRORS:
                msg = ("the port is not a number" if msg.startswith("Port")
                       else "the host part is not valid")
            raise ValueError(f"malformed URL: {msg}") from None
        if not parts.scheme:
            raise ValueError("no scheme (expected for example syslog+tcp://host:port)")
        self.scheme = parts.scheme.lower()
        self.host = parts.hostname or ""
        self.port = port
        self.path = parts.path
        self.query = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.username = parts.username
        self.password = parts.password
        self._masked: tuple[str, list[str]] | None = None  # (safe, secrets), made when first asked

    @property
    def safe(self) -> str:
        """The URL with every credential masked, for logs, metrics and answers."""
        return self._mask()[0]

    @property
    def secrets(self) -> list[str]:
        return self._mask()[1]

    def _mask(self) -> tuple[str, list[str]]:
        # Not in __init__: thousands of routes are admitted without ever being logged.
        m = self._masked
        if m is None:
            m = self._masked = _mask_uri(self.raw, _drain_option_harmless, token_paths=True)
        return m

    def scrub(self, text: str) -> str:
        """``text`` (an error message) without this URL's credentials."""
        return scrub(text, self.secrets)

    def flag(self, name: str, default: bool = False) -> bool:
        v = self.query.get(name)
        if v is None:
            return default
        if v.lower() in ("true", "1", "yes"):
            return True
        if v.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"query option {name}={v!r}: expected true or false")

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        """The query option ``name``, one of ``choices`` (the first is the default)."""
        v = self.query.get(name, choices[0])
        if v not in choices:
            raise ValueError(f"{name}={v!r}: expected {' or '.join(choices)}")
        return v

    def octet_framing(self) -> bool:
        """``framing=newline`` (the default) or ``framing=octet`` (RFC6587
        octet counting), for every drain that writes syslog frames."""
        return self.choice("framing", ("newline", "octet")) == "octet"

    def __str__(self) -> str:
        return self.safe
