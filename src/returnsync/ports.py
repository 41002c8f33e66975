"""The roles returnsync needs from the outside world (Protocols), named for the role.

Adapters implement them (`adapters/zigzag`, `adapters/payments`, ...). Services and the
engine depend only on these. Errors raised by adapters are `ConnectorError`s (see
`returnsync.errors`): transient ones are retried by the engine, the rest become exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from returnsync.domain.money import Money


@dataclass(frozen=True, slots=True, kw_only=True)
class ReturnSnapshot:
    """A ZigZag return as its API describes it: the raw JSON and when it last changed."""

    return_ref: str
    status: str
    updated_at: datetime
    raw: dict[str, Any]


class ReturnsPlatform(Protocol):
    """ZigZag, seen from one retailer (tenant)."""

    def get_return(self, return_ref: str) -> ReturnSnapshot:
        """The return as ZigZag holds it now. Raises NotFoundError if ZigZag does not know it."""
        ...

    def returns_updated_since(self, since: datetime) -> Iterator[ReturnSnapshot]:
        """Every return whose last change is at or after `since`, oldest change first."""
        ...

    def record_refund(
        self, return_ref: str, *, amount: Money, refund_ref: str, credit_note: str
    ) -> None:
        """Tell ZigZag the return was refunded. Idempotent on `refund_ref`."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Payment:
    """The gateway payment of an order."""

    payment_ref: str
    amount: Money
    order_ref: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayRefund:
    """A refund at the gateway; `metadata` tells ours (return_ref, credit_note) from manual ones."""

    refund_ref: str
    payment_ref: str
    amount: Money
    status: str
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def manual(self) -> bool:
        """True for a refund made by hand (a CX goodwill refund): no return_ref metadata."""
        return not self.metadata.get("return_ref")


class RefundGateway(Protocol):
    """The payment gateway of one retailer."""

    def find_payment(self, order_ref: str) -> Payment | None:
        """The payment for an order, or None when the gateway has none."""
        ...

    def refunds_for(self, payment_ref: str) -> list[GatewayRefund]:
        """Every refund on the payment, ours and manual ones."""
        ...

    def refund(
        self,
        payment_ref: str,
        *,
        amount: Money,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> GatewayRefund:
        """Refund `amount`. Replaying the same key returns the same refund, never a second one."""
        ...


class Notifier(Protocol):
    """Where alerts go (console, email, Slack...)."""

    def alert(self, *, tenant: str, subject: str, body: str, severity: str) -> None:
        """Send one alert. Must not raise for delivery problems: log and count them."""
        ...


class Clock(Protocol):
    """The time, injected so tests and simulations control it."""

    def now(self) -> datetime:
        """Now, timezone-aware UTC."""
        ...
