"""Stripe wire -> ports values, and Stripe errors -> returnsync ConnectorErrors (G-1 to G-4).

Error mapping (the SDK raises; we translate, chaining the original):

    stripe.APIConnectionError         write: OutcomeUnknownError   read: TransientConnectorError
    stripe.RateLimitError             TransientConnectorError (.retry_after from Retry-After)
    stripe.APIError 5xx/409/no status TransientConnectorError
    stripe.InvalidRequestError 404    NotFoundError
      or code resource_missing        NotFoundError (Stripe's 400 for a parameter naming nothing)
    stripe.InvalidRequestError other  RejectedByRemoteError(.status, .body)
    stripe.IdempotencyError           RejectedByRemoteError (same key, different parameters)
    stripe.CardError, other APIError  RejectedByRemoteError
    stripe.AuthenticationError        AuthenticationError
    stripe.PermissionError            AuthenticationError (a restricted key lacks a permission)
    any other stripe.StripeError      ConnectorError
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import stripe
from pydantic import ValidationError

from returnsync.adapters import http
from returnsync.adapters.payments import schemas
from returnsync.domain.money import Money
from returnsync.errors import (
    AuthenticationError,
    ConnectorError,
    NotFoundError,
    OutcomeUnknownError,
    RejectedByRemoteError,
    TransientConnectorError,
)
from returnsync.ports import GatewayRefund, Payment

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    _Object = Mapping[str, Any] | stripe.StripeObject  # an SDK object or its plain dict

SYSTEM = "gateway"

_M = TypeVar("_M", schemas.PaymentIntent, schemas.Refund)


class AmbiguousPaymentError(ConnectorError):
    """More than one succeeded payment carries the order number; returnsync will not guess."""


def to_wire(amount: Money) -> tuple[int, str]:
    """(pence, lower-case currency) for Stripe. Raises ValueError unless whole pence."""
    return amount.minor, amount.currency.lower()


def from_wire(amount: int, currency: str) -> Money:
    """Money from Stripe's integer minor units and lower-case currency."""
    return Money.from_minor(amount, currency.upper())


def search_query(metadata_key: str, order_ref: str) -> str:
    """The Stripe search query for payments of an order (G-3), quotes escaped.

    `metadata['order_number']:'ORD-10001'`
    """
    return f"metadata['{_quote(metadata_key)}']:'{_quote(order_ref)}'"


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def payment(obj: _Object, *, metadata_key: str) -> Payment:
    """The Payment of a Stripe PaymentIntent: what was received (or the amount, before capture)."""
    return _payment(_validate(schemas.PaymentIntent, obj), metadata_key)


def _payment(intent: schemas.PaymentIntent, metadata_key: str) -> Payment:
    received = intent.amount_received or intent.amount
    return Payment(
        payment_ref=intent.id,
        amount=from_wire(received, intent.currency),
        order_ref=intent.metadata.get(metadata_key, ""),
    )


def pick_payment(
    intents: Sequence[_Object], *, order_ref: str, metadata_key: str
) -> Payment | None:
    """The one succeeded PaymentIntent whose metadata names the order, None when there is none.

    Raises AmbiguousPaymentError when several succeeded payments match: returnsync never
    guesses which one to refund.
    """
    parsed = [_validate(schemas.PaymentIntent, obj) for obj in intents]
    found = [
        _payment(intent, metadata_key)
        for intent in parsed
        if intent.status == "succeeded" and intent.metadata.get(metadata_key) == order_ref
    ]
    if len(found) > 1:
        refs = ", ".join(p.payment_ref for p in found)
        raise AmbiguousPaymentError(
            f"order {order_ref!r} has {len(found)} succeeded payments ({refs})", system=SYSTEM
        )
    return found[0] if found else None


def gateway_refund(obj: _Object, *, payment_ref: str = "") -> GatewayRefund:
    """The GatewayRefund of a Stripe Refund; `payment_ref` fills in a refund without one."""
    refund = _validate(schemas.Refund, obj)
    return GatewayRefund(
        refund_ref=refund.id,
        payment_ref=refund.payment_intent or payment_ref,
        amount=from_wire(refund.amount, refund.currency),
        status=refund.status or "",
        metadata=dict(refund.metadata),
    )


def _validate(model: type[_M], obj: _Object) -> _M:
    data = obj.to_dict() if isinstance(obj, stripe.StripeObject) else dict(obj)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConnectorError(
            f"the gateway answered an unreadable {model.__name__}: {exc}", system=SYSTEM
        ) from exc


def connector_error(exc: stripe.StripeError, *, write: bool) -> ConnectorError:
    """The ConnectorError a Stripe SDK error means; `write` for calls that change state."""
    status = exc.http_status
    message = f"gateway: {type(exc).__name__}: {exc.user_message or exc}"
    body = _body(exc)
    if isinstance(exc, stripe.APIConnectionError):
        if write:
            return OutcomeUnknownError(message + "; the call may have been applied", system=SYSTEM)
        return TransientConnectorError(message, system=SYSTEM)
    if isinstance(exc, stripe.RateLimitError):
        return TransientConnectorError(message, system=SYSTEM, retry_after=_retry_after(exc))
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return AuthenticationError(message, system=SYSTEM)
    if isinstance(exc, stripe.InvalidRequestError) and (
        status == 404 or exc.code == "resource_missing"
    ):
        return NotFoundError(message, system=SYSTEM, status=status or 404, body=body)
    if isinstance(exc, stripe.APIError) and (status is None or status >= 500 or status == 409):
        return TransientConnectorError(message, system=SYSTEM, retry_after=_retry_after(exc))
    if isinstance(
        exc,
        stripe.InvalidRequestError | stripe.IdempotencyError | stripe.CardError | stripe.APIError,
    ):
        return RejectedByRemoteError(message, system=SYSTEM, status=status or 0, body=body)
    return ConnectorError(message, system=SYSTEM)


def _body(exc: stripe.StripeError) -> str:
    return (exc.http_body or "")[: http.BODY_LIMIT]


def _retry_after(exc: stripe.StripeError) -> float | None:
    headers = exc.headers or {}
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    return http.retry_after_seconds(value)
