"""A snapshot of the three systems at one moment: what reconciliation decides over.

Each record mirrors one row of the canonical export files
(docs/reconciliation-files.md). Money is `Decimal` to the penny with its currency;
times are timezone-aware UTC. Text keys are kept as exported; the rules normalise
codes through `recon.linking`, the one place that says how records link.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime
    from decimal import Decimal


@dataclass(frozen=True, kw_only=True)
class ReturnLine:
    """One line of a ZigZag return (returns file).

    `quantity` is what the customer returns against the original order line (ZigZag
    never lets it exceed what was invoiced); `received_quantity` is what the
    warehouse received; `refund_amount` is the gross ZigZag says is owed for the
    line; `disposition` is blank until the line is inspected.
    """

    tenant: str
    return_ref: str
    order_ref: str
    line_id: str
    sku: str
    quantity: int
    received_quantity: int
    disposition: str
    refund_amount: Decimal
    currency: str
    status: str = ""
    received_at: datetime | None = None
    processed_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class CreditLine:
    """One line of a Khaos Control credit note (credits file)."""

    tenant: str
    credit_note: str
    associated_ref: str
    order_ref: str
    stock_code: str
    quantity: int
    net: Decimal
    vat: Decimal
    gross: Decimal
    currency: str
    issued_at: datetime


@dataclass(frozen=True, kw_only=True)
class StockMovement:
    """One Khaos Control stock movement (stock file); `quantity` is signed."""

    tenant: str
    stock_code: str
    site: str
    quantity: int
    reason: str
    reference: str
    moved_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Refund:
    """One payment-gateway refund (refunds file).

    `return_ref` and `credit_note` come from the refund's metadata; both are blank
    on a refund made by hand in the gateway dashboard (a goodwill refund).
    """

    tenant: str
    refund_id: str
    payment_ref: str
    amount: Decimal
    currency: str
    status: str
    created_at: datetime
    return_ref: str = ""
    credit_note: str = ""


@dataclass(frozen=True, kw_only=True)
class SkuLink:
    """A ZigZag SKU that stands for a Khaos Control stock code (SKU map file)."""

    tenant: str
    sku: str
    stock_code: str


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """Everything the rules look at, taken at `as_of`.

    `sku_links` None means "no SKU map": a SKU is its own stock code.
    """

    as_of: datetime
    returns: tuple[ReturnLine, ...] = ()
    credits: tuple[CreditLine, ...] = ()
    stock: tuple[StockMovement, ...] = ()
    refunds: tuple[Refund, ...] = ()
    sku_links: tuple[SkuLink, ...] | None = field(default=None)
