"""Errors the ZigZag simulator answers with, in ZigZag's error-body shape.

Every refusal, vendor or admin, is a `ZigZagError` carrying the HTTP status and
the body `{"message": "...", "errors": [{"field": ..., "message": ...}]}`
(reference section 4.1). One class, because the simulator only needs to turn a
refusal into a response; the status says which kind it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from pydantic import ValidationError


@dataclass(frozen=True, kw_only=True)
class FieldError:
    """One problem with one field; `field` is a path such as `items[0].sku`, or None."""

    field: str | None
    message: str

    def to_json(self) -> dict[str, Any]:
        """The wire shape: `{"field": ..., "message": ...}`."""
        return {"field": self.field, "message": self.message}


class ZigZagError(Exception):
    """A request ZigZag refuses; rendered as `status` with the error body."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: Sequence[FieldError] = (),
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = tuple(errors)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        return error_body(self.message, self.errors)


def error_body(message: str, errors: Iterable[FieldError] = ()) -> dict[str, Any]:
    """`{"message": message, "errors": [...]}`."""
    return {"message": message, "errors": [error.to_json() for error in errors]}


def field_path(loc: Sequence[int | str], prefix: str = "") -> str | None:
    """Render a pydantic location `("items", 0, "sku")` as `items[0].sku`."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else part
    return path or None


def from_validation(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """One `FieldError` per pydantic error, with ZigZag-style field paths."""
    errors: list[FieldError] = []
    for item in exc.errors(include_url=False):
        loc = [part for part in item["loc"] if part != "body"]
        errors.append(FieldError(field=field_path(loc, prefix), message=item["msg"]))
    return errors


def bad_request(message: str, errors: Sequence[FieldError] = ()) -> ZigZagError:
    """400 with the given field errors."""
    return ZigZagError(400, message, errors)


def not_found(message: str) -> ZigZagError:
    """404."""
    return ZigZagError(404, message)


def conflict(message: str) -> ZigZagError:
    """409: the request contradicts the state (wrong status, different reference, duplicate)."""
    return ZigZagError(409, message)
