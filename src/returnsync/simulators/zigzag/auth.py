"""ZigZag API tokens: HS256 JWTs that expire on the simulated clock (Z-2).

ZigZag documents `POST /token` -> JWT, valid 30 minutes, 401 on expiry. The
simulator signs with a secret made fresh for each simulator, and judges expiry
against its `SimClock` (not the wall clock), so a fast clock or
`/_sim/advance_clock` expires tokens in real seconds.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jwt

from returnsync.simulators.zigzag.errors import ZigZagError

if TYPE_CHECKING:
    from returnsync.simulators.runtime import SimClock

#: The header a 401 carries, as RFC 6750 asks.
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "Bearer"}


def unauthorized(message: str) -> ZigZagError:
    """401 with `WWW-Authenticate: Bearer`."""
    return ZigZagError(401, message, headers=UNAUTHORIZED_HEADERS)


@dataclass(frozen=True, kw_only=True)
class Claims:
    """Who a valid token speaks for."""

    username: str
    retailer_code: str


class TokenService:
    """Issues and verifies API tokens; thread-safe (immutable after construction)."""

    def __init__(self, *, clock: SimClock, ttl_seconds: int) -> None:
        self._clock = clock
        self.ttl_seconds = ttl_seconds
        self._secret = secrets.token_bytes(32)

    def issue(self, *, username: str, retailer_code: str) -> str:
        """A token for `username`, expiring `ttl_seconds` of simulated time from now."""
        issued = int(self._clock.now().timestamp())
        claims = {
            "sub": username,
            "retailerCode": retailer_code,
            "iat": issued,
            "exp": issued + self.ttl_seconds,
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> Claims:
        """The token's claims; 401 when it is malformed, forged or expired (simulated time)."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                # Time claims are judged below against the simulated clock.
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["sub", "exp", "retailerCode"],
                },
            )
        except jwt.PyJWTError as exc:
            raise unauthorized("invalid token") from exc
        if self._clock.now().timestamp() >= float(claims["exp"]):
            raise unauthorized("token expired")
        return Claims(username=str(claims["sub"]), retailer_code=str(claims["retailerCode"]))
