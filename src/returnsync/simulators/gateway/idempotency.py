"""Stripe's idempotency layer: one stored response per (account, key), kept 24 hours.

Behaviour, from Stripe's documentation of idempotent requests:

- the first request with a key runs; its status and body are saved and replayed to
  every later request with the same key (with `Idempotent-Replayed: true`);
- the same key with other parameters, or on another endpoint, is a 400 `idempotency_error`;
- the same key while the first request is still executing is a 409 `idempotency_error`
  (code `idempotency_key_in_use`);
- a request that fails validation saves nothing (the key is released);
- keys are scoped to the account and may be pruned once 24 hours old (simulated clock).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from returnsync.simulators.gateway.wire import Params, StripeError

if TYPE_CHECKING:
    from datetime import datetime

    from returnsync.simulators.runtime import SimClock

KEY_TTL = timedelta(hours=24)  # Stripe prunes keys once they are at least 24 hours old
MAX_KEY_LENGTH = 255  # characters, Stripe's limit


@dataclass(frozen=True, kw_only=True)
class StoredResponse:
    """The saved outcome of the first request made with a key."""

    status: int
    body: dict[str, Any]
    request_id: str


@dataclass(kw_only=True)
class _Record:
    endpoint: str
    params: Params
    created: datetime
    request_id: str
    response: StoredResponse | None = None


class IdempotencyStore:
    """Claims, completes and replays idempotency keys; safe to call from any thread."""

    def __init__(self, clock: SimClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[tuple[str, str], _Record] = {}

    def claim(
        self, *, account_id: str, key: str, endpoint: str, params: Params, request_id: str
    ) -> StoredResponse | None:
        """Start a request under `key`, or return the response to replay.

        None means the caller runs the request and must then `complete` (or `release`)
        the key. Raises `StripeError` for a key reused with other parameters (400) or a
        key whose first request is still running (409).
        """
        if len(key) > MAX_KEY_LENGTH:
            raise StripeError(
                400,
                f"Idempotency keys can be at most {MAX_KEY_LENGTH} characters long.",
                type_="idempotency_error",
            )
        now = self._clock.now()
        with self._lock:
            record = self._records.get((account_id, key))
            if record is not None and now - record.created >= KEY_TTL:
                record = None
            if record is None:
                self._records[account_id, key] = _Record(
                    endpoint=endpoint, params=params, created=now, request_id=request_id
                )
                return None
        if record.endpoint != endpoint:
            raise StripeError(
                400,
                "Keys for idempotent requests can only be used for the same endpoint they "
                f"were first used for ('{record.endpoint}' vs '{endpoint}'). Try using a key "
                f"other than '{key}' if you meant to execute a different request.",
                type_="idempotency_error",
            )
        if record.params != params:
            raise StripeError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
                type_="idempotency_error",
            )
        if record.response is None:
            raise StripeError(
                409,
                "There is currently another in-progress request using this idempotent key "
                "(that probably means you submitted twice, and the other request is still "
                f"going through): '{key}'. Please try again later.",
                type_="idempotency_error",
                code="idempotency_key_in_use",
            )
        return record.response

    def complete(self, *, account_id: str, key: str, status: int, body: dict[str, Any]) -> None:
        """Save the response of the request that claimed `key`."""
        with self._lock:
            record = self._records[account_id, key]
            record.response = StoredResponse(status=status, body=body, request_id=record.request_id)

    def release(self, *, account_id: str, key: str) -> None:
        """Forget a claimed key whose request failed validation (nothing was saved)."""
        with self._lock:
            self._records.pop((account_id, key), None)

    def clear(self) -> None:
        """Forget every key (simulator reset)."""
        with self._lock:
            self._records.clear()

    def snapshot(self) -> list[dict[str, Any]]:
        """Live keys, oldest first: key, account, endpoint, status (None while in flight)."""
        now = self._clock.now()
        with self._lock:
            return [
                {
                    "key": key,
                    "account": account_id,
                    "endpoint": record.endpoint,
                    "status": record.response.status if record.response else None,
                    "request_id": record.request_id,
                    "created": int(record.created.timestamp()),
                }
                for (account_id, key), record in self._records.items()
                if now - record.created < KEY_TTL
            ]
