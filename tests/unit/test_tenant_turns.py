"""Tenant turns (docs/decisions/0011-tenant-turns.md): one retailer's backlog does not hold
up the others. After `worker_tenant_turn` jobs of one tenant in a row, a worker runs the
oldest due job of another tenant, if there is one, then goes back to the queue's order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from returnsync.bootstrap import runtime
from returnsync.cli import worker_banner
from returnsync.config import Settings
from returnsync.storage import jobqueue
from returnsync.testing.tenants import tenants_context

if TYPE_CHECKING:
    from returnsync.engine.worker import Worker
    from returnsync.storage.db import Database


def _enqueue(db: Database, clock: Any, tenant: str, count: int) -> None:
    """`count` jobs of `tenant`, each on its own return, one second apart."""
    with db.begin() as conn:
        for _ in range(count):
            clock.advance(seconds=1)
            jobqueue.enqueue(
                conn,
                tenant=tenant,
                kind="probe",
                serial_key=f"return:{tenant}:{clock.now().timestamp()}",
                payload={},
                now=clock.now(),
            )


def _run_all(worker: Worker) -> list[str]:
    ran: list[str] = []
    worker.handlers = {"probe": lambda _ctx, job: ran.append(job.tenant)}
    while worker.run_once():
        pass
    return ran


def test_a_backlog_gives_the_other_tenants_a_turn(db: Database, clock: Any) -> None:
    """acme's burst came first; beta's and gamma's jobs run after two of acme's, not after
    all of them, and the queue order is kept inside each tenant."""
    ctx = tenants_context(db, clock, "acme", "beta", "gamma", worker_tenant_turn=2)
    _enqueue(db, clock, "acme", 7)
    _enqueue(db, clock, "beta", 2)
    _enqueue(db, clock, "gamma", 1)
    worker = runtime(ctx).worker
    assert worker.turn == 2
    assert _run_all(worker) == [
        "acme", "acme", "beta",  # beta's oldest: passing over acme
        "acme", "acme", "beta",
        "acme", "acme", "gamma",
        "acme",
    ]  # fmt: skip
    assert worker.turns_given == 3


def test_without_turns_the_queue_order_is_kept(db: Database, clock: Any) -> None:
    ctx = tenants_context(db, clock, "acme", "beta", worker_tenant_turn=0)
    _enqueue(db, clock, "acme", 4)
    _enqueue(db, clock, "beta", 1)
    worker = runtime(ctx).worker
    assert _run_all(worker) == ["acme"] * 4 + ["beta"]
    assert worker.turns_given == 0


def test_a_lone_busy_tenant_keeps_its_order_and_is_asked_about_once_a_turn(
    db: Database, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nobody else due: every job runs in order, and the claim that passes over the busy
    tenant (a longer read) is tried once every `turn` jobs, not on every claim."""
    ctx = tenants_context(db, clock, "acme", "beta", worker_tenant_turn=3)
    _enqueue(db, clock, "acme", 10)
    passing: list[str | None] = []
    claim = jobqueue.claim

    def counting(*args: Any, **kwargs: Any) -> jobqueue.Job | None:
        passing.append(kwargs.get("passing_over"))
        return claim(*args, **kwargs)

    monkeypatch.setattr(jobqueue, "claim", counting)
    worker = runtime(ctx).worker
    assert _run_all(worker) == ["acme"] * 10
    assert worker.turns_given == 0
    # after jobs 3, 6 and 9 (then the claim that finds the queue empty)
    assert passing.count("acme") == 3
    _enqueue(db, clock, "beta", 1)  # beta turns up: its job runs at once
    assert _run_all(worker) == ["beta"]


def test_a_worker_of_one_tenant_takes_no_turns(db: Database, clock: Any) -> None:
    ctx = tenants_context(db, clock, "acme", "beta", worker_tenant_turn=2)
    assert runtime(ctx, tenants=["acme"]).worker.turn == 0
    assert runtime(ctx).worker.turn == 2


def test_the_setting_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().worker_tenant_turn == 8
    monkeypatch.setenv("RETURNSYNC_WORKER_TENANT_TURN", "0")
    assert Settings().worker_tenant_turn == 0
    monkeypatch.setenv("RETURNSYNC_WORKER_TENANT_TURN", "-1")
    with pytest.raises(ValueError, match="worker_tenant_turn"):
        Settings()


def test_a_starting_worker_says_when_it_gives_turns(db: Database, clock: Any) -> None:
    """`returnsync worker` prints whom it claims for and its tenant turn (none with one)."""
    ctx = tenants_context(db, clock, "acme", "beta", worker_tenant_turn=5)
    both = runtime(ctx, name="w9").worker
    assert worker_banner(both) == (
        "worker w9: 2 thread(s), jobs of acme, beta; another tenant's turn after 5 jobs of one"
    )
    assert worker_banner(runtime(ctx, name="w9", tenants=["acme"]).worker) == (
        "worker w9: 2 thread(s), jobs of acme"
    )
