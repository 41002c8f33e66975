"""StripeGateway: refunds through the official `stripe` SDK (implements ports.RefundGateway).

Wire contract: docs/assumptions.md G-1 to G-4. The SDK speaks HTTP through `_HttpxTransport`,
a small `stripe.HTTPClient` over our `adapters.http.make_client`, so timeouts are explicit and
tests can inject an `httpx.MockTransport`. The SDK's own retries (`max_network_retries`, with
Stripe's `Idempotency-Key` replay making writes safe to repeat) are the call-level retries
here; nothing else retries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import stripe
from pydantic import SecretStr

from returnsync.adapters import http
from returnsync.adapters.payments import mapping

if TYPE_CHECKING:
    from collections.abc import Mapping

    from returnsync.domain.money import Money
    from returnsync.ports import GatewayRefund, Payment

PAGE_LIMIT = 100  # refunds per list page: Stripe's maximum
SEARCH_LIMIT = 10  # payments per order we look at; an order has one, rarely a failed retry too


class _HttpxTransport(stripe.HTTPClient):
    """The SDK's HTTP client, over an httpx.Client we configure (timeouts, transport)."""

    name = "httpx"

    def __init__(self, client: httpx.Client) -> None:
        super().__init__()
        self._client = client

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        try:
            response = self._client.request(
                method.upper(), url, headers=dict(headers or {}), content=post_data
            )
        except httpx.RequestError as exc:
            # should_retry: the SDK repeats with the same Idempotency-Key, which Stripe replays.
            raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]  # untyped in the SDK
                f"network error talking to the gateway: {type(exc).__name__}", should_retry=True
            ) from exc
        return response.text, response.status_code, response.headers

    def close(self) -> None:
        self._client.close()


class StripeGateway(http.PooledClient[_HttpxTransport]):
    """One retailer's Stripe account, seen as a RefundGateway.

    `base_url` points the SDK elsewhere than api.stripe.com (the simulator, stripe-mock).
    `order_metadata_key` is the PaymentIntent metadata key holding the order number (G-3).
    Raises `returnsync.errors` ConnectorErrors as listed in `payments.mapping`.
    """

    def __init__(
        self,
        api_key: SecretStr | str,
        *,
        base_url: str | None = None,
        order_metadata_key: str = "order_number",
        max_network_retries: int = 2,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        if not key:
            raise ValueError("a gateway API key is required")
        self.order_metadata_key = order_metadata_key
        self._http = _HttpxTransport(
            http.make_client(base_url or "", timeout=timeout, transport=transport)
        )
        self._stripe = stripe.StripeClient(
            key,
            base_addresses={"api": base_url} if base_url else None,
            max_network_retries=max_network_retries,
            http_client=self._http,
        )

    def __repr__(self) -> str:
        return f"StripeGateway(order_metadata_key={self.order_metadata_key!r})"

    def find_payment(self, order_ref: str) -> Payment | None:
        """The succeeded PaymentIntent whose metadata names the order (G-3), or None.

        Stripe's search lags writes by up to a minute (more during incidents), so a payment
        made seconds ago may not be found yet. Raises AmbiguousPaymentError when several
        succeeded payments carry the order number.
        """
        query = mapping.search_query(self.order_metadata_key, order_ref)
        try:
            result = self._stripe.v1.payment_intents.search(
                params={"query": query, "limit": SEARCH_LIMIT}
            )
            intents = list(result.data)
        except stripe.StripeError as exc:
            raise mapping.connector_error(exc, write=False) from exc
        return mapping.pick_payment(
            intents, order_ref=order_ref, metadata_key=self.order_metadata_key
        )

    def refunds_for(self, payment_ref: str) -> list[GatewayRefund]:
        """Every refund on the PaymentIntent, ours and manual ones, all pages read.

        An unknown PaymentIntent is NotFoundError (Stripe answers 400 `resource_missing`).
        """
        try:
            page = self._stripe.v1.refunds.list(
                params={"payment_intent": payment_ref, "limit": PAGE_LIMIT}
            )
            refunds = list(page.auto_paging_iter())
        except stripe.StripeError as exc:
            raise mapping.connector_error(exc, write=False) from exc
        return [mapping.gateway_refund(obj, payment_ref=payment_ref) for obj in refunds]

    def refund(
        self,
        payment_ref: str,
        *,
        amount: Money,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> GatewayRefund:
        """Refund `amount` of the PaymentIntent, once per `idempotency_key` (G-1, G-2).

        Stripe replays the first answer for the same key (24 h); reusing a key with other
        parameters is RejectedByRemoteError. A lost answer is OutcomeUnknownError: read
        `refunds_for` before trying again. Raises ValueError unless `amount` is whole pence.
        """
        pence, _currency = mapping.to_wire(amount)
        if pence <= 0:
            raise ValueError(f"a refund must be positive, got {amount}")
        try:
            created = self._stripe.v1.refunds.create(
                params={"payment_intent": payment_ref, "amount": pence, "metadata": metadata},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise mapping.connector_error(exc, write=True) from exc
        return mapping.gateway_refund(created, payment_ref=payment_ref)
