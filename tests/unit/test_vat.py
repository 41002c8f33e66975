"""UK VAT on credit notes: half-up to the penny, pro-rated, capped at the original line."""

from __future__ import annotations

from decimal import Decimal

import pytest

from returnsync.domain.errors import OverCreditError
from returnsync.domain.money import Money, round_half_up
from returnsync.domain.vat import CreditedSoFar, InvoicedLine, credit_for, split_gross

D = Decimal


def test_half_a_penny_rounds_up() -> None:
    """0.005 rounds up to 0.01 and 0.0049 rounds down (HMRC VATREC12030)."""
    assert round_half_up(D("0.005")) == D("0.01")
    assert round_half_up(D("0.0049")) == D("0.00")
    assert round_half_up(D("2.675")) == D("2.68")  # float would give 2.67


def test_three_unit_line_returned_one_then_two_sums_exactly_to_the_line() -> None:
    """A 3-unit line credited as 1 + 2 units sums to the line's net and VAT to the penny."""
    line = InvoicedLine(quantity=3, unit_net=D("16.67"), unit_tax=D("3.334"), currency="GBP")
    assert line.net == Money.of("50.01", "GBP")
    assert line.tax == Money.of("10.00", "GBP")  # 3 x 3.334 = 10.002 -> 10.00
    first = credit_for(line, 1)
    assert (first.net.amount, first.tax.amount) == (D("16.67"), D("3.33"))
    second = credit_for(
        line, 2, CreditedSoFar(quantity=1, net=first.net.amount, tax=first.tax.amount)
    )
    assert (second.net.amount, second.tax.amount) == (D("33.34"), D("6.67"))
    assert first.net + second.net == line.net
    assert first.tax + second.tax == line.tax
    assert first.gross + second.gross == line.gross


def test_two_then_one_also_sums_exactly() -> None:
    """The order of partial credits does not change the total."""
    line = InvoicedLine(quantity=3, unit_net=D("20.825"), unit_tax=D("4.165"), currency="GBP")
    a = credit_for(line, 2)
    b = credit_for(line, 1, CreditedSoFar(quantity=2, net=a.net.amount, tax=a.tax.amount))
    assert a.gross + b.gross == line.gross
    assert (a.tax.amount, b.tax.amount) == (D("8.33"), D("4.17"))


def test_full_line_credit_copies_the_line() -> None:
    """Crediting every unit at once copies the original line's figures."""
    line = InvoicedLine(quantity=4, unit_net=D("8.325"), unit_tax=D("1.665"), currency="GBP")
    credit = credit_for(line, 4)
    assert (credit.net, credit.tax) == (line.net, line.tax)


def test_credit_above_what_is_left_is_refused() -> None:
    """Partial credits never exceed the original line."""
    line = InvoicedLine(quantity=2, unit_net=D("10"), unit_tax=D("2"), currency="GBP")
    with pytest.raises(OverCreditError, match="1 of 2 left"):
        credit_for(line, 2, CreditedSoFar(quantity=1, net=D("10.00"), tax=D("2.00")))
    with pytest.raises(OverCreditError):
        credit_for(line, 0)


def test_gross_split_at_twenty_percent() -> None:
    """A gross price of 24.99 holds 4.17 VAT (24.99 / 6 = 4.165 -> 4.17) and 20.82 net."""
    split = split_gross(Money.of("24.99", "GBP"), D("0.20"))
    assert (split.net.amount, split.tax.amount) == (D("20.82"), D("4.17"))


def test_money_refuses_float_and_mixed_currency() -> None:
    """Money is Decimal with a currency; floats and currency mixes are errors."""
    with pytest.raises(TypeError):
        Money(1.5, "GBP")  # type: ignore[arg-type]
    with pytest.raises(Exception, match="cannot combine GBP with EUR"):
        Money.of("1", "GBP") + Money.of("1", "EUR")
    assert Money.from_minor(2499, "GBP").amount == D("24.99")
    assert Money.of("24.99", "GBP").minor == 2499
