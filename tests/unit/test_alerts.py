"""Alerts are sent only for committed state, by a worker, after the commit
(`services.alerts`): never from inside the transaction that raised them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from returnsync.engine.handlers import HANDLERS
from returnsync.engine.worker import Worker
from returnsync.services import alerts
from returnsync.testing.tenants import tenants_context

if TYPE_CHECKING:
    from returnsync.storage.db import Database


class LaterStatementError(Exception):
    """A later statement of the alert's transaction failed."""


def test_an_alert_goes_out_once_its_transaction_commits_and_never_if_it_rolls_back(
    db: Database, clock: Any
) -> None:
    ctx = tenants_context(db, clock, "acme")
    worker = Worker(ctx, HANDLERS, name="w")

    def raise_alert(subject: str, *, then_fail: bool = False) -> None:
        with db.begin() as conn:
            alerts.queue(
                conn,
                tenant="acme",
                subject=subject,
                body="return R1 is held",
                severity="high",
                now=clock.now(),
            )
            assert ctx.notifier.sent == []  # nothing leaves inside the transaction
            if then_fail:
                raise LaterStatementError

    with pytest.raises(LaterStatementError):
        raise_alert("SKU A unmatched", then_fail=True)
    raise_alert("SKU B unmatched")
    assert ctx.notifier.sent == []  # nor at the commit: a worker sends it
    assert worker.drain() == 1
    assert [(a.tenant, a.subject, a.body, a.severity) for a in ctx.notifier.sent] == [
        ("acme", "SKU B unmatched", "return R1 is held", "high")
    ]
    assert worker.drain() == 0
