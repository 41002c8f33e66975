"""The worker: claim a job, run its handler outside any transaction, record the outcome.

Leases expire, so a job whose worker was killed is claimed again; handlers are written to
be re-run (they check remote state before repeating an effect). A lost lease (another
worker took over) makes the old worker's outcome a no-op.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import threading
import traceback
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from returnsync.engine.retry import RetryPolicy, Verdict, classify
from returnsync.errors import ConfigError, TransientConnectorError
from returnsync.storage import exceptions, jobqueue

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from returnsync.services.context import Context
    from returnsync.storage.jobqueue import Job

    Handler = Callable[[Context, Job], Any]

log = logging.getLogger(__name__)
IDLE_SLEEP = 0.05  # seconds between polls of an empty queue


def for_tenants(configured: Collection[str], pinned: Collection[str] = ()) -> frozenset[str]:
    """The tenants a worker claims jobs for: those of its tenants file, or the `pinned` ones.

    A job of a tenant the worker has no configuration for would fail there as a ConfigError
    and be buried, so it is left to a worker that has it. A pinned tenant missing from the
    tenants file is a ConfigError (a typo would otherwise leave its jobs unclaimed).
    """
    missing = sorted(set(pinned) - set(configured))
    if missing:
        known = ", ".join(sorted(configured)) or "none"
        raise ConfigError(f"worker tenants {missing} are not in the tenants file (it has {known})")
    return frozenset(pinned or configured)


class _NotMine(Exception):  # noqa: N818 - a signal inside the worker, not an error
    """A claimed job of a tenant this worker has no configuration for."""

    def __init__(self, job: Job) -> None:
        super().__init__(job.tenant)
        self.job = job


class Worker:
    """Runs jobs with `threads` threads until `stop()`."""

    def __init__(
        self,
        ctx: Context,
        handlers: dict[str, Handler],
        *,
        name: str,
        threads: int = 1,
        policy: RetryPolicy | None = None,
        seed: int | None = None,
        tenants: Collection[str] | None = None,
        pinned: bool = False,
        turn: int = 0,
    ) -> None:
        self.ctx = ctx
        # Only these tenants' jobs are run (None: every tenant's); see `for_tenants`. A pinned
        # worker claims with that filter from the start; one that is not claims unfiltered
        # (a claim naming every tenant costs more the more tenants there are) until it meets
        # a job of another tenant, then filtered from there on (`_claim`).
        self.tenants = frozenset(tenants) if tenants is not None else None
        self._claim_filter = self.tenants if pinned else None
        self._switching = threading.Lock()
        # Tenant turns (docs/decisions/0011-tenant-turns.md): after `turn` jobs of one tenant
        # in a row, the next claim passes over that tenant if any other has a job due. 0: the
        # queue's own order only. A worker with one tenant has nobody to give a turn to.
        many = self.tenants is None or len(self.tenants) > 1
        self.turn = turn if many else 0
        self._turns = threading.Lock()
        self._serving: str | None = None
        self._in_a_row = 0
        self.turns_given = 0  # claims that went to another tenant's job (tests, metrics)
        self.handlers = handlers
        self.name = name
        self.threads = threads
        self.policy = policy or RetryPolicy()
        self.lease = timedelta(seconds=ctx.settings.job_lease_seconds)
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._pool: list[threading.Thread] = []

    def run_once(self, slot: str = "0", *, heartbeat: bool = False) -> bool:
        """Claim and run one job; False when there was nothing to do.

        With `heartbeat` (the worker threads), the lease is renewed every third of its length
        while the handler runs, so a slow job is not claimed again by another worker.
        """
        ctx = self.ctx
        try:
            job = self._claim(slot)
        except _NotMine as foreign:
            with self._switching:  # one warning, whichever thread met it first
                if self._claim_filter is None:
                    self._claim_filter = self.tenants
                    log.warning(
                        "worker %s met job %s of tenant %r, which its tenants file does not "
                        "have: left it for another worker; from now on it claims only jobs "
                        "of its %d tenant(s)",
                        self.name,
                        foreign.job.id,
                        foreign.job.tenant,
                        len(self.tenants or ()),
                    )
            job = self._claim(slot)
        if job is None:
            return False
        handler = self.handlers.get(job.kind)
        if handler is None:
            self._failed(job, LookupError(f"no handler for job kind {job.kind!r}"))
            return True
        try:
            with _Heartbeat(ctx, job, self.lease) if heartbeat else contextlib.nullcontext():
                handler(ctx, job)
        except Exception as exc:
            self._failed(job, exc)
        else:
            with ctx.db.begin() as conn:
                jobqueue.succeed(conn, job, now=ctx.clock.now())
        return True

    def _claim(self, slot: str) -> Job | None:
        """Claim a job; _NotMine (the claim rolled back) when it is another tenant's.

        When it is another tenant's turn (`turn` jobs of one tenant in a row), the claim first
        passes over that tenant; if no other tenant has a job due, it claims as usual (same
        transaction) and the count starts again, so a lone tenant costs one such read every
        `turn` jobs.
        """
        with self._turns:
            passing_over = self._serving if self.turn and self._in_a_row >= self.turn else None
        claim = functools.partial(
            jobqueue.claim,
            worker=f"{self.name}/{slot}",
            now=self.ctx.clock.now(),
            lease=self.lease,
            tenants=self._claim_filter,
        )
        with self.ctx.db.begin() as conn:
            job = claim(conn, passing_over=passing_over) if passing_over is not None else None
            if passing_over is not None and job is None:
                with self._turns:
                    self._in_a_row = 0  # nobody else is waiting: ask again `turn` jobs later
            job = job or claim(conn)
            if job is not None and self.tenants is not None and job.tenant not in self.tenants:
                raise _NotMine(job)
        if job is not None:
            self._served(job, gave_turn=passing_over is not None and job.tenant != passing_over)
        return job

    def _served(self, job: Job, *, gave_turn: bool) -> None:
        with self._turns:
            if job.tenant == self._serving:
                self._in_a_row += 1
            else:
                self._serving, self._in_a_row = job.tenant, 1
            if gave_turn:
                self.turns_given += 1

    def _failed(self, job: Job, exc: Exception) -> None:
        ctx = self.ctx
        now = ctx.clock.now()
        verdict, owner = classify(exc)
        frames = traceback.extract_tb(exc.__traceback__)
        where = (
            f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
        )
        error = f"{type(exc).__name__}: {exc}{where}"
        with ctx.db.begin() as conn:
            if verdict is Verdict.RETRY and job.attempts < job.max_attempts:
                retry_after = exc.retry_after if isinstance(exc, TransientConnectorError) else None
                wait = self.policy.delay(job.attempts, retry_after, self._rng)
                jobqueue.retry(
                    conn, job, now=now, run_after=now + timedelta(seconds=wait), error=error
                )
                log.info("job %s (%s) retry in %.1fs: %s", job.id, job.kind, wait, error)
                return
            jobqueue.bury(conn, job, now=now, error=error)
            exceptions.raise_open(
                conn,
                tenant=job.tenant,
                kind="job_dead",
                owner=owner,
                return_ref=str(job.payload.get("return_ref", "")),
                subject=f"job:{job.id}",
                message=f"{job.kind} gave up after {job.attempts} attempt(s): {error}",
                detail={"job_id": job.id, "kind": job.kind, "payload": job.payload},
                now=now,
            )
        log.warning("job %s (%s) dead: %s", job.id, job.kind, error)

    def anything_due(self) -> bool:
        """Whether a claim would find a job of this worker's now (read only, locks nothing)."""
        with self.ctx.db.read() as conn:
            return jobqueue.anything_due(conn, now=self.ctx.clock.now(), tenants=self._claim_filter)

    def _loop(self, slot: str) -> None:
        busy = False
        while not self._stop.is_set():
            try:
                # Unless the last poll ran a job, look before claiming: a claim is a write
                # transaction (on SQLite the one write lock), which an idle thread would
                # otherwise take 20 times a second, delaying every webhook's commit.
                busy = (busy or self.anything_due()) and self.run_once(slot, heartbeat=True)
            except Exception:
                log.exception("worker %s/%s: claim failed; backing off", self.name, slot)
                busy = False
            if not busy:
                self._stop.wait(IDLE_SLEEP)

    def start(self) -> None:
        """Start the worker threads."""
        for n in range(self.threads):
            thread = threading.Thread(
                target=self._loop, args=(str(n),), daemon=True, name=f"{self.name}-{n}"
            )
            thread.start()
            self._pool.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the jobs in hand finish."""
        self._stop.set()
        for thread in self._pool:
            thread.join(timeout)

    def drain(self, max_jobs: int = 1_000_000) -> int:
        """Run jobs in this thread until none is runnable now; returns how many ran."""
        ran = 0
        while ran < max_jobs and self.run_once():
            ran += 1
        return ran


class _Heartbeat:
    """Renews one job's lease in a side thread until the block ends."""

    def __init__(self, ctx: Context, job: Job, lease: timedelta) -> None:
        self._ctx = ctx
        self._job = job
        self._lease = lease
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{job.id}")

    def __enter__(self) -> None:
        self._thread.start()

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        interval = self._lease.total_seconds() / 3
        while not self._done.wait(interval):
            try:
                with self._ctx.db.begin() as conn:
                    kept = jobqueue.renew(
                        conn, self._job, now=self._ctx.clock.now(), lease=self._lease
                    )
            except Exception:  # the next beat tries again; the lease is the backstop
                log.exception("job %s: lease renewal failed", self._job.id)
                continue
            if not kept:
                log.warning("job %s: lease lost to another worker", self._job.id)
                return
