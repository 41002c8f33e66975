"""A job slower than its lease keeps it: the worker renews the lease while the handler runs."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from returnsync.adapters.notify.fake import FakeNotifier
from returnsync.adapters.payments.fake import FakeGateway
from returnsync.bootstrap import SystemClock
from returnsync.config import Settings
from returnsync.engine.worker import Worker
from returnsync.services.context import Context
from returnsync.storage import jobqueue

if TYPE_CHECKING:
    from returnsync.storage.db import Database

LEASE = 0.6  # seconds; the handler below runs for four leases


def _slow_world(db: Database) -> tuple[Context, list[str], threading.Lock]:
    ctx = Context(
        settings=Settings(database_url=db.url, job_lease_seconds=LEASE),
        db=db,
        clock=SystemClock(),
        tenants={},
        notifier=FakeNotifier(),
        platform_factory=lambda _t: None,
        gateway_factory=lambda _t: FakeGateway(),
    )
    with db.begin() as conn:
        jobqueue.enqueue(
            conn,
            tenant="t",
            kind="slow",
            serial_key="return:t:R1",
            payload={},
            now=ctx.clock.now(),
        )
    return ctx, [], threading.Lock()


def test_a_slow_job_is_not_claimed_again_while_its_worker_lives(db: Database) -> None:
    ctx, runs, lock = _slow_world(db)

    def slow(_ctx: Context, job: Any) -> None:
        with lock:
            runs.append(job.locked_by)
        time.sleep(4 * LEASE)

    workers = [Worker(ctx, {"slow": slow}, name=f"w{n}", threads=2) for n in range(2)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with db.begin() as conn:
            if jobqueue.counts(conn).get("succeeded"):
                break
        time.sleep(0.1)
    for w in workers:
        w.stop()
    with db.begin() as conn:
        assert jobqueue.counts(conn) == {"succeeded": 1}
    assert len(runs) == 1, f"claimed again while running: {runs}"


def test_renewal_fails_once_another_worker_took_the_job(db: Database) -> None:
    ctx, _, _ = _slow_world(db)
    lease = timedelta(seconds=LEASE)
    now = ctx.clock.now()
    with db.begin() as conn:
        first = jobqueue.claim(conn, worker="w1", now=now, lease=lease)
    assert first is not None
    with db.begin() as conn:
        assert jobqueue.renew(conn, first, now=now, lease=lease)
        second = jobqueue.claim(conn, worker="w2", now=now + 2 * lease, lease=lease)
    assert second is not None
    with db.begin() as conn:
        assert not jobqueue.renew(conn, first, now=now + 2 * lease, lease=lease)
        assert jobqueue.renew(conn, second, now=now + 2 * lease, lease=lease)
