"""ConsoleNotifier: alerts to the `logging` system, at warning (the development default)."""

from __future__ import annotations

import logging

_log = logging.getLogger(__name__)


class ConsoleNotifier:
    """A Notifier that logs each alert at WARNING; never raises for delivery."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or _log

    def alert(self, *, tenant: str, subject: str, body: str, severity: str) -> None:
        """Log one alert: `[severity] tenant: subject`, then the body."""
        self._log.warning(
            "[%s] %s: %s\n%s",
            severity,
            tenant,
            subject,
            body,
            extra={"tenant": tenant, "severity": severity, "subject": subject},
        )
