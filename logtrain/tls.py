"""TLS contexts for the TLS input and the tls/https drains.

ssl costs about 4 MB of resident memory, so it is loaded only when this module
is: the entry point leaves ssl unpatched and unimported, and importing this
module patches it for gevent first, so TLS sockets stay cooperative.
"""

from __future__ import annotations

import sys
import tempfile
from typing import Any

if "gevent.monkey" in sys.modules:
    from gevent import monkey

    if monkey.is_module_patched("socket") and not monkey.is_module_patched("ssl"):
        monkey.patch_ssl()

import ssl  # noqa: E402  (after gevent has patched it)

from logtrain.tlsopts import decode_ca  # noqa: E402
from logtrain.urls import DrainURL  # noqa: E402

SSLError = ssl.SSLError
SSLWantReadError = ssl.SSLWantReadError


# One client context per distinct trust configuration (CA, verification on or
# off, and who uses it: urllib3 sets options on the contexts it is given):
# building one loads the system CA store (about 3 ms and 100s of KiB), so
# thousands of drains share a handful. Contexts are never changed once built.
_CLIENT_CONTEXTS: dict[tuple[str, str, bool], ssl.SSLContext] = {}


def client_context(url: DrainURL, user: str = "syslog") -> ssl.SSLContext:
    """Verification on by default; ``ca=`` adds a CA (base64 of its PEM),
    ``insecure=true`` turns verification off. Shared by every drain with the
    same CA and verification (see _CLIENT_CONTEXTS)."""
    pem = decode_ca(url) or ""
    insecure = url.flag("insecure")
    key = (user, pem, insecure)
    ctx = _CLIENT_CONTEXTS.get(key)
    if ctx is None:
        ctx = ssl.create_default_context()
        if pem:
            try:
                ctx.load_verify_locations(cadata=pem)
            except (ssl.SSLError, ValueError) as e:
                raise ValueError(f"ca= is not a base64-encoded PEM certificate ({e})") from None
        if insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        ctx = _CLIENT_CONTEXTS.setdefault(key, ctx)
    return ctx


def client_contexts() -> int:
    """How many shared client contexts have been built (for tests and stats)."""
    return len(_CLIENT_CONTEXTS)


def _pem(value: str, setting: str) -> str:
    """PEM text as the original takes it from the environment, or a file path."""
    if value.lstrip().startswith("-----BEGIN"):
        return value
    try:
        with open(value) as f:
            return f.read()
    except OSError as e:
        raise ValueError(f"{setting}: neither PEM text nor a readable file ({e.strerror})") from None


def server_context(cfg) -> ssl.SSLContext:
    """The TLS input's context; raises ValueError naming the bad setting."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # No TLS 1.3 session tickets: a client that writes its lines and closes
    # without reading leaves the tickets unread, its kernel then answers with
    # RST instead of FIN, and the lines still in our receive buffer are lost.
    # Long-lived syslog connections gain nothing from resumption.
    ctx.num_tickets = 0
    cert = _pem(cfg.syslog_tls_cert_pem, "SYSLOG_TLS_CERT_PEM")
    key = _pem(cfg.syslog_tls_key_pem, "SYSLOG_TLS_KEY_PEM")
    # ssl loads chains only from files: a private temporary file, gone at once.
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as f:
        f.write(cert.rstrip() + "\n" + key)
        f.flush()
        try:
            ctx.load_cert_chain(f.name)
        except ssl.SSLError as e:
            raise ValueError(
                f"SYSLOG_TLS_CERT_PEM/SYSLOG_TLS_KEY_PEM: not a usable certificate and key ({e})"
            ) from None
    if cfg.syslog_tls_ca_pem:
        ca = _pem(cfg.syslog_tls_ca_pem, "SYSLOG_TLS_CA_PEM")
        try:
            ctx.load_verify_locations(cadata=ca)
        except (ssl.SSLError, ValueError) as e:
            raise ValueError(f"SYSLOG_TLS_CA_PEM: not a usable CA certificate ({e})") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def urllib3_module() -> Any:
    """urllib3, loaded only after this module has patched ssl for gevent (an
    ssl imported before the patch makes every TLS connection fail with
    "_wrap_socket() argument 'sock' must be _socket.socket"). Through
    importlib: an import sorter would move a plain ``import urllib3`` first."""
    import importlib

    return importlib.import_module("urllib3")
