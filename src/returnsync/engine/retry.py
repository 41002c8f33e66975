"""Job-level retry policy (minutes to hours, persisted), by error class. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from returnsync.domain.errors import DomainError

if TYPE_CHECKING:
    import random

from returnsync.errors import (
    AuthenticationError,
    ConfigError,
    RejectedByRemoteError,
    TransientConnectorError,
)


class Verdict(StrEnum):
    """What to do with a job that raised."""

    RETRY = "retry"
    """Transient: try again after a backoff."""
    PERMANENT = "permanent"
    """Retrying the same thing will not help: dead job plus an exception with an owner."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with full jitter, honouring Retry-After, capped."""

    base_seconds: float = 2.0
    cap_seconds: float = 3600.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before attempt `attempt + 1`."""
        ceiling = min(self.cap_seconds, self.base_seconds * (2 ** max(0, attempt - 1)))
        jittered = rng.uniform(ceiling / 2, ceiling)
        return max(jittered, retry_after or 0.0)


def classify(exc: BaseException) -> tuple[Verdict, str]:
    """The verdict for an error, and the team that owns it when permanent."""
    if isinstance(exc, TransientConnectorError):
        return Verdict.RETRY, "integration"
    if isinstance(exc, (RejectedByRemoteError, AuthenticationError, ConfigError)):
        return Verdict.PERMANENT, "integration"
    if isinstance(exc, DomainError):
        return Verdict.PERMANENT, "operations"
    # A bug or an unknown failure: retry (it may be a race), bounded by max_attempts.
    return Verdict.RETRY, "integration"
