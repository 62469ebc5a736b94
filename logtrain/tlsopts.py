"""TLS options of drain URLs checked without ssl: admitting a route must not
import ssl (about 4 MB) or load certificates, so ``ca=`` is decoded and its
PEM armour checked here; OpenSSL parses it when the drain is first used
(logtrain/tls.py)."""

from __future__ import annotations

import base64
import binascii
import re

from logtrain.urls import DrainURL

_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----")


def decode_ca(url: DrainURL) -> str | None:
    """The PEM text of ``ca=`` (base64 of one or more PEM certificates), or
    None when there is none; ValueError when it is not that."""
    ca = url.query.get("ca")
    if not ca:
        return None
    try:
        # a '+' of the base64 alphabet arrives as a space when not URL-escaped
        pem = base64.b64decode(ca.replace(" ", "+").replace("-", "+").replace("_", "/"),
                               validate=True).decode("ascii")
        blocks = _PEM_CERT.findall(pem)
        if not blocks:
            raise ValueError("no -----BEGIN CERTIFICATE----- block")
        for b in blocks:
            base64.b64decode("".join(b.split()), validate=True)
    except (binascii.Error, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"ca= is not a base64-encoded PEM certificate ({e})") from None
    return pem
