"""The storage contract: the same behaviour on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.exc import DBAPIError

from returnsync.domain.model import Disposition, Return, ReturnLine
from returnsync.domain.money import Money
from returnsync.domain.sku import StockItem
from returnsync.domain.states import ReturnState
from returnsync.storage import (
    audit,
    catalogue,
    exceptions,
    inbox,
    jobqueue,
    khaos,
    ledger,
    migrations,
    returns,
)
from returnsync.storage.tables import jobs

if TYPE_CHECKING:
    from returnsync.storage.db import Database

LEASE = timedelta(seconds=30)


def _enqueue(db: Database, clock, serial: str = "return:t:R1", dedupe: str | None = None) -> bool:
    with db.begin() as conn:
        return jobqueue.enqueue(
            conn,
            tenant="t",
            kind="advance",
            serial_key=serial,
            payload={"return_ref": serial},
            now=clock.now(),
            dedupe_key=dedupe,
        )


def _claim(db: Database, clock, worker: str = "w1"):
    with db.begin() as conn:
        return jobqueue.claim(conn, worker=worker, now=clock.now(), lease=LEASE)


def test_migrations_are_idempotent(db: Database) -> None:
    """Upgrading twice is harmless and lands on head."""
    migrations.upgrade(db)
    assert migrations.current(db) == "0005"


def test_migrations_build_the_schema_the_code_declares(db: Database) -> None:
    """The frozen revisions, replayed on an empty database, give exactly `tables.metadata`:
    a change to the tables without its revision fails here, on both databases."""
    from alembic.autogenerate import compare_metadata  # noqa: PLC0415
    from alembic.migration import MigrationContext  # noqa: PLC0415

    from returnsync.storage.tables import metadata  # noqa: PLC0415

    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diffs if not _is_version_table(d)] == []


def _is_version_table(diff: object) -> bool:
    return "alembic_version" in repr(diff)


def test_inbox_dedupes_on_tenant_source_key(db: Database, clock) -> None:
    """The same event stored twice is one row; another tenant's same id is separate."""
    with db.begin() as conn:
        first = inbox.store(
            conn, tenant="t", source="zz", dedupe_key="e1", payload="{}", now=clock.now()
        )
        again = inbox.store(
            conn, tenant="t", source="zz", dedupe_key="e1", payload="{}", now=clock.now()
        )
        other = inbox.store(
            conn, tenant="u", source="zz", dedupe_key="e1", payload="{}", now=clock.now()
        )
    assert first is not None
    assert again is None
    assert other is not None
    assert other != first


def test_claim_leases_one_job_and_serialises_a_return(db: Database, clock) -> None:
    """Two jobs of one return never run at once; another return's job does."""
    _enqueue(db, clock, "return:t:R1")
    _enqueue(db, clock, "return:t:R1")
    _enqueue(db, clock, "return:t:R2")
    a = _claim(db, clock, "w1")
    b = _claim(db, clock, "w2")
    c = _claim(db, clock, "w3")
    assert a is not None
    assert b is not None
    assert {a.serial_key, b.serial_key} == {"return:t:R1", "return:t:R2"}
    assert c is None
    with db.begin() as conn:
        assert jobqueue.succeed(conn, a, now=clock.now())
    d = _claim(db, clock, "w3")
    assert d is not None
    assert d.serial_key == a.serial_key


def test_expired_lease_is_reclaimed_and_old_owner_cannot_finish(db: Database, clock) -> None:
    """A killed worker's job is claimed again after its lease; its late outcome is ignored."""
    _enqueue(db, clock)
    first = _claim(db, clock, "dead-worker")
    assert first is not None
    assert _claim(db, clock, "w2") is None
    clock.advance(seconds=31)
    second = _claim(db, clock, "w2")
    assert second is not None
    assert second.id == first.id
    assert second.attempts == 2
    with db.begin() as conn:
        assert not jobqueue.succeed(conn, first, now=clock.now())
        assert jobqueue.succeed(conn, second, now=clock.now())
    with db.begin() as conn:
        assert jobqueue.counts(conn) == {"succeeded": 1}


def test_pending_dedupe_key_keeps_one_pending_job(db: Database, clock) -> None:
    """At most one pending job per dedupe key; a new one may queue once it runs."""
    assert _enqueue(db, clock, dedupe="advance:t:R1")
    assert not _enqueue(db, clock, dedupe="advance:t:R1")
    job = _claim(db, clock)
    assert job is not None
    assert _enqueue(db, clock, dedupe="advance:t:R1")


def test_dedupe_holds_however_often_one_connection_enqueues(db: Database, clock) -> None:
    """Forty enqueues on one connection, twenty keys twice: twenty jobs, never an error.

    On PostgreSQL psycopg prepares a statement after five runs and the server may then plan it
    generically; the partial-index predicate must be SQL text for ON CONFLICT to find the
    index (the chaos run hit "no unique or exclusion constraint matching" here).
    """
    with db.begin() as conn:
        added = [
            jobqueue.enqueue(
                conn,
                tenant="t",
                kind="advance",
                serial_key=f"return:t:R{n % 20}",
                payload={},
                now=clock.now(),
                dedupe_key=f"advance:t:R{n % 20}",
            )
            for n in range(40)
        ]
        assert jobqueue.counts(conn) == {"pending": 20}
    assert added == [True] * 20 + [False] * 20


def test_a_khaos_push_is_claimed_before_older_jobs(db: Database, clock) -> None:
    """Stock levels wait behind no backlog: a Khaos push job jumps the queue of older syncs."""
    for n in range(3):
        _enqueue(db, clock, f"return:t:R{n}")
        clock.advance(seconds=1)
    with db.begin() as conn:
        jobqueue.enqueue(
            conn,
            tenant="t",
            kind="khaos_push",
            serial_key="khaos:t:stock-status",
            payload={"inbox_id": 1, "kind": "stock-status"},
            now=clock.now(),
        )
    kinds = []
    while (job := _claim(db, clock)) is not None:
        kinds.append(job.kind)
        with db.begin() as conn:
            jobqueue.succeed(conn, job, now=clock.now())
    assert kinds == ["khaos_push", "advance", "advance", "advance"]


def _every_tier(db: Database, clock, *, dead: str, pushes: tuple[str, ...]) -> None:
    """Jobs of tenants a, b and c in every claim tier: two pending `advance` jobs each (a's
    oldest), the first of `dead`'s leased by a worker that died (lease expired), and a
    Khaos push (a priority kind, newer than every other job) for each of `pushes`."""
    with db.begin() as conn:
        for tenant in ("a", "b", "c"):
            for n in (1, 2):
                jobqueue.enqueue(
                    conn,
                    tenant=tenant,
                    kind="advance",
                    serial_key=f"return:{tenant}:R{n}",
                    payload={},
                    now=clock.now(),
                )
            clock.advance(seconds=1)
    with db.begin() as conn:
        gone = jobqueue.claim(conn, worker="gone", now=clock.now(), lease=LEASE, tenants={dead})
    assert gone is not None
    assert (gone.tenant, gone.serial_key) == (dead, f"return:{dead}:R1")
    clock.advance(seconds=31)
    with db.begin() as conn:
        for tenant in pushes:
            jobqueue.enqueue(
                conn,
                tenant=tenant,
                kind="khaos_push",
                serial_key=f"khaos:{tenant}:stock-status",
                payload={},
                now=clock.now(),
            )


def test_a_claim_for_some_tenants_takes_only_their_jobs_in_the_usual_order(
    db: Database, clock
) -> None:
    """Every tier (Khaos push, expired lease, pending) keeps to the tenants asked for."""
    _every_tier(db, clock, dead="b", pushes=("c", "b"))

    def claim(tenants: set[str] | None) -> jobqueue.Job | None:
        with db.begin() as conn:
            job = jobqueue.claim(conn, worker="w", now=clock.now(), lease=LEASE, tenants=tenants)
            if job is not None:
                jobqueue.succeed(conn, job, now=clock.now())
            return job

    assert claim(set()) is None  # a worker for no tenant claims nothing
    taken = []
    while (job := claim({"b"})) is not None:
        taken.append((job.tenant, job.kind, job.serial_key, job.attempts))
    assert taken == [
        ("b", "khaos_push", "khaos:b:stock-status", 1),
        ("b", "advance", "return:b:R1", 2),  # the dead worker's job, claimed again
        ("b", "advance", "return:b:R2", 1),
    ]
    rest = []
    while (job := claim({"a", "c"})) is not None:
        rest.append((job.tenant, job.serial_key))
    assert rest == [
        ("c", "khaos:c:stock-status"),
        ("a", "return:a:R1"),
        ("a", "return:a:R2"),
        ("c", "return:c:R1"),
        ("c", "return:c:R2"),
    ]
    assert claim(None) is None


def test_a_claim_passing_over_a_tenant_takes_the_others_jobs_in_the_usual_order(
    db: Database, clock
) -> None:
    """A tenant's turn (ADR 0011): every tier passes over the busy tenant's older jobs, alone
    or with the tenant filter; with nobody else due there is nothing to claim."""
    _every_tier(db, clock, dead="c", pushes=("a", "b"))

    def claim(passing_over: str, tenants: set[str] | None = None) -> jobqueue.Job | None:
        with db.begin() as conn:
            job = jobqueue.claim(
                conn,
                worker="w",
                now=clock.now(),
                lease=LEASE,
                tenants=tenants,
                passing_over=passing_over,
            )
            if job is not None:
                jobqueue.succeed(conn, job, now=clock.now())
            return job

    first = claim("a", {"a", "c"})  # the filter and the turn together: only c's
    assert first is not None
    assert (first.tenant, first.serial_key, first.attempts) == ("c", "return:c:R1", 2)
    taken = []
    while (job := claim("a")) is not None:
        taken.append((job.tenant, job.kind, job.serial_key))
    assert taken == [
        ("b", "khaos_push", "khaos:b:stock-status"),
        ("b", "advance", "return:b:R1"),
        ("b", "advance", "return:b:R2"),
        ("c", "advance", "return:c:R2"),
    ]
    assert claim("a", {"a"}) is None
    left = claim("b")  # a's jobs are there for anyone else
    assert left is not None
    assert (left.tenant, left.kind) == ("a", "khaos_push")


def test_anything_due_answers_for_each_tier_and_tenant_without_claiming(
    db: Database, clock
) -> None:
    """What an idle worker reads before it claims: yes for a due Khaos push, an expired
    lease or a due pending job of its tenants; no for a job due later or leased live."""

    def due(tenants: set[str] | None) -> bool:
        with db.read() as conn:
            return jobqueue.anything_due(conn, now=clock.now(), tenants=tenants)

    assert not due(None)  # an empty queue
    with db.begin() as conn:
        for tenant, kind, later in (
            ("expired", "advance", 0),
            ("live", "advance", 0),
            ("push", "khaos_push", 0),
            ("pending", "advance", 0),
            ("later", "advance", 120),
        ):
            jobqueue.enqueue(
                conn,
                tenant=tenant,
                kind=kind,
                serial_key=f"return:{tenant}:R1",
                payload={},
                now=clock.now(),
                run_after=clock.now() + timedelta(seconds=later),
            )
    with db.begin() as conn:
        for tenant in ("expired", "live"):
            assert jobqueue.claim(
                conn, worker=tenant, now=clock.now(), lease=LEASE, tenants={tenant}
            )
    clock.advance(seconds=20)
    with db.begin() as conn:  # `live`'s worker renews its lease (a heartbeat)
        conn.execute(
            jobs.update().where(jobs.c.tenant == "live").values(lease_until=clock.now() + LEASE)
        )
    clock.advance(seconds=15)  # `expired`'s lease (30 s) is over, `live`'s is not
    answers = {t: due({t}) for t in ("expired", "live", "push", "pending", "later", "none")}
    assert answers == {
        "expired": True,
        "live": False,
        "push": True,
        "pending": True,
        "later": False,
        "none": False,
    }
    assert due({"live", "later"}) is False
    assert due(set()) is False
    assert due(None) is True
    with db.begin() as conn:
        assert jobqueue.counts(conn) == {"pending": 3, "running": 2}  # nothing was claimed
    clock.advance(seconds=120)
    assert due({"later"}) is True


def test_a_read_refuses_writes_and_leaves_its_connection_writable(db: Database, clock) -> None:
    """`Database.read()`: a write inside fails at once, stores nothing, and the pooled
    connection writes again in the next `begin()`."""
    with pytest.raises(DBAPIError), db.read() as conn:
        jobqueue.enqueue(
            conn, tenant="t", kind="advance", serial_key="k", payload={}, now=clock.now()
        )
    with db.read() as conn:
        assert jobqueue.counts(conn) == {}
    assert _enqueue(db, clock)
    with db.read() as conn:
        assert jobqueue.counts(conn) == {"pending": 1}


def test_a_read_keeps_one_snapshot_and_holds_up_no_writer(db: Database, clock) -> None:
    """A long read (a report, the dashboard) lets a writer commit meanwhile (on SQLite a
    `BEGIN IMMEDIATE` read would make it wait for the read to end) and does not see it."""
    _enqueue(db, clock, "return:t:R1")
    written = threading.Event()

    def write() -> None:
        _enqueue(db, clock, "return:t:R2")
        written.set()

    with db.read() as conn:
        assert jobqueue.counts(conn) == {"pending": 1}
        writer = threading.Thread(target=write)
        writer.start()
        assert written.wait(10), "the write waited for the read to end"
        assert jobqueue.counts(conn) == {"pending": 1}  # the read's snapshot
    writer.join(10)
    with db.read() as conn:
        assert jobqueue.counts(conn) == {"pending": 2}


def test_a_retry_while_the_same_work_is_pending_again_is_superseded(db: Database, clock) -> None:
    """A job fails while its dedupe twin was queued: one pending job remains, the twin.

    Found by the deterministic simulation (seed 172): the retry used to violate the one
    pending job per dedupe key rule and the error escaped the worker.
    """
    assert _enqueue(db, clock, dedupe="advance:t:R1")
    running = _claim(db, clock)
    assert running is not None
    assert _enqueue(db, clock, dedupe="advance:t:R1")  # asked again while it runs
    with db.begin() as conn:
        assert jobqueue.retry(
            conn,
            running,
            now=clock.now(),
            run_after=clock.now() + timedelta(minutes=1),
            error="503",
        )
        rows = {r["id"]: r for r in jobqueue.listing(conn)}
    assert rows[running.id]["status"] == "succeeded"
    assert "superseded by pending job" in rows[running.id]["last_error"]
    assert [r["status"] for i, r in rows.items() if i != running.id] == ["pending"]


def test_revive_leaves_a_dead_job_whose_work_is_pending_again(db: Database, clock) -> None:
    """Two dead twins and a pending one: reviving all revives none (the pending one covers them).

    Without a pending twin, only one of two dead twins comes back.
    """
    dead = []
    for _ in range(2):
        assert _enqueue(db, clock, dedupe="advance:t:R1")
        job = _claim(db, clock)
        assert job is not None
        with db.begin() as conn:
            jobqueue.bury(conn, job, now=clock.now(), error="gave up")
        dead.append(job.id)
    with db.begin() as conn:
        assert jobqueue.revive(conn, now=clock.now()) == 1
        assert jobqueue.counts(conn) == {"dead": 1, "pending": 1}
        assert jobqueue.revive(conn, now=clock.now()) == 0


def test_retry_backs_off_and_bury_then_revive(db: Database, clock) -> None:
    """A retried job waits for run_after; a dead job is revived with fresh attempts."""
    _enqueue(db, clock)
    job = _claim(db, clock)
    assert job is not None
    with db.begin() as conn:
        jobqueue.retry(
            conn, job, now=clock.now(), run_after=clock.now() + timedelta(minutes=5), error="503"
        )
    assert _claim(db, clock) is None
    clock.advance(minutes=6)
    job = _claim(db, clock)
    assert job is not None
    with db.begin() as conn:
        jobqueue.bury(conn, job, now=clock.now(), error="gave up")
        assert jobqueue.counts(conn) == {"dead": 1}
        assert jobqueue.revive(conn, now=clock.now()) == 1
    again = _claim(db, clock)
    assert again is not None
    assert again.attempts == 1


def test_concurrent_claimers_never_share_a_job(db: Database, clock) -> None:
    """Eight threads claiming 200 jobs of 50 returns: each job once, no return twice at once."""
    for n in range(200):
        _enqueue(db, clock, f"return:t:R{n % 50}")
    claimed: list[int] = []
    lock = threading.Lock()

    def run(name: str) -> None:
        while True:
            job = _claim(db, clock, name)
            if job is None:
                with db.begin() as conn:
                    if not jobqueue.counts(conn).get("pending"):
                        return
                continue
            with lock:
                claimed.append(job.id)
            with db.begin() as conn:
                jobqueue.succeed(conn, job, now=clock.now())

    threads = [threading.Thread(target=run, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(claimed) == sorted(set(claimed))
    assert len(claimed) == 200


def test_effects_ledger_records_once(db: Database, clock) -> None:
    """An effect is started once; finishing records the remote reference."""
    with db.begin() as conn:
        assert ledger.start(
            conn,
            tenant="t",
            key="refund:t:R1:CN1",
            kind="refund",
            return_ref="R1",
            detail={},
            now=clock.now(),
        )
        assert not ledger.start(
            conn,
            tenant="t",
            key="refund:t:R1:CN1",
            kind="refund",
            return_ref="R1",
            detail={},
            now=clock.now(),
        )
        ledger.finish(
            conn, tenant="t", key="refund:t:R1:CN1", remote_ref="re_1", detail={}, now=clock.now()
        )
        effect = ledger.get(conn, "t", "refund:t:R1:CN1")
    assert effect is not None
    assert (effect.status, effect.remote_ref) == ("done", "re_1")


def test_return_round_trips_with_decimal_money_and_aware_times(db: Database, clock) -> None:
    """A saved return reads back equal: Decimal money, timezone-aware UTC times."""
    ret = Return(
        tenant="t",
        return_ref="R1",
        order_ref="O1",
        currency="GBP",
        warehouse="GB0064",
        zigzag_status="Processed",
        zigzag_updated_at=clock.now(),
        state=ReturnState.READY,
        lines=(
            ReturnLine(
                line_id="I1#1",
                item_id="I1",
                sku="TEE",
                quantity=2,
                disposition=Disposition.RESALEABLE,
                unit_price=Money.of("24.99", "GBP"),
            ),
        ),
    )
    with db.begin() as conn:
        returns.save(
            conn,
            ret,
            associated_ref="ZZ-GL-R1",
            snapshot={"returnId": "R1"},
            now=clock.now(),
            seen_by="webhook",
        )
        loaded = returns.get(conn, "t", "R1")
        assert returns.by_associated_ref(conn, "t", "ZZ-GL-R1") == "R1"
    assert loaded == ret
    assert loaded.lines[0].unit_price.amount == Decimal("24.99")


def test_exceptions_open_once_and_resolve(db: Database, clock) -> None:
    """The same open exception is not raised twice; resolving closes it."""
    with db.begin() as conn:
        kw = {
            "tenant": "t",
            "kind": "sku_unmatched",
            "owner": "operations",
            "message": "x",
            "now": clock.now(),
            "return_ref": "R1",
            "subject": "SKU1",
        }
        assert exceptions.raise_open(conn, **kw)
        assert not exceptions.raise_open(conn, **kw)
        assert exceptions.resolve(
            conn, tenant="t", kind="sku_unmatched", subject="SKU1", now=clock.now()
        ) == ["R1"]
        assert exceptions.counts(conn) == {}


def _stage(conn, clock, count: int) -> int:  # type: ignore[no-untyped-def]
    """Stage returns A0.. for tenant t; how many were new."""
    return sum(
        khaos.stage(
            conn,
            tenant="t",
            associated_ref=f"A{n}",
            return_ref=f"R{n}",
            document={"AssociatedRef": f"A{n}"},
            now=clock.now(),
        )
        for n in range(count)
    )


def test_staged_returns_page_by_sequence_and_never_twice(db: Database, clock) -> None:
    """A return is staged once per AssociatedRef and paged in staging order."""
    with db.begin() as conn:
        assert _stage(conn, clock, 5) == 5
        assert not khaos.stage(
            conn, tenant="t", associated_ref="A0", return_ref="R0", document={}, now=clock.now()
        )
        first = khaos.page_after(conn, "t", 0, 3)
        khaos.mark_pulled(conn, "t", [seq for seq, _ in first], clock.now())
        rest = khaos.page_after(conn, "t", first[-1][0], 3)
    assert [d["AssociatedRef"] for _, d in first] == ["A0", "A1", "A2"]
    assert [d["AssociatedRef"] for _, d in rest] == ["A3", "A4"]


def test_a_staged_return_never_pulled_is_offered_whatever_the_cursor(db: Database, clock) -> None:
    """A cursor that passed a return KCC never read (first contact, a late commit) still gets it.

    Once read, it is not offered again below the cursor.
    """
    with db.begin() as conn:
        _stage(conn, clock, 4)
        seqs = [seq for seq, _ in khaos.page_after(conn, "t", 0, 10)]
        khaos.mark_pulled(conn, "t", [seqs[0], seqs[2], seqs[3]], clock.now())  # A1 skipped
        late = khaos.page_after(conn, "t", seqs[3], 10)
        khaos.mark_pulled(conn, "t", [seq for seq, _ in late], clock.now())
        after = khaos.page_after(conn, "t", seqs[3], 10)
    assert [d["AssociatedRef"] for _, d in late] == ["A1"]
    assert after == []


def test_catalogue_keys_on_stock_id_through_a_rename(db: Database, clock) -> None:
    """A renamed StockCode updates the same StockID; the audit log keeps the timeline."""
    with db.begin() as conn:
        catalogue.save_items(conn, "t", [StockItem(stock_id="1", stock_code="OLD")], clock.now())
        catalogue.save_items(conn, "t", [StockItem(stock_id="1", stock_code="NEW")], clock.now())
        items = catalogue.items(conn, "t")
        audit.record(conn, tenant="t", actor="ops", action="x", return_ref="R1", now=clock.now())
        assert len(audit.timeline(conn, "t", "R1")) == 1
    assert [(i.stock_id, i.stock_code) for i in items] == [("1", "NEW")]


def test_prune_deletes_only_succeeded_jobs_finished_before_the_cutoff(db: Database, clock) -> None:
    """Old succeeded jobs go, oldest first, `limit` at a time; recent, pending and dead stay."""
    for n in range(3):
        _enqueue(db, clock, serial=f"return:t:old{n}")
        job = _claim(db, clock)
        assert job is not None
        with db.begin() as conn:
            assert jobqueue.succeed(conn, job, now=clock.now())
    _enqueue(db, clock, serial="return:t:dead")
    job = _claim(db, clock)
    assert job is not None
    with db.begin() as conn:
        jobqueue.bury(conn, job, now=clock.now(), error="gave up")
    clock.advance(days=100)
    cutoff = clock.now() - timedelta(days=90)
    _enqueue(db, clock, serial="return:t:recent")
    job = _claim(db, clock)
    assert job is not None
    with db.begin() as conn:
        assert jobqueue.succeed(conn, job, now=clock.now())
    _enqueue(db, clock, serial="return:t:waiting")
    with db.begin() as conn:
        assert jobqueue.count_succeeded(conn, before=cutoff) == 3
        assert jobqueue.prune_succeeded(conn, before=cutoff, limit=2) == 2
        assert jobqueue.prune_succeeded(conn, before=cutoff, limit=2) == 1
        assert jobqueue.prune_succeeded(conn, before=cutoff, limit=2) == 0
        assert jobqueue.counts(conn) == {"dead": 1, "pending": 1, "succeeded": 1}


def test_insert_many_writes_what_single_inserts_write_in_order(db: Database, clock) -> None:
    """`sql.insert_many` (multi-row VALUES on SQLite, one JSON array parameter on
    PostgreSQL) stores every type as a one-row INSERT does, assigns ids in row order,
    returns only the rows inserted, and refuses a naive timestamp."""
    import pytest  # noqa: PLC0415
    from sqlalchemy import insert, select  # noqa: PLC0415

    from returnsync.storage import sql, tables  # noqa: PLC0415

    now = clock.now()
    rows = [
        jobqueue.job_row(
            tenant="t",
            kind="sync_return",
            serial_key=f"return:t:R{n}",
            payload={"return_ref": f"R{n}", "quote": 'a "b" \\ c\n', "n": n, "none": None},
            now=now + timedelta(microseconds=n),
            dedupe_key="same" if n in (2, 4) else None,  # 4 is a pending twin of 2
            run_after=None,
            max_attempts=3 + n,
        )
        for n in range(6)
    ]
    with db.begin() as conn:
        added = sql.insert_many(
            conn,
            tables.jobs,
            rows,
            returning=("id", "serial_key"),
            on_conflict=jobqueue.unless_pending_twin,
        )
        one_by_one = [  # the reference rows: no dedupe key (compared apart)
            conn.execute(
                insert(tables.jobs).returning(tables.jobs.c.id),
                {**row, "tenant": "u", "dedupe_key": None},
            ).scalar_one()
            for n, row in enumerate(rows)
            if n != 4
        ]
        stored = {
            r.id: r._mapping for r in conn.execute(select(tables.jobs).order_by(tables.jobs.c.id))
        }
    assert [r.serial_key for r in added] == [f"return:t:R{n}" for n in (0, 1, 2, 3, 5)]
    ids = [r.id for r in added]
    assert ids == sorted(ids)

    def neutral(job_id: int) -> dict[str, object]:
        row = dict(stored[job_id])
        for key in ("id", "tenant", "dedupe_key"):
            del row[key]
        return row

    assert [neutral(i) for i in ids] == [neutral(i) for i in one_by_one]
    assert [stored[i]["dedupe_key"] for i in ids] == [None, None, "same", None, None]
    assert neutral(ids[0])["payload"] == rows[0]["payload"]
    assert neutral(ids[1])["created_at"] == now + timedelta(microseconds=1)

    naive = [{**rows[0], "created_at": now.replace(tzinfo=None)}]
    with pytest.raises(Exception, match="naive datetime"), db.begin() as conn:
        sql.insert_many(conn, tables.jobs, naive, returning=("id",))
    assert sql.insert_many(conn, tables.jobs, [], returning=("id",)) == []
