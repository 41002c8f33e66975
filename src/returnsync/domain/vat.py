"""UK VAT on credit notes: half-up to the penny, pro-rated from unrounded unit figures.

The rules (HMRC VATREC12030; reference/khaos-control.md §5.11):
- an invoiced line keeps its unit net and unit VAT unrounded (e.g. 3.334);
- the line's net and VAT are `round_half_up(unit × quantity)`;
- a credit for part of a line is pro-rated from the unrounded unit figures and
  rounded half-up;
- credits on one line never add up to more than the line: the credit that
  returns the last unit takes exactly what is left, so 1 + 2 units of a
  3-unit line sum to the line to the penny.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from returnsync.domain.errors import OverCreditError
from returnsync.domain.money import Money, round_half_up


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoicedLine:
    """One line of the original sales invoice, as the ERP holds it."""

    quantity: int
    unit_net: Decimal  # unrounded, as invoiced
    unit_tax: Decimal  # unrounded, as invoiced (3 dp or more)
    currency: str

    @property
    def net(self) -> Money:
        """Line net, rounded half-up."""
        return Money(round_half_up(self.unit_net * self.quantity), self.currency)

    @property
    def tax(self) -> Money:
        """Line VAT, rounded half-up."""
        return Money(round_half_up(self.unit_tax * self.quantity), self.currency)

    @property
    def gross(self) -> Money:
        """Line net plus line VAT."""
        return self.net + self.tax


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditAmounts:
    """Net, VAT and gross of one credit-note line."""

    quantity: int
    net: Money
    tax: Money

    @property
    def gross(self) -> Money:
        """Net plus VAT."""
        return self.net + self.tax


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditedSoFar:
    """What earlier credit notes already credited against one invoiced line."""

    quantity: int = 0
    net: Decimal = Decimal("0.00")
    tax: Decimal = Decimal("0.00")


def credit_for(
    line: InvoicedLine, quantity: int, already: CreditedSoFar | None = None
) -> CreditAmounts:
    """The credit for `quantity` units of `line`, given what was credited before.

    Raises OverCreditError when `quantity` is more than the units left on the line.
    """
    done = already or CreditedSoFar()
    left = line.quantity - done.quantity
    if quantity <= 0 or quantity > left:
        raise OverCreditError(
            f"cannot credit {quantity} unit(s): {left} of {line.quantity} left on the line"
        )
    if quantity == left:
        # The last credit takes exactly the remainder, so the credits sum to the line.
        net = line.net.amount - done.net
        tax = line.tax.amount - done.tax
    else:
        net = min(round_half_up(line.unit_net * quantity), line.net.amount - done.net)
        tax = min(round_half_up(line.unit_tax * quantity), line.tax.amount - done.tax)
    return CreditAmounts(
        quantity=quantity, net=Money(net, line.currency), tax=Money(tax, line.currency)
    )


def split_gross(gross: Money, rate: Decimal) -> CreditAmounts:
    """Split a VAT-inclusive amount at `rate` (e.g. Decimal("0.20")): VAT rounded half-up.

    Used where only a gross price is known (B2C): `vat = round(gross × r / (1 + r))`.
    """
    tax = round_half_up(gross.amount * rate / (1 + rate))
    return CreditAmounts(
        quantity=1, net=Money(gross.amount - tax, gross.currency), tax=Money(tax, gross.currency)
    )
