"""The job table: the transactional outbox and the work queue in one.

A job is written in the same transaction as the state change that causes it. Workers
claim one job at a time under a lease; a job whose worker died is re-claimed when the
lease expires. Jobs that share a `serial_key` (one return) never run at the same time:
the claim takes a row in `serial_locks`, whose primary key serialises claimers on both
SQLite and PostgreSQL. On PostgreSQL the candidate rows are read with
`FOR UPDATE SKIP LOCKED` so any number of workers claim without blocking each other, and
every write to a `serial_locks` row happens under a transaction-scoped advisory lock on its
key: a claimer only *tries* it (and skips the job when another transaction is on that key),
a release waits for it. Two claimers therefore never wait on each other's uncommitted
`serial_locks` rows, which deadlocked under four workers before.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    and_,
    bindparam,
    case,
    delete,
    func,
    literal_column,
    or_,
    select,
    text,
    union_all,
    update,
)

from returnsync.storage.sql import dialect_insert
from returnsync.storage.tables import jobs, serial_locks

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable
    from datetime import datetime, timedelta

    from sqlalchemy import Select
    from sqlalchemy.engine import Connection

# The predicate of the partial index `uq_jobs_pending_dedupe`, as SQL text: a bound
# parameter would hide it from PostgreSQL's generic plans (see `unless_pending_twin`).
PENDING_SQL = text("status = 'pending'")
CLAIM_CANDIDATES = 16  # rows looked at per claim; more only helps when many keys are locked
PRIORITY_KINDS = ("khaos_push",)  # claimed before older jobs of other kinds


class JobStatus(StrEnum):
    """The life of a job."""

    PENDING = "pending"
    """Waiting for its `run_after` time."""
    RUNNING = "running"
    """Leased by a worker until `lease_until`."""
    SUCCEEDED = "succeeded"
    """Done; kept for the record."""
    DEAD = "dead"
    """Gave up (attempts exhausted or a permanent error); visible and replayable."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One claimed job."""

    id: int
    tenant: str
    kind: str
    serial_key: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    locked_by: str


def enqueue(
    conn: Connection,
    *,
    tenant: str,
    kind: str,
    serial_key: str,
    payload: dict[str, Any],
    now: datetime,
    dedupe_key: str | None = None,
    run_after: datetime | None = None,
    max_attempts: int = 12,
) -> bool:
    """Add a job; with `dedupe_key`, do nothing if a pending job has the same key.

    Returns True when a job was added.
    """
    row = job_row(
        tenant=tenant,
        kind=kind,
        serial_key=serial_key,
        payload=payload,
        now=now,
        dedupe_key=dedupe_key,
        run_after=run_after,
        max_attempts=max_attempts,
    )
    stmt = _insert_statement(pg=conn.dialect.name == "postgresql", deduped=dedupe_key is not None)
    return conn.execute(stmt, row).first() is not None


def job_row(
    *,
    tenant: str,
    kind: str,
    serial_key: str,
    payload: dict[str, Any],
    now: datetime,
    dedupe_key: str | None,
    run_after: datetime | None,
    max_attempts: int,
) -> dict[str, Any]:
    """The row of a new pending job."""
    return {
        "tenant": tenant,
        "kind": kind,
        "serial_key": serial_key,
        "dedupe_key": dedupe_key,
        "payload": payload,
        "status": JobStatus.PENDING.value,
        "attempts": 0,
        "max_attempts": max_attempts,
        "run_after": run_after or now,
        "created_at": now,
        "updated_at": now,
    }


@functools.cache
def _insert_statement(*, pg: bool, deduped: bool) -> Any:
    """INSERT INTO jobs ... RETURNING id, for parameters from `job_row`; `deduped`: unless a
    pending job has the same dedupe key (rows without a key never conflict on that index)."""
    stmt = dialect_insert(jobs, pg=pg)
    if deduped:
        stmt = unless_pending_twin(stmt)
    return stmt.returning(jobs.c.id)


def unless_pending_twin(stmt: Any) -> Any:
    """An INSERT into jobs that does nothing while a pending job has the same dedupe key.

    The predicate is SQL text, not a bound parameter: PostgreSQL must see `status =
    'pending'` to infer the partial index `uq_jobs_pending_dedupe`. With a parameter it
    cannot, once psycopg prepares the statement (after 5 runs on a connection) and the
    server picks a generic plan: "no unique or exclusion constraint matching the ON CONFLICT
    specification" (found by the PostgreSQL chaos run).
    """
    return stmt.on_conflict_do_nothing(index_elements=["dedupe_key"], index_where=PENDING_SQL)


def claim(
    conn: Connection,
    *,
    worker: str,
    now: datetime,
    lease: timedelta,
    tenants: Collection[str] | None = None,
    passing_over: str | None = None,
) -> Job | None:
    """Lease the next runnable job to `worker`, or return None. Call inside a transaction.

    Pending jobs of a `PRIORITY_KINDS` kind go first (Khaos pushes: stock levels and credit
    notes are cheap to apply and others wait on them), then jobs whose worker died (lease
    expired), then every pending job oldest first. Each set is read in index order (on
    PostgreSQL one query each, on SQLite one UNION ALL of the three), so a claim reads a few
    rows however many jobs are queued.

    `tenants`: only jobs of these tenants (a worker claims for the tenants it is configured
    for, docs/decisions/0010-workers-by-tenant.md); None: every tenant's. The filtered read
    walks the same index, passing over other tenants' rows.

    `passing_over`: not this tenant's jobs (a worker that has run a run of one tenant's jobs
    gives the others a turn, docs/decisions/0011-tenant-turns.md); the read walks the index
    past that tenant's rows, so it costs more the longer its backlog.
    """
    by_tenant = tenants is not None
    if by_tenant and not tenants:
        return None
    params: dict[str, Any] = {"now": now}
    if tenants is not None:
        params["tenants"] = sorted(tenants)
    other = passing_over is not None
    if other:
        params["passing_over"] = passing_over
    if conn.dialect.name != "postgresql":  # no row locks to take: all three sets in one query
        stmt = _sqlite_candidates(by_tenant=by_tenant, other=other)
        return _claim_from(conn, stmt, params, worker=worker, now=now, lease=lease)
    for runnable in Runnable:
        stmt = _candidates(runnable, pg=True, by_tenant=by_tenant, other=other)
        job = _claim_from(conn, stmt, params, worker=worker, now=now, lease=lease)
        if job is not None:
            return job
    return None


def anything_due(
    conn: Connection, *, now: datetime, tenants: Collection[str] | None = None
) -> bool:
    """Whether `claim` (with the same `tenants`) has a candidate now; serial locks aside.

    Read only: it locks nothing and takes no write lock, so an idle worker asks this before
    it claims (`Worker`). One query of the claim's three sets, on both databases.
    """
    if tenants is not None and not tenants:
        return False
    params: dict[str, Any] = {"now": now}
    if tenants is not None:
        params["tenants"] = sorted(tenants)
    stmt = _one_candidate(by_tenant=tenants is not None)
    return conn.execute(stmt, params).first() is not None


class Runnable(StrEnum):
    """The claim's candidate sets, in the order they are tried."""

    PRIORITY = "priority"
    EXPIRED = "expired"
    PENDING = "pending"


@functools.cache
def _candidates(
    runnable: Runnable, *, pg: bool, by_tenant: bool = False, other: bool = False
) -> Select[Any]:
    """The claim query, built once: statements are executed thousands of times a minute."""
    now: Any = bindparam("now")
    pending_now = and_(jobs.c.status == JobStatus.PENDING.value, jobs.c.run_after <= now)
    where = {
        # the kinds as SQL literals: an IN of bound values is re-expanded on every execution
        Runnable.PRIORITY: pending_now
        & jobs.c.kind.in_([literal_column(f"'{kind}'") for kind in PRIORITY_KINDS]),
        Runnable.EXPIRED: and_(jobs.c.status == JobStatus.RUNNING.value, jobs.c.lease_until < now),
        Runnable.PENDING: pending_now,
    }[runnable]
    stmt = select(jobs.c.id, jobs.c.serial_key, jobs.c.attempts).where(where)
    if by_tenant:
        stmt = stmt.where(jobs.c.tenant.in_(bindparam("tenants", expanding=True)))
    if other:
        stmt = stmt.where(jobs.c.tenant != bindparam("passing_over"))
    stmt = stmt.order_by(jobs.c.run_after, jobs.c.id).limit(CLAIM_CANDIDATES)
    return stmt.with_for_update(skip_locked=True) if pg else stmt


@functools.cache
def _sqlite_candidates(*, by_tenant: bool = False, other: bool = False) -> Select[Any]:
    """SQLite: the three candidate sets as one UNION ALL, each still read in index order
    (one round trip instead of three; PostgreSQL cannot lock rows of a UNION, but runs it
    unlocked for `anything_due`)."""
    tiers = []
    for rank, runnable in enumerate(Runnable):
        tier = _candidates(runnable, pg=False, by_tenant=by_tenant, other=other).add_columns(
            jobs.c.run_after, literal_column(str(rank)).label("tier")
        )
        tiers.append(select(tier.subquery()))
    every = union_all(*tiers).subquery()
    return select(every.c.id, every.c.serial_key, every.c.attempts).order_by(
        every.c.tier, every.c.run_after, every.c.id
    )


@functools.cache
def _one_candidate(*, by_tenant: bool) -> Select[Any]:
    return _sqlite_candidates(by_tenant=by_tenant).limit(1)


_LEASE = (
    update(jobs)
    .where(jobs.c.id == bindparam("job_id"))
    .values(
        status=JobStatus.RUNNING.value,
        attempts=bindparam("new_attempts"),
        lease_until=bindparam("until"),
        locked_by=bindparam("worker"),
        updated_at=bindparam("now"),
    )
    .returning(jobs.c.tenant, jobs.c.kind, jobs.c.payload, jobs.c.max_attempts)
)


def _claim_from(
    conn: Connection,
    candidates: Select[Any],
    params: dict[str, Any],
    *,
    worker: str,
    now: datetime,
    lease: timedelta,
) -> Job | None:
    tried: set[int] = set()  # a Khaos push is both a priority and a pending candidate
    for row in conn.execute(candidates, params).all():
        if row.id in tried:
            continue
        tried.add(row.id)
        if not _key_lock(conn, row.serial_key, wait=False):
            continue  # another transaction is taking or releasing this key right now
        if not _take_serial_lock(conn, row.serial_key, row.id, now, now + lease):
            continue
        leased = conn.execute(
            _LEASE,
            {
                "job_id": row.id,
                "new_attempts": row.attempts + 1,
                "until": now + lease,
                "worker": worker,
                "now": now,
            },
        ).one()
        return Job(
            id=row.id,
            tenant=leased.tenant,
            kind=leased.kind,
            serial_key=row.serial_key,
            payload=dict(leased.payload),
            attempts=row.attempts + 1,
            max_attempts=leased.max_attempts,
            locked_by=worker,
        )
    return None


_ADVISORY_WAIT = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
_ADVISORY_TRY = text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))")


def _key_lock(conn: Connection, key: str, *, wait: bool) -> bool:
    """PostgreSQL: the advisory lock over one serial key until the transaction ends.

    SQLite needs none: a write transaction there is alone (BEGIN IMMEDIATE).
    """
    if conn.dialect.name != "postgresql":
        return True
    got = conn.execute(
        _ADVISORY_WAIT if wait else _ADVISORY_TRY, {"key": f"returnsync:serial:{key}"}
    ).scalar()
    return wait or bool(got)


def _take_serial_lock(
    conn: Connection, key: str, job_id: int, now: datetime, until: datetime
) -> bool:
    stmt = _serial_lock_stmt(pg=conn.dialect.name == "postgresql")
    params = {"serial_key": key, "job_id": job_id, "lease_until": until, "now": now}
    return conn.execute(stmt, params).first() is not None


@functools.cache
def _serial_lock_stmt(*, pg: bool) -> Any:
    """Take the key's serial lock unless a live lease of another job holds it (built once)."""
    stmt = dialect_insert(serial_locks, pg=pg)
    stmt = stmt.values(
        serial_key=bindparam("serial_key"),
        job_id=bindparam("job_id"),
        lease_until=bindparam("lease_until"),
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["serial_key"],
        set_={"job_id": stmt.excluded.job_id, "lease_until": stmt.excluded.lease_until},
        where=or_(
            serial_locks.c.lease_until < bindparam("now"),
            serial_locks.c.job_id == stmt.excluded.job_id,
        ),
    )
    return stmt.returning(serial_locks.c.serial_key)


_RELEASE = delete(serial_locks).where(
    serial_locks.c.serial_key == bindparam("key"), serial_locks.c.job_id == bindparam("job_id")
)
_STILL_MINE = and_(
    jobs.c.id == bindparam("job_id"),
    jobs.c.status == JobStatus.RUNNING.value,
    jobs.c.locked_by == bindparam("mine_worker"),
    jobs.c.attempts == bindparam("mine_attempts"),
)
_DONE = update(jobs).where(_STILL_MINE).values(status=JobStatus.SUCCEEDED.value, lease_until=None)


def _release(conn: Connection, job: Job) -> None:
    _key_lock(conn, job.serial_key, wait=True)
    conn.execute(_RELEASE, {"key": job.serial_key, "job_id": job.id})


def _mine(job: Job) -> dict[str, Any]:
    """The parameters of `_STILL_MINE` for this job."""
    return {"job_id": job.id, "mine_worker": job.locked_by, "mine_attempts": job.attempts}


def succeed(conn: Connection, job: Job, *, now: datetime) -> bool:
    """Mark done; False if the lease was lost (another worker re-claimed it meanwhile)."""
    _key_lock(conn, job.serial_key, wait=True)  # first, as every writer of serial_locks
    done = conn.execute(_DONE, {**_mine(job), "updated_at": now}).rowcount
    _release(conn, job)
    return bool(done)


def renew(conn: Connection, job: Job, *, now: datetime, lease: timedelta) -> bool:
    """Extend the lease of a job still running (the worker's heartbeat); False if lost."""
    _key_lock(conn, job.serial_key, wait=True)
    until = now + lease
    done = conn.execute(
        update(jobs).where(_STILL_MINE).values(lease_until=until), _mine(job)
    ).rowcount
    if done:
        conn.execute(
            update(serial_locks)
            .where(serial_locks.c.serial_key == job.serial_key, serial_locks.c.job_id == job.id)
            .values(lease_until=until)
        )
    return bool(done)


_TWINS = (
    select(jobs.c.id, jobs.c.payload)
    .where(
        jobs.c.serial_key == bindparam("key"),
        jobs.c.kind == bindparam("kind"),
        jobs.c.status == JobStatus.PENDING.value,
        jobs.c.id != bindparam("job_id"),
    )
    .order_by(jobs.c.id)
    .limit(bindparam("limit"))
)


def pending_twins(
    conn: Connection, job: Job, *, limit: int = 1000
) -> list[tuple[int, dict[str, Any]]]:
    """Pending jobs of the same kind and serial key as `job` (same work for the same return).

    Read before a job that refetches remote state acts: whatever they were queued for is
    covered by what it fetches next, so it may `absorb` them afterwards.
    """
    rows = conn.execute(
        _TWINS, {"key": job.serial_key, "kind": job.kind, "job_id": job.id, "limit": limit}
    )
    return [(int(i), dict(payload)) for i, payload in rows]


_PENDING_KEYS = (
    select(jobs.c.serial_key)
    .where(
        jobs.c.serial_key.in_(bindparam("keys", expanding=True)),
        jobs.c.kind == bindparam("kind"),
        jobs.c.status == JobStatus.PENDING.value,
    )
    .distinct()
)


def pending_keys(conn: Connection, *, kind: str, serial_keys: Iterable[str]) -> set[str]:
    """The serial keys, of those given, that have a pending (not yet claimed) job of `kind`."""
    keys = sorted(set(serial_keys))
    if not keys:
        return set()
    rows = conn.execute(_PENDING_KEYS, {"keys": keys, "kind": kind})
    return {str(key) for (key,) in rows}


_ABSORB = (
    update(jobs)
    .where(
        jobs.c.id.in_(bindparam("ids", expanding=True)),
        jobs.c.status == JobStatus.PENDING.value,
    )
    .values(
        status=JobStatus.SUCCEEDED.value, last_error=bindparam("why"), updated_at=bindparam("now")
    )
    .returning(jobs.c.id)
)


def absorb(conn: Connection, job_ids: list[int], *, into: Job, now: datetime) -> list[int]:
    """Close still-pending jobs as done by `into`; returns the ids actually closed."""
    if not job_ids:
        return []
    closed = conn.execute(
        _ABSORB, {"ids": job_ids, "why": f"coalesced into job {into.id}", "now": now}
    )
    return [int(i) for i in closed.scalars()]


def retry(conn: Connection, job: Job, *, now: datetime, run_after: datetime, error: str) -> bool:
    """Put the job back to pending until `run_after`, recording the error.

    If a job with the same dedupe key is already pending (the same work, asked for again
    while this one ran), this one is closed as superseded instead: at most one pending job
    per dedupe key, and the pending one does the work.
    """
    _key_lock(conn, job.serial_key, wait=True)
    twin = _pending_twin(conn, job)
    params = {**_mine(job), "now": now}
    if twin is None:
        params |= {"again": run_after, "why": error[:4000]}
    else:
        params["why"] = f"{error[:3900]} (superseded by pending job {twin})"
    done = conn.execute(_RETRY if twin is None else _SUPERSEDED, params).rowcount
    _release(conn, job)
    return bool(done)


_RETRY = (
    update(jobs)
    .where(_STILL_MINE)
    .values(
        status=JobStatus.PENDING.value,
        run_after=bindparam("again"),
        last_error=bindparam("why"),
        lease_until=None,
        updated_at=bindparam("now"),
    )
)
_SUPERSEDED = (
    update(jobs)
    .where(_STILL_MINE)
    .values(
        status=JobStatus.SUCCEEDED.value,
        last_error=bindparam("why"),
        lease_until=None,
        updated_at=bindparam("now"),
    )
)
_TWIN = select(jobs.c.id).where(
    jobs.c.dedupe_key
    == select(jobs.c.dedupe_key).where(jobs.c.id == bindparam("job_id")).scalar_subquery(),
    PENDING_SQL,  # SQL text, so PostgreSQL's generic plan can use the partial unique index
    jobs.c.id != bindparam("job_id"),
)


def _pending_twin(conn: Connection, job: Job) -> int | None:
    """The id of another pending job with this job's dedupe key, if any."""
    twin = conn.execute(_TWIN, {"job_id": job.id}).scalar()
    return None if twin is None else int(twin)


def bury(conn: Connection, job: Job, *, now: datetime, error: str) -> bool:
    """Give up on the job: status dead, visible in `jobs list --status dead`."""
    _key_lock(conn, job.serial_key, wait=True)
    done = conn.execute(
        update(jobs)
        .where(_STILL_MINE)
        .values(
            status=JobStatus.DEAD.value, lease_until=None, last_error=error[:4000], updated_at=now
        ),
        _mine(job),
    ).rowcount
    _release(conn, job)
    return bool(done)


def revive(conn: Connection, *, now: datetime, job_id: int | None = None) -> int:
    """Send dead jobs (one, or all) back to pending with fresh attempts; returns how many.

    A dead job whose dedupe key already has a pending job is left dead: that one does the work.
    """
    twin = jobs.alias("twin")
    pending_twin = (
        select(twin.c.id)
        .where(
            twin.c.dedupe_key == jobs.c.dedupe_key,
            twin.c.status == JobStatus.PENDING.value,
        )
        .exists()
    )
    dead_jobs = select(jobs.c.id).where(jobs.c.status == JobStatus.DEAD.value)
    if job_id is not None:
        dead_jobs = dead_jobs.where(jobs.c.id == job_id)
    ids = conn.execute(dead_jobs.order_by(jobs.c.id)).scalars()
    revived = 0
    for dead in list(ids):  # one at a time: two dead twins must not both become pending
        revived += conn.execute(
            update(jobs)
            .where(jobs.c.id == dead, ~pending_twin)
            .values(status=JobStatus.PENDING.value, attempts=0, run_after=now, updated_at=now)
        ).rowcount
    return revived


def counts(conn: Connection) -> dict[str, int]:
    """Jobs per status."""
    rows = conn.execute(select(jobs.c.status, func.count()).group_by(jobs.c.status))
    return {status: int(n) for status, n in rows}


def backlog(conn: Connection, *, now: datetime) -> list[dict[str, Any]]:
    """Per tenant with unfinished jobs: `due` (pending, runnable now), `waiting` (pending,
    later: retries, delayed syncs), `running`, `dead`, and `oldest_due` (the `run_after` of
    its oldest due job: how long its queue has been waiting). Most due first."""
    pending = jobs.c.status == JobStatus.PENDING.value
    due = pending & (jobs.c.run_after <= now)

    def count(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    stmt = (
        select(
            jobs.c.tenant,
            count(due).label("due"),
            count(pending & (jobs.c.run_after > now)).label("waiting"),
            count(jobs.c.status == JobStatus.RUNNING.value).label("running"),
            count(jobs.c.status == JobStatus.DEAD.value).label("dead"),
            func.min(case((due, jobs.c.run_after))).label("oldest_due"),
        )
        .where(
            jobs.c.status.in_(
                [JobStatus.PENDING.value, JobStatus.RUNNING.value, JobStatus.DEAD.value]
            )
        )
        .group_by(jobs.c.tenant)
    )
    rows = [dict(row) for row in conn.execute(stmt).mappings()]
    for row in rows:
        for name in ("due", "waiting", "running", "dead"):
            row[name] = int(row[name])
    return sorted(rows, key=lambda r: (-r["due"], r["tenant"]))


def listing(
    conn: Connection, *, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Jobs, newest first, for the CLI and the dashboard."""
    stmt = select(jobs).order_by(jobs.c.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(jobs.c.status == status)
    return [dict(row) for row in conn.execute(stmt).mappings()]


def next_due(conn: Connection) -> datetime | None:
    """When the earliest pending job becomes runnable (for the worker's sleep)."""
    return conn.execute(
        select(func.min(jobs.c.run_after)).where(jobs.c.status == JobStatus.PENDING.value)
    ).scalar()


def prune_succeeded(conn: Connection, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` succeeded jobs finished before `before`, oldest first; returns
    how many. Pending, running and dead jobs are never deleted."""
    oldest = select(jobs.c.id).where(*_finished_before(before)).order_by(jobs.c.id).limit(limit)
    return conn.execute(delete(jobs).where(jobs.c.id.in_(oldest.scalar_subquery()))).rowcount


def count_succeeded(conn: Connection, *, before: datetime) -> int:
    """Succeeded jobs finished before `before`."""
    stmt = select(func.count()).where(*_finished_before(before))
    return int(conn.execute(stmt).scalar_one())


def _finished_before(before: datetime) -> tuple[Any, ...]:
    return (jobs.c.status == JobStatus.SUCCEEDED.value, jobs.c.updated_at < before)
