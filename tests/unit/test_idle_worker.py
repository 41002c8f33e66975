"""An idle worker looks before it claims (`Worker.anything_due`, a read-only query).

A claim is a write transaction: on SQLite it takes the database's one write lock, so idle
worker threads polling 20 times a second each would queue every webhook's commit behind
them. After a poll that found nothing, a worker thread reads whether anything is due and
claims only when something is; after a job, it claims straight away.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from returnsync.engine.worker import Worker
from returnsync.storage import jobqueue
from returnsync.testing.tenants import tenants_context

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest

    from returnsync.storage.db import Database


def _until(done: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_an_idle_worker_claims_only_once_a_job_is_due(
    db: Database, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: Counter[str] = Counter()
    for name in ("claim", "anything_due"):
        real = getattr(jobqueue, name)

        def counted(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(jobqueue, name, counted)
    ran = threading.Event()
    ctx = tenants_context(db, clock, "acme")
    worker = Worker(ctx, {"probe": lambda _ctx, _job: ran.set()}, name="w", threads=1)
    worker.start()
    try:
        _until(lambda: calls["anything_due"] >= 5, "five looks at an empty queue")
        assert calls["claim"] == 0
        with db.begin() as conn:
            jobqueue.enqueue(
                conn,
                tenant="acme",
                kind="probe",
                serial_key="return:acme:R1",
                payload={},
                now=clock.now(),
            )
        assert ran.wait(10)
        looked = calls["anything_due"]
        _until(lambda: calls["anything_due"] >= looked + 5, "five more looks")
        # the claim that ran the job, and one more straight after it (nothing left)
        assert calls["claim"] == 2
    finally:
        worker.stop()
    with db.read() as conn:
        assert jobqueue.counts(conn) == {"succeeded": 1}
