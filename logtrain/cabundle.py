"""Where TLS drains find the CA certificates that verify their servers.

The static executable carries OpenSSL but no CA bundle, and its OpenSSL looks
in the directory it was built for (Debian's /usr/lib/ssl), which a scratch
image, a chroot or another distribution does not have. So, unless the
operator names a bundle with OpenSSL's own SSL_CERT_FILE (or a directory with
SSL_CERT_DIR), the first of the distributions' usual bundle files that exists
is exported as SSL_CERT_FILE before any TLS context is made; OpenSSL, and with
it ssl.create_default_context and urllib3, then read it. A drain's own ``ca=``
is added on top. Nothing here imports ssl (4 MB): the agent loads it only when
TLS is used.
"""

from __future__ import annotations

import os

# Debian, Ubuntu, Alpine (ca-certificates) and the scratch image
# (packaging/Dockerfile); Fedora, RHEL; openSUSE; Alpine, BSD-like layouts.
CANDIDATES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
)


def configure(environ: os._Environ | dict = os.environ) -> str | None:
    """Exports SSL_CERT_FILE when the operator set neither it nor SSL_CERT_DIR
    and a usual bundle exists; returns the bundle file in use (None: OpenSSL's
    built-in default, possibly empty)."""
    if environ.get("SSL_CERT_FILE") or environ.get("SSL_CERT_DIR"):
        return environ.get("SSL_CERT_FILE") or None
    for path in CANDIDATES:
        if os.path.isfile(path):
            environ["SSL_CERT_FILE"] = path
            return path
    return None
