"""UK VAT arithmetic of the simulated Khaos Control (the simulator's own, K-10).

HMRC's "round" is half-up to the penny (VATREC12030); the round-down concession is
not for retailers (VATREC12020). Khaos keeps a sales order line's unit net and unit
tax unrounded (the courier sample carries `UnitTax 3.334`), so:

- an order line is worth `net = round_half_up(unit_net * qty)` and
  `tax = round_half_up(unit_tax * qty)`;
- a credit for `q` of those units is pro-rated from the *unrounded* unit figures,
  `round_half_up(unit_net * q)` and `round_half_up(unit_tax * q)`;
- cumulative credited net and VAT never exceed the original line: each credit is
  capped at what is left, and the credit that returns the last unit takes exactly
  the remainder, so 1 + 2 units of a 3-unit line sum to the line to the penny.

`per_invoice` rounding (a simulator setting) rounds VAT once per document instead of
once per line; net is still per line.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable

PENNY = Decimal("0.01")
ZERO = Decimal("0.00")

Rounding = Literal["per_line", "per_invoice"]
ROUNDING_MODES: tuple[Rounding, ...] = ("per_line", "per_invoice")


def round_half_up(amount: Decimal) -> Decimal:
    """Round to the penny, halves away from zero (HMRC's "nearest")."""
    return amount.quantize(PENNY, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Amounts:
    """Net and VAT of a line or a document, in pounds to the penny."""

    net: Decimal
    tax: Decimal

    @property
    def gross(self) -> Decimal:
        """Net plus VAT."""
        return self.net + self.tax


def line_amounts(unit_net: Decimal, unit_tax: Decimal, quantity: Decimal) -> Amounts:
    """What an order line of `quantity` units is worth (rounded once, per line)."""
    return Amounts(round_half_up(unit_net * quantity), round_half_up(unit_tax * quantity))


@dataclass(frozen=True)
class Credited:
    """What has already been credited against one order line."""

    quantity: Decimal = ZERO
    net: Decimal = ZERO
    tax: Decimal = ZERO

    def plus(self, quantity: Decimal, amounts: Amounts) -> Credited:
        """The running total after one more credit."""
        return Credited(self.quantity + quantity, self.net + amounts.net, self.tax + amounts.tax)


def credit_line(
    *,
    unit_net: Decimal,
    unit_tax: Decimal,
    line_quantity: Decimal,
    quantity: Decimal,
    credited: Credited,
) -> Amounts:
    """Net and VAT to credit for `quantity` more units of an order line (K-10).

    Raises ValueError when the credit would exceed the units sold on the line.
    """
    if quantity <= 0:
        raise ValueError(f"credit quantity must be positive, got {quantity}")
    if credited.quantity + quantity > line_quantity:
        raise ValueError(
            f"cannot credit {quantity} units: {credited.quantity} of {line_quantity} "
            "already credited"
        )
    line = line_amounts(unit_net, unit_tax, line_quantity)
    net_left = line.net - credited.net
    tax_left = line.tax - credited.tax
    if credited.quantity + quantity == line_quantity:
        return Amounts(net_left, tax_left)
    return Amounts(
        min(round_half_up(unit_net * quantity), net_left),
        min(round_half_up(unit_tax * quantity), tax_left),
    )


def document_tax(unrounded: Iterable[Decimal]) -> Decimal:
    """VAT of a document rounded once on its total (`per_invoice`)."""
    return round_half_up(sum(unrounded, Decimal(0)))


def credit_document_tax(
    *, unrounded: Iterable[Decimal], original_tax: Decimal, credited_tax: Decimal, completes: bool
) -> Decimal:
    """A credit note's VAT under `per_invoice` rounding, capped by the original document.

    `original_tax` is the sales order's VAT rounded on its total, `credited_tax` what
    earlier credit notes took from it; the credit that completes the order takes the
    remainder.
    """
    left = original_tax - credited_tax
    if completes:
        return left
    return min(document_tax(unrounded), left)
