"""Money: an exact Decimal amount with its ISO 4217 currency. Never float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from returnsync.domain.errors import CurrencyMismatchError

PENNY = Decimal("0.01")


def round_half_up(value: Decimal, exponent: Decimal = PENNY) -> Decimal:
    """Round the UK way (HMRC VATREC12030): half a penny or more rounds up, less rounds down."""
    return value.quantize(exponent, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in a currency, held exactly to the penny (2 dp) or finer when unrounded."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError(f"Money needs a Decimal, got {type(self.amount).__name__}")
        if len(self.currency) != 3 or not self.currency.isupper():
            raise ValueError(f"currency must be an ISO 4217 code like 'GBP', got {self.currency!r}")

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str) -> Money:
        """Build from a decimal string or int; rejects floats by type."""
        return cls(Decimal(amount), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Nothing, in `currency`."""
        return cls(Decimal("0.00"), currency)

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        """From integer minor units (pence), as payment gateways send them."""
        return cls(Decimal(minor).scaleb(-2), currency)

    @property
    def minor(self) -> int:
        """Integer minor units (pence); the amount must already be whole pence."""
        pence = self.amount * 100
        if pence != pence.to_integral_value():
            raise ValueError(f"{self} is not a whole number of pence")
        return int(pence)

    def rounded(self) -> Money:
        """Rounded half-up to the penny."""
        return Money(round_half_up(self.amount), self.currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatchError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: int | Decimal) -> Money:
        return Money(self.amount * factor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __str__(self) -> str:
        return f"{self.amount:.2f} {self.currency}"
