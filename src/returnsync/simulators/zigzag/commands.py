"""Validated inputs to the simulator's state: small frozen value objects.

Routes and the scenario generator turn wire bodies into these; `ZigZagState`
and `Catalog` take nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from decimal import Decimal

    from returnsync.simulators.zigzag.model import Condition, Disposition


@dataclass(frozen=True, kw_only=True)
class NewReturnItem:
    """One line of a return being created (admin API or scenario)."""

    sku: str
    quantity: int
    return_reason_id: int | None = None
    return_reason: str | None = None
    return_option: str = "Refund"


@dataclass(frozen=True, kw_only=True)
class NewInspection:
    """One unit group being inspected."""

    quantity: int
    condition: Condition
    disposition: Disposition
    notes: str = ""


@dataclass(frozen=True, kw_only=True)
class RefundOutcome:
    """The body of `PUT .../Refund` (Z-5), validated."""

    amount: Decimal
    currency: str
    refund_reference: str
    credit_note_number: str | None


@dataclass(frozen=True, kw_only=True)
class StockRow:
    """One `exchangeStocks[]` item that passed shape validation; `index` is its position."""

    index: int
    sku: str
    warehouse_dc_code: str
    available_quantity: int
