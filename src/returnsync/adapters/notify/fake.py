"""FakeNotifier: records alerts in memory, for tests."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One alert as a Notifier received it."""

    tenant: str
    subject: str
    body: str
    severity: str


@dataclass
class FakeNotifier:
    """A Notifier that appends every alert to `sent`; never raises."""

    sent: list[Alert] = field(default_factory=list)

    def alert(self, *, tenant: str, subject: str, body: str, severity: str) -> None:
        """Record one alert."""
        self.sent.append(Alert(tenant=tenant, subject=subject, body=body, severity=severity))
