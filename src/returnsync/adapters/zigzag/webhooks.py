"""Authenticating ZigZag webhook deliveries (docs/assumptions.md Z-10).

ZigZag documents no signature. Per Z-10 it sends a per-retailer shared key in a header
(`X-ZigZag-Api-Key` by default); we compare it in constant time. The caller answers 401 when
this returns False (ZigZag retries 401 daily, so a misconfigured key builds a backlog, not a
loss). Parse the body only after the key checks out (`mapping.parse_envelope`).
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_HEADER = "X-ZigZag-Api-Key"


def verify_api_key(
    headers: Mapping[str, str], expected: str, header_name: str = DEFAULT_HEADER
) -> bool:
    """True when the request carries `expected` in `header_name` (matched case-insensitively).

    An empty `expected` never verifies: a retailer without a configured key is refused rather
    than left open. The comparison takes the same time wherever the keys differ.
    """
    if not expected:
        return False
    wanted = header_name.lower()
    presented = next((value for name, value in headers.items() if name.lower() == wanted), None)
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))
