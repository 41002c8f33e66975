"""Returns, their lines, dispositions and the stock action each disposition means."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from returnsync.domain.money import Money
from returnsync.domain.states import ReturnState, transition

if TYPE_CHECKING:
    from datetime import datetime


class Disposition(StrEnum):
    """What the warehouse decided to do with an inspected unit (ZigZag's vocabulary)."""

    RESALEABLE = "RESALEABLE"
    RESALE_HOLD = "RESALE_HOLD"
    QUARANTINE = "QUARANTINE"
    RETURN_TO_VENDOR = "RETURN_TO_VENDOR"
    WRITE_OFF = "WRITE_OFF"
    MISSING = "MISSING"


class StockAction(StrEnum):
    """What the ERP must do with the stock of a returned unit."""

    RESTOCK = "restock"
    """Back to a saleable site, available to sell."""
    HOLD = "hold"
    """Back into stock at a non-saleable site (refurbish, quarantine, supplier return)."""
    WRITE_OFF = "write_off"
    """Not brought back into stock (Khaos 'Stock Missing / Write off')."""
    NONE = "none"
    """Nothing arrived: no stock movement and nothing to credit."""


STOCK_ACTION: dict[Disposition, StockAction] = {
    Disposition.RESALEABLE: StockAction.RESTOCK,
    Disposition.RESALE_HOLD: StockAction.HOLD,
    Disposition.QUARANTINE: StockAction.HOLD,
    Disposition.RETURN_TO_VENDOR: StockAction.HOLD,
    Disposition.WRITE_OFF: StockAction.WRITE_OFF,
    Disposition.MISSING: StockAction.NONE,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ReturnLine:
    """Units of one returned item that share one disposition (one ZigZag inspection group)."""

    line_id: str
    item_id: str
    sku: str
    quantity: int
    disposition: Disposition
    unit_price: Money  # gross, what the customer paid per unit
    condition: str = ""

    @property
    def stock_action(self) -> StockAction:
        """The ERP stock action this line's disposition means."""
        return STOCK_ACTION[self.disposition]

    @property
    def creditable(self) -> bool:
        """Whether the line earns a credit (a missing unit earns none)."""
        return self.stock_action is not StockAction.NONE and self.quantity > 0

    @property
    def gross(self) -> Money:
        """Quantity times the unit price paid."""
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True, kw_only=True)
class Return:
    """One ZigZag return as returnsync holds it: the latest confirmed snapshot plus our state."""

    tenant: str
    return_ref: str
    order_ref: str
    currency: str
    warehouse: str
    zigzag_status: str
    zigzag_updated_at: datetime
    state: ReturnState = ReturnState.OPEN
    lines: tuple[ReturnLine, ...] = field(default_factory=tuple)

    def moved_to(self, target: ReturnState) -> Return:
        """A copy in `target` state; raises IllegalTransitionError if the move is not allowed."""
        return replace(self, state=transition(self.state, target))

    @property
    def creditable_lines(self) -> tuple[ReturnLine, ...]:
        """Lines that earn a credit."""
        return tuple(line for line in self.lines if line.creditable)

    @property
    def expected_refund(self) -> Money:
        """What ZigZag says the customer is owed: the gross of every creditable line."""
        total = Money.zero(self.currency)
        for line in self.creditable_lines:
            total = total + line.gross
        return total

    def skus(self) -> frozenset[str]:
        """Every SKU on a creditable line."""
        return frozenset(line.sku for line in self.creditable_lines)


def associated_ref(retailer_code: str, return_ref: str) -> str:
    """The Khaos AssociatedRef of a return: `ZZ-<retailer>-<returnId>` (assumption K-5).

    Khaos limits it to 50 characters and forbids '#'.
    """
    ref = f"ZZ-{retailer_code}-{return_ref}".replace("#", "-")
    if len(ref) > 50:
        raise ValueError(f"AssociatedRef {ref!r} is longer than Khaos' 50 characters")
    return ref
