"""Errors of the adapter layer that are not connector failures.

    ValueError
    └── InvalidPayloadError   a message (webhook, push, API answer) that breaks its wire contract

Connector failures (timeouts, 4xx, 5xx) are `returnsync.errors.ConnectorError`s. An
`InvalidPayloadError` is different: the transport worked, the content is wrong. Callers
quarantine such a message as an exception; retrying cannot fix it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class InvalidPayloadError(ValueError):
    """The payload does not match its wire contract."""

    def __init__(self, what: str, problems: list[str] | tuple[str, ...]) -> None:
        self.what = what
        self.problems = tuple(problems)
        super().__init__(f"invalid {what}: " + "; ".join(self.problems))

    @classmethod
    def from_validation(cls, what: str, exc: ValidationError) -> InvalidPayloadError:
        """One problem per bad field, as `dotted.path: message`, from a pydantic error."""
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(part) for part in err["loc"]) or "(root)"
            problems.append(f"{where}: {err['msg']}")
        return cls(what, problems)
