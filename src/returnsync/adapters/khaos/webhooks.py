"""Authenticating KCC's calls to our channel endpoints (reference §1.1.1: HTTP Basic).

KCC sends the Username/Password set on the channel with every request (config fetch, pulls,
pushes). The web layer answers 401 when `verify_basic_auth` is False, and must not log the
header.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping


def verify_basic_auth(headers: Mapping[str, str], username: str, password: str) -> bool:
    """True when `Authorization: Basic ...` carries exactly `username:password`.

    Header name matched case-insensitively; credentials compared in constant time. Empty
    configured credentials never verify.
    """
    if not username or not password:
        return False
    presented = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, encoded = presented.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = f"{username}:{password}".encode()
    return hmac.compare_digest(decoded, expected)
