"""A write transaction's latency beside idle workers and beside the dashboard's reads.

    python -m bench readers [--seconds 4] [--history 50000] [--pollers 8]
                            [--database sqlite,postgres]

On SQLite one transaction at a time may write, so whatever else holds the write lock delays
every write: a webhook's 2xx waits for its commit. This measures how much. A fresh migrated
database gets `--history` finished jobs (what the dashboard counts). Then, for `--seconds`
per case, this process writes one job per transaction as fast as it can (a job due in a
year: nobody claims it) and times each transaction, from `db.begin()` to its commit:
- `alone`: nothing else runs (the baseline);
- `idle workers`: another process runs a `Worker` with `--pollers` threads whose tenant has
  no jobs, so every poll finds nothing (a quiet night, or workers of other tenants);
- `dashboard`: another process reads `queries.summary` (the dashboard's counts over every
  job, return, exception and message) in a loop, as a screen refreshing does.
Figures: the 99th percentile, median and longest write in milliseconds, writes a second, and
the p99's ratio to `alone`. The longest write is the one to read: SQLite's busy handler is
not fair, so a writer can wait for seconds while a reader that takes the write lock (as
every transaction did before `Database.read()`) takes it again and again. The background
processes' own work is not timed.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import common
from returnsync.bootstrap import SystemClock
from returnsync.engine.worker import Worker
from returnsync.services import queries
from returnsync.storage import jobqueue
from returnsync.storage.db import Database
from returnsync.storage.tables import jobs
from returnsync.testing.tenants import tenants_context

if TYPE_CHECKING:
    import argparse
    from multiprocessing.synchronize import Event

CASES = ("alone", "idle workers", "dashboard")
IDLE_TENANT = "quiet"  # the idle workers' tenant: it never has a job
FAR = timedelta(days=365)  # the written jobs are due then: no worker takes them


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options."""
    parser.add_argument("--seconds", type=float, default=4.0, help="writing time per case")
    parser.add_argument("--history", type=int, default=50_000, help="finished jobs stored")
    parser.add_argument("--pollers", type=int, default=8, help="idle worker threads")
    parser.add_argument(
        "--database", default="sqlite,postgres", help="comma-separated: sqlite, postgres"
    )


def _fill(db: Database, history: int) -> None:
    now = datetime.now(UTC)
    rows = [
        jobqueue.job_row(
            tenant="shop",
            kind="advance",
            serial_key=f"return:shop:R{n}",
            payload={"return_ref": f"R{n}"},
            now=now - timedelta(seconds=history - n),
            dedupe_key=None,
            run_after=None,
            max_attempts=12,
        )
        | {"status": jobqueue.JobStatus.SUCCEEDED.value}
        for n in range(history)
    ]
    with db.begin() as conn:
        for start in range(0, len(rows), 5_000):
            conn.execute(jobs.insert(), rows[start : start + 5_000])


def background(url: str, case: str, pollers: int, ready: Event, stop: Event) -> None:
    """The other process of a case: idle worker threads, or the dashboard's reads."""
    db = Database(url)
    ctx = tenants_context(db, SystemClock(), IDLE_TENANT)
    try:
        if case == "idle workers":
            worker = Worker(
                ctx, {}, name="idle", threads=pollers, tenants={IDLE_TENANT}, pinned=True
            )
            worker.start()
            ready.set()
            stop.wait()
            worker.stop()
        else:
            queries.summary(ctx)
            ready.set()
            while not stop.is_set():
                queries.summary(ctx)
    finally:
        db.dispose()


def _writes(db: Database, seconds: float) -> list[float]:
    timings: list[float] = []
    n = 0
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        started = time.perf_counter()
        now = datetime.now(UTC)
        with db.begin() as conn:
            jobqueue.enqueue(
                conn,
                tenant="shop",
                kind="advance",
                serial_key=f"return:shop:W{n}",
                payload={},
                now=now,
                run_after=now + FAR,
            )
        timings.append(time.perf_counter() - started)
        n += 1
    return timings


def _case(url: str, case: str, args: argparse.Namespace) -> dict[str, float]:
    db = Database(url)
    ready, stop = common.SPAWN.Event(), common.SPAWN.Event()
    other = None
    try:
        if case != "alone":
            other = common.SPAWN.Process(
                target=background, args=(url, case, args.pollers, ready, stop), daemon=True
            )
            other.start()
            if not ready.wait(60):
                raise RuntimeError(f"the {case} process did not start")
            time.sleep(0.5)  # let it reach its steady state
        _writes(db, 0.3)  # warm the statement cache and the pool
        timings = _writes(db, args.seconds)
    finally:
        stop.set()
        if other is not None:
            other.join(30)
        db.dispose()
    return {
        "writes_per_second": len(timings) / sum(timings),
        "p50_ms": statistics.median(timings) * 1e3,
        "p99_ms": (common.percentile(timings, 99) or 0.0) * 1e3,
        "max_ms": max(timings) * 1e3,
    }


def measure(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, dict[str, float]]:
    """Every case on one database kind."""
    with common.fresh_database(kind, workdir) as url:
        db = Database(url)
        try:
            _fill(db, args.history)
        finally:
            db.dispose()
        return {case: _case(url, case, args) for case in CASES}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every case on every database asked for; returns the figures and table rows."""
    kinds = [k.strip() for k in args.database.split(",") if k.strip()]
    if "postgres" in kinds and common.pg_admin_url() is None:
        kinds.remove("postgres")
    with tempfile.TemporaryDirectory(prefix="bench-readers-") as scratch:
        figures = {kind: measure(kind, args, Path(scratch)) for kind in kinds}
    rows: list[dict[str, str]] = []
    for kind, cases in figures.items():
        base = cases["alone"]["p99_ms"]
        for case, fig in cases.items():
            what = f"{args.pollers} idle worker threads" if case == "idle workers" else case
            rows.append(
                common.row(
                    "readers",
                    f"{kind}, a write beside {what}",
                    "p99 ms",
                    common.fmt(fig["p99_ms"], 2),
                    f"p50 {fig['p50_ms']:.2f} ms, max {fig['max_ms']:,.1f} ms, "
                    f"{fig['writes_per_second']:,.0f} writes/s"
                    + ("" if case == "alone" else f", p99 {fig['p99_ms'] / base:.1f}x alone"),
                )
            )
    return {"bench": "readers", "history": args.history, "figures": figures, "rows": rows}
