"""ZigZagClient: the ZigZag Returns API for one retailer (implements ports.ReturnsPlatform).

Wire contract: docs/assumptions.md Z-1 to Z-6. A JWT from `POST /token` (Z-2) is cached and
renewed shortly before `expiresIn` runs out, and once more when a call answers 401 (ZigZag's
documented expiry signal). Every call goes through `adapters.http`: errors are classified into
`returnsync.errors` and transient ones are retried a few times within seconds.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr, ValidationError

from returnsync.adapters import http
from returnsync.adapters.zigzag import schemas
from returnsync.domain.money import PENNY
from returnsync.errors import AuthenticationError, ConnectorError
from returnsync.ports import ReturnSnapshot

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from returnsync.domain.money import Money
    from returnsync.ports import Clock

log = logging.getLogger(__name__)

SYSTEM = "zigzag"
API = "/Return/api/v1"  # Z-1
PAGE_SIZE = 100  # returns per page of the updated-since sweep (Z-3: default 100, max 500)
MAX_SWEEP_ITEMS = 1_000_000  # a server that never ends a sweep is an error, not a hang
DEFAULT_TOKEN_LIFETIME = 1800  # seconds; ZigZag documents 30-minute tokens
REFRESH_MARGIN = 60.0  # seconds before expiry we renew, capped at a tenth of the lifetime


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ZigZagClient(http.PooledClient[httpx.Client]):
    """ZigZag's Returns API as one retailer (`retailer_code`) sees it.

    Raises `returnsync.errors` ConnectorErrors only: AuthenticationError when the credentials
    are refused (or a fresh token is), NotFoundError, RejectedByRemoteError,
    TransientConnectorError (after the call-level retries), OutcomeUnknownError, and a plain
    ConnectorError when ZigZag answers 2xx with a body that breaks the contract.
    """

    def __init__(
        self,
        base_url: str,
        *,
        username: str,
        password: SecretStr | str,
        retailer_code: str,
        transport: httpx.BaseTransport | None = None,
        clock: Clock | None = None,
        timeout: float = 10.0,
        retry: http.RetryPolicy | None = None,
    ) -> None:
        self.retailer_code = retailer_code
        self._username = username
        self._password = password if isinstance(password, SecretStr) else SecretStr(password)
        self._clock: Clock = clock or _SystemClock()
        self._retry = retry or http.RetryPolicy()
        self._http = http.make_client(base_url, timeout=timeout, transport=transport)
        self._token: str | None = None
        self._renew_at: datetime | None = None
        self._lock = threading.Lock()
        self.malformed_seen = 0  # sweep entries skipped because their header was unreadable

    def __repr__(self) -> str:
        return f"ZigZagClient({str(self._http.base_url)!r}, retailer_code={self.retailer_code!r})"

    # ports.ReturnsPlatform

    def get_return(self, return_ref: str) -> ReturnSnapshot:
        """The return as ZigZag holds it now (Z-4). Raises NotFoundError when unknown."""
        response = self._call(
            "GET", f"{API}/Returns/{_segment(return_ref)}", params=self._retailer()
        )
        body = _json(response)
        if not isinstance(body, dict):
            raise ConnectorError(
                f"ZigZag answered a {type(body).__name__} for a Return", system=SYSTEM
            )
        snapshot = _snapshot(body)
        if snapshot is None:
            raise ConnectorError(
                f"ZigZag answered an unreadable Return for {return_ref!r}", system=SYSTEM
            )
        return snapshot

    def returns_updated_since(self, since: datetime) -> Iterator[ReturnSnapshot]:
        """Every return with `updatedAt >= since` (Z-3), oldest change first, all pages read.

        `since` must be timezone-aware; it is sent in UTC, truncated to the second (so the
        window can only grow). Paging is by key, not by page number: after a full page the
        next request asks again from the newest `updatedAt` on it. With page numbers, a return
        changed while we paged moved to the end and shifted the rest left, so the return at a
        page boundary was never read and the sweep's cursor moved past it (found by the chaos
        run: a return whose webhooks all failed was never synced). Page numbers are used only
        while a full page does not move the key (more returns in one second than a page).
        A return changed while we page may appear twice (yielded once per distinct
        updatedAt). Entries without a readable returnId/status/updatedAt are skipped, logged
        and counted in `malformed_seen`.
        """
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        updated_from = _wire_time(since)
        seen: set[tuple[str, datetime]] = set()
        page = 1
        requests = 0
        while True:
            params = {**self._retailer(), "updatedFrom": updated_from}
            params.update({"page": str(page), "pageSize": str(PAGE_SIZE)})
            response = self._call("GET", f"{API}/Returns", params=params)
            requests += 1
            try:
                listing = schemas.ReturnsPage.model_validate(_json(response))
            except ValidationError as exc:
                raise ConnectorError(
                    f"ZigZag answered an unreadable Returns page {page}: {exc}", system=SYSTEM
                ) from exc
            newest: datetime | None = None
            for raw in listing.items:
                snapshot = _snapshot(raw)
                if snapshot is None:
                    self.malformed_seen += 1
                    # The id only: a raw Return holds the customer's name and email.
                    log.warning(
                        "skipping unreadable ZigZag return %r on page %d", raw.get("returnId"), page
                    )
                    continue
                newest = snapshot.updated_at if newest is None else max(newest, snapshot.updated_at)
                key = (snapshot.return_ref, snapshot.updated_at)
                if key not in seen:
                    seen.add(key)
                    yield snapshot
            full = len(listing.items) >= listing.pageSize
            if not listing.items or not full or page * listing.pageSize >= listing.totalCount:
                return
            if requests * listing.pageSize >= MAX_SWEEP_ITEMS:
                raise ConnectorError(
                    f"ZigZag kept answering full Returns pages ({requests} requests)", system=SYSTEM
                )
            moved = newest is not None and _wire_time(newest) > updated_from
            if moved:
                assert newest is not None  # noqa: S101 - for the type checker
                updated_from, page = _wire_time(newest), 1
            else:
                page += 1

    def record_refund(
        self, return_ref: str, *, amount: Money, refund_ref: str, credit_note: str
    ) -> None:
        """Tell ZigZag the return was refunded (Z-5). Idempotent on `refund_ref`.

        ZigZag answers 200 to the same reference again; a 409 means the return was refunded
        under another reference and surfaces as RejectedByRemoteError(status=409). Raises
        ValueError if `amount` is not a positive, whole number of pence.
        """
        body = {
            "retailerCode": self.retailer_code,
            "amount": _decimal_string(amount),
            "currency": amount.currency,
            "refundReference": refund_ref,
            "creditNoteNumber": credit_note,
        }
        self._call("PUT", f"{API}/Returns/{_segment(return_ref)}/Refund", json=body)

    # plumbing

    def _retailer(self) -> dict[str, str]:
        return {"retailerCode": self.retailer_code}

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        def once() -> httpx.Response:
            response = self._send(method, path, params=params, json=json, fresh=False)
            if response.status_code == 401:
                # ZigZag's token expired early (or was revoked): renew once, try once more.
                response = self._send(method, path, params=params, json=json, fresh=True)
            if response.is_success:
                return response
            raise http.classify(response, SYSTEM, now=self._clock.now())

        return http.call_with_retry(once, self._retry)

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        json: Any,
        fresh: bool,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._bearer(fresh=fresh)}"}
        try:
            return self._http.request(method, path, params=params, json=json, headers=headers)
        except httpx.RequestError as exc:
            raise http.classify(exc, SYSTEM) from exc

    def _bearer(self, *, fresh: bool) -> str:
        with self._lock:
            now = self._clock.now()
            if fresh or self._token is None or self._renew_at is None or now >= self._renew_at:
                self._token, lifetime = self._fetch_token()
                margin = min(REFRESH_MARGIN, lifetime / 10)
                self._renew_at = now + timedelta(seconds=lifetime - margin)
            return self._token

    def _fetch_token(self) -> tuple[str, float]:
        credentials = {"username": self._username, "password": self._password.get_secret_value()}
        try:
            # Issuing a token twice is harmless, so a lost answer is simply transient.
            response = self._http.post("/token", json=credentials)
        except httpx.RequestError as exc:
            raise http.classify(exc, SYSTEM, idempotent=True) from exc
        if response.status_code in {401, 403}:
            raise AuthenticationError(
                f"ZigZag refused the API credentials of user {self._username!r} "
                f"({response.status_code})",
                system=SYSTEM,
            )
        if not response.is_success:
            raise http.classify(response, SYSTEM, idempotent=True, now=self._clock.now())
        try:
            token = schemas.Token.model_validate(_json(response))
        except ValidationError as exc:
            raise ConnectorError("ZigZag answered /token without a token", system=SYSTEM) from exc
        return token.token, float(token.expiresIn or DEFAULT_TOKEN_LIFETIME)


def _decimal_string(amount: Money) -> str:
    """`12.34`: Z-5 wants a 2 dp decimal string; refuses fractions of a penny and non-positives."""
    if amount.amount <= 0:
        raise ValueError(f"a refund must be positive, got {amount}")
    _ = amount.minor  # raises ValueError unless the amount is whole pence
    return str(amount.amount.quantize(PENNY))


def _segment(value: str) -> str:
    return quote(value, safe="")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise ConnectorError(
            f"ZigZag answered {response.status_code} with a body that is not JSON", system=SYSTEM
        ) from exc


def _snapshot(raw: dict[str, Any]) -> ReturnSnapshot | None:
    try:
        header = schemas.ReturnHeader.model_validate(raw)
    except ValidationError:
        return None
    return ReturnSnapshot(
        return_ref=header.returnId, status=header.status, updated_at=header.updatedAt, raw=raw
    )


def _wire_time(at: datetime) -> str:
    """A time as `updatedFrom` takes it: UTC, to the second, with Z."""
    return at.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
