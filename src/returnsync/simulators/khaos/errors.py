"""Errors an operator action or admin request can meet, with the HTTP status to answer."""

from __future__ import annotations


class OperationError(ValueError):
    """A request Khaos would refuse; `status` is the admin API's answer (400, 404, 409)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
