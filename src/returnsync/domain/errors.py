"""Errors of the pure core.

    ReturnsyncError
    └── DomainError
        ├── IllegalTransitionError   a return asked to move to a state it cannot reach
        ├── CurrencyMismatchError    money of two currencies combined
        ├── OverCreditError          a credit above what is left on the original line
        └── InvalidReturnError       a return whose content breaks a business rule

Each docstring is the default message; errors carry their context as attributes.
"""

from __future__ import annotations


class ReturnsyncError(Exception):
    """Something went wrong in returnsync."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class DomainError(ReturnsyncError):
    """A business rule was broken."""


class IllegalTransitionError(DomainError):
    """The return cannot move to that state."""

    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"a return in state {current!r} cannot move to {target!r}")
        self.current = current
        self.target = target


class CurrencyMismatchError(DomainError):
    """Money of two different currencies cannot be combined."""


class OverCreditError(DomainError):
    """The credit asked for is more than what is left on the original line."""


class InvalidReturnError(DomainError):
    """The return breaks a business rule."""
