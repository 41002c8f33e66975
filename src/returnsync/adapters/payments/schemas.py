"""The subset of Stripe's objects we read (docs/assumptions.md G-1), field names as Stripe's.

Amounts are integers in minor units (pence) and currencies lower-case, as on Stripe's wire.
Unknown fields are ignored: the SDK objects carry many more.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class PaymentIntent(_Wire):
    """A Stripe PaymentIntent (the payment of an order)."""

    id: str = Field(min_length=1)
    amount: int = Field(ge=0)
    amount_received: int | None = Field(default=None, ge=0)
    currency: str = Field(min_length=3, max_length=3)
    status: str
    metadata: dict[str, str] = Field(default_factory=dict)


class Refund(_Wire):
    """A Stripe Refund. `payment_intent` is None for refunds made against a bare charge."""

    id: str = Field(min_length=1)
    amount: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    status: str | None = None
    payment_intent: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
