"""The job claim on a backlog: every tenant, tenants named, pinned to one, passing over one.

    python -m bench claim [--backlog 6000] [--claims 300] [--database sqlite,postgres]

A fresh migrated database gets `--backlog` due jobs of four tenants: `big` (60 %), `mid`
and `small` (20 % each) and `tiny`, whose one job is the newest. Then `jobqueue.claim` is
timed `--claims` times per case, each claim in its own transaction and put back after it
(the job pending again, its serial lock gone), so every claim meets the same backlog:
- `every tenant`: `tenants=None` (the baseline, the claim as it was before tenants);
- `all four named`: the four tenants named in the claim (a pinned worker's filter);
- `300 named`: the same with 296 more names that have no jobs (a filter as long as an
  operator's tenants file: why a worker that is not pinned claims unfiltered);
- `small only`: a worker pinned to a tenant with a fifth of the backlog;
- `tiny only`: pinned to the tenant whose only job sits behind the whole backlog (the
  index walk passes over every other due job first; docs/decisions/0010);
- `passing over big`: every tenant but `big`, the claim a worker makes when it gives the
  other tenants a turn (docs/decisions/0011). When the busy tenant is alone, that claim
  walks its whole backlog and finds nothing, at about the cost of `tiny only`.
Figures are medians in microseconds, and each case's ratio to the baseline.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, update

from bench import common
from returnsync.storage import jobqueue
from returnsync.storage.db import Database
from returnsync.storage.tables import jobs, serial_locks

if TYPE_CHECKING:
    import argparse

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)
LEASE = timedelta(seconds=60)
SHARES = ("big", "big", "big", "mid", "small")  # by job number: 60 % / 20 % / 20 %
FOUR = frozenset({"big", "mid", "small", "tiny"})
# case: (the tenants claimed for, None for every tenant; the tenant passed over)
CASES: dict[str, tuple[frozenset[str] | None, str | None]] = {
    "every tenant": (None, None),
    "all four named": (FOUR, None),
    "300 named": (FOUR | {f"other{n:03d}" for n in range(296)}, None),  # a whole file
    "small only": (frozenset({"small"}), None),
    "tiny only": (frozenset({"tiny"}), None),
    "passing over big": (None, "big"),
}
_PUT_BACK = (
    update(jobs)
    .where(jobs.c.id == bindparam("job_id"))
    .values(status="pending", attempts=0, lease_until=None, locked_by=None)
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options."""
    parser.add_argument("--backlog", type=int, default=6_000, help="due jobs queued")
    parser.add_argument("--claims", type=int, default=300, help="timed claims per case")
    parser.add_argument(
        "--database", default="sqlite,postgres", help="comma-separated: sqlite, postgres"
    )


def _fill(db: Database, backlog: int) -> None:
    with db.begin() as conn:
        for n in range(backlog):
            tenant = "tiny" if n == backlog - 1 else SHARES[n % len(SHARES)]
            jobqueue.enqueue(
                conn,
                tenant=tenant,
                kind="advance",
                serial_key=f"return:{tenant}:R{n}",
                payload={},
                now=NOW - timedelta(seconds=backlog - n),
            )


def _median_us(
    db: Database, tenants: frozenset[str] | None, claims: int, passing_over: str | None = None
) -> float:
    seconds = []
    for _ in range(claims):
        with db.begin() as conn:
            started = time.perf_counter()
            job = jobqueue.claim(
                conn,
                worker="bench",
                now=NOW,
                lease=LEASE,
                tenants=tenants,
                passing_over=passing_over,
            )
            seconds.append(time.perf_counter() - started)
            if job is None:
                raise RuntimeError(f"nothing claimed for {sorted(tenants or ['every'])}")
            conn.execute(_PUT_BACK, {"job_id": job.id})
            conn.execute(delete(serial_locks))
    return statistics.median(seconds) * 1e6


def measure(kind: str, backlog: int, claims: int, workdir: Path) -> dict[str, float]:
    """Median claim time per case on one database kind."""
    with common.fresh_database(kind, workdir) as url:
        db = Database(url)
        try:
            _fill(db, backlog)
            _median_us(db, None, 20)  # warm the statement caches
            return {
                case: _median_us(db, tenants, claims, passing_over)
                for case, (tenants, passing_over) in CASES.items()
            }
        finally:
            db.dispose()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every case on every database asked for; returns the figures and table rows."""
    kinds = [k.strip() for k in args.database.split(",") if k.strip()]
    if "postgres" in kinds and common.pg_admin_url() is None:
        kinds.remove("postgres")
    with tempfile.TemporaryDirectory(prefix="bench-claim-") as scratch:
        workdir = Path(scratch)
        figures = {kind: measure(kind, args.backlog, args.claims, workdir) for kind in kinds}
    rows: list[dict[str, str]] = []
    for kind, medians in figures.items():
        base = medians["every tenant"]
        rows.extend(
            common.row(
                "claim",
                f"{kind}, {args.backlog:,} due jobs, {case}",
                "median us",
                common.fmt(us),
                "baseline (no tenant filter)" if case == "every tenant" else f"{us / base:.2f}x",
            )
            for case, us in medians.items()
        )
    return {
        "bench": "claim",
        "backlog": args.backlog,
        "claims": args.claims,
        "median_us": figures,
        "rows": rows,
    }
