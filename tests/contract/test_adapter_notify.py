"""Notifier contract: ConsoleNotifier and FakeNotifier keep the same promises."""

from __future__ import annotations

import logging

import pytest

from returnsync.adapters.notify.console import ConsoleNotifier
from returnsync.adapters.notify.fake import Alert, FakeNotifier


@pytest.fixture(params=["console", "fake"])
def notifier(request):
    return ConsoleNotifier() if request.param == "console" else FakeNotifier()


def test_alert_accepts_every_field_and_returns_nothing(notifier):
    """An alert is fire-and-forget: keyword fields in, None out, no exception."""
    assert (
        notifier.alert(tenant="acme", subject="SKU unmatched", body="ABC-1", severity="high")
        is None
    )


def test_console_notifier_logs_at_warning(caplog):
    """The console notifier writes one WARNING record naming tenant, severity and subject."""
    with caplog.at_level(logging.WARNING, logger="returnsync.adapters.notify.console"):
        ConsoleNotifier().alert(
            tenant="acme", subject="Refund mismatch", body="£1", severity="high"
        )
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "[high] acme: Refund mismatch" in record.getMessage()
    assert record.tenant == "acme"


def test_fake_notifier_records_what_was_sent():
    """The fake keeps every alert, in order, for assertions."""
    fake = FakeNotifier()
    fake.alert(tenant="acme", subject="a", body="1", severity="low")
    fake.alert(tenant="beta", subject="b", body="2", severity="high")
    assert fake.sent == [
        Alert(tenant="acme", subject="a", body="1", severity="low"),
        Alert(tenant="beta", subject="b", body="2", severity="high"),
    ]
