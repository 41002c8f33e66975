"""Multi-row job enqueue: the rows `jobqueue.enqueue` writes one by one, in one statement.

Used where many jobs are written in one transaction (group commit of webhook intake). The
columns and the dedupe rule are `jobqueue.enqueue`'s: with a `dedupe_key`, nothing is added
while a *pending* job holds the same key (the partial unique index `uq_jobs_pending_dedupe`),
and that includes an earlier job of the same batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from returnsync.storage import jobqueue
from returnsync.storage.sql import insert_many
from returnsync.storage.tables import jobs

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from sqlalchemy.engine import Connection


@dataclass(frozen=True, slots=True, kw_only=True)
class NewJob:
    """One job for `enqueue_many`; the arguments of `jobqueue.enqueue`."""

    tenant: str
    kind: str
    serial_key: str
    payload: dict[str, Any]
    now: datetime
    dedupe_key: str | None = None
    run_after: datetime | None = None
    max_attempts: int = 12


def enqueue_many(conn: Connection, new_jobs: Sequence[NewJob]) -> int:
    """Add the jobs in order (ids ascending with it); returns how many were added."""
    rows = [
        jobqueue.job_row(
            tenant=job.tenant,
            kind=job.kind,
            serial_key=job.serial_key,
            payload=job.payload,
            now=job.now,
            dedupe_key=job.dedupe_key,
            run_after=job.run_after,
            max_attempts=job.max_attempts,
        )
        for job in new_jobs
    ]
    if not rows:
        return 0
    deduped = any(row["dedupe_key"] is not None for row in rows)
    added = insert_many(
        conn,
        jobs,
        rows,
        returning=("id",),
        on_conflict=jobqueue.unless_pending_twin if deduped else None,
    )
    return len(added)
