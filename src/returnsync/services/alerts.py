"""Alerts leave after the transaction that raised them commits: as `alert` jobs (the outbox).

An alert sent from inside a transaction goes out even when that transaction then rolls
back (a crash before the commit, a later statement failing), and again when the work is
retried; and a notifier that calls out (email, Slack) would hold SQLite's write lock while
it does. So whatever opens an exception or a finding queues its alert with `queue`, in the
same transaction, and a worker sends it (`send`, the `alert` job's handler): only alerts
of committed state are sent. Delivery is at least once (a worker killed between the send
and the job's success sends it again).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from returnsync.storage import jobqueue

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.engine import Connection

    from returnsync.services.context import Context
    from returnsync.storage.jobqueue import Job

KIND = "alert"


def queue(
    conn: Connection, *, tenant: str, subject: str, body: str, severity: str, now: datetime
) -> None:
    """Queue one alert in the caller's transaction; it is sent once that commits."""
    jobqueue.enqueue(
        conn,
        tenant=tenant,
        kind=KIND,
        serial_key=f"alert:{tenant}:{subject}",
        payload={"subject": subject, "body": body, "severity": severity},
        now=now,
    )


def send(ctx: Context, job: Job) -> None:
    """Hand a queued alert to the notifier."""
    ctx.notifier.alert(
        tenant=job.tenant,
        subject=job.payload["subject"],
        body=job.payload["body"],
        severity=job.payload["severity"],
    )
