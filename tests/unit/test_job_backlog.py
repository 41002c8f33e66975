"""`returnsync jobs backlog`: unfinished jobs per tenant, so an operator sees which retailer
is bursting (and whether to pin workers to it, docs/operator.md)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from typer.testing import CliRunner

from returnsync import cli
from returnsync.storage import jobqueue
from returnsync.testing.tenants import tenants_context

if TYPE_CHECKING:
    import pytest

    from returnsync.storage.db import Database

LEASE = timedelta(seconds=60)


def _queue(db: Database, clock: Any) -> None:
    """acme: 2 due (the first since 10 minutes ago), 1 later, 1 running; beta: 1 dead and 1
    succeeded; gamma: only a succeeded job (so not in the backlog)."""

    def add(tenant: str, n: int, delay: float = 0) -> None:
        with db.begin() as conn:
            jobqueue.enqueue(
                conn,
                tenant=tenant,
                kind="probe",
                serial_key=f"return:{tenant}:R{n}",
                payload={},
                now=clock.now(),
                run_after=clock.now() + timedelta(seconds=delay),
            )

    def finish(tenant: str, *, dead: bool = False) -> None:
        with db.begin() as conn:
            job = jobqueue.claim(conn, worker="w", now=clock.now(), lease=LEASE, tenants={tenant})
            assert job is not None
            if dead:
                jobqueue.bury(conn, job, now=clock.now(), error="gave up")
            else:
                jobqueue.succeed(conn, job, now=clock.now())

    for n, tenant in enumerate(("beta", "beta", "gamma")):
        add(tenant, n)
    finish("beta", dead=True)
    finish("beta")
    finish("gamma")
    add("acme", 1)
    clock.advance(minutes=10)
    add("acme", 2)
    add("acme", 3, delay=3_600)
    add("acme", 4)
    with db.begin() as conn:  # acme's R1, the oldest, is taken by a worker
        assert jobqueue.claim(conn, worker="w", now=clock.now(), lease=LEASE, tenants={"acme"})


def test_the_backlog_counts_each_tenants_unfinished_jobs(db: Database, clock: Any) -> None:
    _queue(db, clock)
    with db.begin() as conn:
        rows = jobqueue.backlog(conn, now=clock.now())
    assert [(r["tenant"], r["due"], r["waiting"], r["running"], r["dead"]) for r in rows] == [
        ("acme", 2, 1, 1, 0),
        ("beta", 0, 0, 0, 1),
    ]
    assert rows[0]["oldest_due"] == clock.now()  # R2 and R4, due since now
    assert rows[1]["oldest_due"] is None


def test_the_backlog_command(db: Database, clock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = tenants_context(db, clock, "acme", "beta", "gamma")
    _queue(db, clock)
    clock.advance(minutes=5)
    monkeypatch.setattr(cli, "_context", lambda _tenants=None: ctx)
    table = CliRunner().invoke(cli.app, ["jobs", "backlog"])
    assert table.exit_code == 0, table.output
    lines = [" ".join(line.split()) for line in table.output.splitlines()]
    assert any(line.startswith("│ acme │ 2 │ 5 min │ 1 │ 1 │ 0") for line in lines), lines
    assert not any("gamma" in line for line in lines)
    raw = CliRunner().invoke(cli.app, ["jobs", "backlog", "--format", "json"])
    assert raw.exit_code == 0, raw.output
    acme, beta = json.loads(raw.output)
    assert (acme["tenant"], acme["due"], acme["due_for_seconds"]) == ("acme", 2, 300)
    assert (beta["tenant"], beta["dead"], beta["due_for_seconds"]) == ("beta", 1, 0)


def test_ages_read_as_people_say_them() -> None:
    assert [cli._age(s) for s in (45, 150, 7_300, 200_000)] == [
        "45 s",
        "2 min",
        "2.0 h",
        "2.3 days",
    ]
