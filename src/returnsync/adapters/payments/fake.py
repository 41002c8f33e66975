"""FakeGateway: an in-memory RefundGateway for tests of services and the engine.

It keeps the promises StripeGateway keeps (the same contract suite runs on both): one refund
per idempotency key, the key replayed with other parameters is refused, refunds never exceed
the payment (a refusal is kept under its key and answered again, as Stripe keeps the
response of a request that began executing), unknown payments are NotFoundError.
`fail_next` makes the next calls raise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from returnsync.domain.money import Money
from returnsync.errors import ConnectorError, NotFoundError, RejectedByRemoteError
from returnsync.ports import GatewayRefund, Payment

SYSTEM = "gateway"


@dataclass(frozen=True, slots=True)
class _Request:
    payment_ref: str
    amount: Money
    metadata: tuple[tuple[str, str], ...]


@dataclass
class FakeGateway:
    """Payments and refunds held in memory; `refunds` lists every refund, in creation order."""

    payments: dict[str, Payment] = field(default_factory=dict)
    refunds: list[GatewayRefund] = field(default_factory=list)
    fail_next: list[ConnectorError] = field(default_factory=list)
    _by_key: dict[str, tuple[_Request, GatewayRefund | RejectedByRemoteError]] = field(
        default_factory=dict, init=False, repr=False
    )

    def add_payment(self, *, order_ref: str, amount: Money, payment_ref: str = "") -> Payment:
        """Record a succeeded payment of an order; returns it."""
        ref = payment_ref or f"pi_fake_{len(self.payments) + 1:05d}"
        paid = Payment(payment_ref=ref, amount=amount, order_ref=order_ref)
        self.payments[ref] = paid
        return paid

    def add_manual_refund(self, payment_ref: str, amount: Money) -> GatewayRefund:
        """A refund made by hand in the gateway dashboard (no return_ref metadata, G-4)."""
        self._check_refundable(payment_ref, amount)
        return self._record(payment_ref, amount, {})

    def find_payment(self, order_ref: str) -> Payment | None:
        """The payment of the order, or None."""
        self._maybe_fail()
        return next((p for p in self.payments.values() if p.order_ref == order_ref), None)

    def refunds_for(self, payment_ref: str) -> list[GatewayRefund]:
        """Every refund on the payment; NotFoundError for a payment it does not know."""
        self._maybe_fail()
        if payment_ref not in self.payments:
            raise NotFoundError(f"no such payment: {payment_ref!r}", system=SYSTEM, status=404)
        return [r for r in self.refunds if r.payment_ref == payment_ref]

    def refund(
        self,
        payment_ref: str,
        *,
        amount: Money,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> GatewayRefund:
        """Refund once per key; the same key with other parameters is RejectedByRemoteError."""
        self._maybe_fail()
        request = _Request(payment_ref, amount, tuple(sorted(metadata.items())))
        if idempotency_key in self._by_key:
            first, answer = self._by_key[idempotency_key]
            if first != request:
                raise RejectedByRemoteError(
                    f"idempotency key {idempotency_key!r} was used with other parameters",
                    system=SYSTEM,
                    status=400,
                )
            if isinstance(answer, RejectedByRemoteError):
                raise answer
            return answer
        try:
            self._check_refundable(payment_ref, amount)
        except RejectedByRemoteError as refused:
            if refused.status == 400:  # refused while executing: Stripe keeps the answer
                self._by_key[idempotency_key] = (request, refused)
            raise
        refund = self._record(payment_ref, amount, metadata)
        self._by_key[idempotency_key] = (request, refund)
        return refund

    def _check_refundable(self, payment_ref: str, amount: Money) -> None:
        paid = self.payments.get(payment_ref)
        if paid is None:
            raise NotFoundError(f"no such payment: {payment_ref!r}", system=SYSTEM, status=404)
        if amount.amount <= 0:
            raise ValueError(f"a refund must be positive, got {amount}")
        _ = amount.minor  # ValueError unless whole pence, as the real gateway
        refunded = Money.zero(paid.amount.currency)
        for earlier in (r for r in self.refunds if r.payment_ref == payment_ref):
            refunded = refunded + earlier.amount
        if paid.amount < refunded + amount:
            raise RejectedByRemoteError(
                f"refund of {amount} exceeds what is left of {paid.amount} ({refunded} refunded)",
                system=SYSTEM,
                status=400,
            )

    def _record(self, payment_ref: str, amount: Money, metadata: dict[str, str]) -> GatewayRefund:
        refund = GatewayRefund(
            refund_ref=f"re_fake_{len(self.refunds) + 1:05d}",
            payment_ref=payment_ref,
            amount=amount,
            status="succeeded",
            metadata=dict(metadata),
        )
        self.refunds.append(refund)
        return refund

    def _maybe_fail(self) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)
