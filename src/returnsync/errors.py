"""Errors at the edges (connectors, configuration), and how the engine treats each class.

ReturnsyncError                  (returnsync.domain.errors)
├── DomainError ...              business rules, see domain/errors.py
├── ConfigError                  bad or missing settings / tenants file
└── ConnectorError               an outside system failed us
    ├── TransientConnectorError  timeouts, 5xx, 429: retry with backoff (.retry_after)
    ├── OutcomeUnknownError      the call may have been applied: read remote state first
    ├── RejectedByRemoteError    4xx: retrying the same call will not help (.status, .body)
    │   └── NotFoundError        404
    └── AuthenticationError      credentials refused (401/403 after a token refresh)
"""

from __future__ import annotations

from returnsync.domain.errors import ReturnsyncError


class ConfigError(ReturnsyncError):
    """The configuration is invalid."""


class ConnectorError(ReturnsyncError):
    """An outside system failed."""

    def __init__(self, message: str | None = None, *, system: str = "") -> None:
        super().__init__(message)
        self.system = system


class TransientConnectorError(ConnectorError):
    """The outside system is unavailable for now; try again later."""

    def __init__(
        self, message: str | None = None, *, system: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message, system=system)
        self.retry_after = retry_after


class OutcomeUnknownError(TransientConnectorError):
    """The call may or may not have been applied (timeout or lost response)."""


class RejectedByRemoteError(ConnectorError):
    """The outside system refused the request."""

    def __init__(
        self, message: str | None = None, *, system: str = "", status: int = 0, body: str = ""
    ) -> None:
        super().__init__(message, system=system)
        self.status = status
        self.body = body


class NotFoundError(RejectedByRemoteError):
    """The outside system does not know the thing asked for."""


class AuthenticationError(ConnectorError):
    """The outside system refused our credentials."""
