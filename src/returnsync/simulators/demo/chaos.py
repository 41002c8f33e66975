"""The chaos harness: many returns through the real servers, every fault on, SIGKILLs.

The three simulators run in this process, faults on (webhooks duplicated, reordered, late
and dropped; 5xx, timeouts, lost responses, 429s and latency at ZigZag and the gateway;
KCC pushes sent twice; a few Khaos stock codes renamed mid-run). returnsync runs as
separate OS processes on one database (SQLite file or PostgreSQL): one web process
(webhooks, KCC channel endpoints, polling sweep; `demo.webonly`) and `workers` worker
processes (`python -m returnsync worker`).

While ZigZag creates the returns in batches, a seeded RNG SIGKILLs a worker at random
moments (mostly one holding a job lease, so the kill lands mid-job) and restarts it; every
n-th kill hits the web process right after it answered a webhook of ours 2xx. The chaos
lasts until `kills` workers were killed, every return was created and `chaos_until_settled`
of them settled. Then the faults go off, the ZigZag clock moves on a day so late and failed
webhooks are re-sent, the polling sweep runs, and once nothing moves any more the figures
are computed from the simulators' own state:

- `lost`: returns in ZigZag that are neither terminal nor held in our database and carry
  no open exception (a return Khaos rejected on import is counted apart, `khaos_rejected`);
- `duplicate_credit_notes`: Khaos credit notes beyond one per AssociatedRef;
- `duplicate_refunds`: gateway refunds beyond one per (tenant, metadata.return_ref);
- `refunds_without_credit_note`: our refunds naming no Khaos credit note of their return;
- `amount_mismatches`: closed returns whose refund plus adopted goodwill is not the credit
  note's gross (less at most the rounding cap of 1p per line);
- `acknowledged_lost` / `acknowledged_unprocessed`: webhook deliveries ZigZag saw answered
  2xx whose eventId is not in our inbox / was never processed;
- `credit_notes_unobserved`: credit notes Khaos pushed (and kept pushing until answered 200)
  that our database does not hold.

    python -m returnsync.simulators.demo.chaos --returns 2000 --kills 100 --workers 4 \
        --backend sqlite
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import random
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import create_engine, func, select, text

from returnsync.bootstrap import build
from returnsync.config import Settings
from returnsync.domain.model import associated_ref
from returnsync.domain.states import TERMINAL, ReturnState
from returnsync.engine.scheduler import Scheduler
from returnsync.simulators.demo.dataset import generate
from returnsync.simulators.demo.processes import (
    ServiceProcess,
    service_env,
    webonly_argv,
    worker_argv,
)
from returnsync.simulators.demo.tenantsfile import tenants_toml
from returnsync.simulators.demo.world import (
    make_tenant,
    seed_world,
    start_simulators,
    wait_catalogue,
)
from returnsync.simulators.khaos.operations import rename_random_stock_code
from returnsync.simulators.runtime import free_port
from returnsync.storage import jobqueue
from returnsync.storage.tables import credit_notes, effects, exceptions, inbox, returns
from returnsync.storage.tables import jobs as job_table

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from returnsync.services.context import Context
    from returnsync.simulators.demo.dataset import RetailerData
    from returnsync.simulators.gateway import GatewaySimulator
    from returnsync.simulators.khaos import KhaosSimulator
    from returnsync.simulators.zigzag import ZigZagSimulator

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
#: Open exceptions that do not hold a return up (the saga goes on past them).
INFORMATIONAL = frozenset({"goodwill_refund_adopted"})
LIVE_REFUND = frozenset({"succeeded", "pending", "requires_action"})
ZIGZAG_DAY = 86400
MIN_UPTIME = 3.0  # seconds a process runs before it may be killed again (imports take ~1.5 s)
MID_JOB_SHARE = 0.8  # share of worker kills aimed at a worker holding a job lease
READY_WINDOW = 300.0  # seconds: a worker counts as working if it claimed a job this recently
CHECKED = (
    "lost",
    "duplicate_credit_notes",
    "duplicate_refunds",
    "refunds_without_credit_note",
    "acknowledged_lost",
    "acknowledged_unprocessed",
    "credit_notes_unobserved",
    "amount_mismatches",
    "closed_not_told_zigzag",
    "unexpected_exits",
)


def _default_zigzag_faults() -> dict[str, Any]:
    return {
        "error_5xx": 0.05,
        "timeout": 0.02,
        "lost_response": 0.03,
        "rate_limit_per_second": 60,
        "latency_ms": [1, 15],
        # webhook chaos, drawn per event when ZigZag publishes it
        "duplicate": 0.2,
        "reorder": 0.1,
        "late": 0.05,
        "drop": 0.05,
    }


def _default_gateway_faults() -> dict[str, Any]:
    return {
        "error_5xx": 0.05,
        "timeout": 0.03,
        "lost_response": 0.05,
        "rate_limit_per_second": 25,
        "latency_ms": [1, 20],
    }


def _default_khaos_faults() -> dict[str, Any]:
    return {"push_duplicate": 0.2}


@dataclass(kw_only=True)
class ChaosOptions:
    """One chaos run. Times are real seconds."""

    db_url: str
    returns: int = 2000
    tenants: int = 3
    workers: int = 4
    worker_threads: int = 2
    kills: int = 100  # worker SIGKILLs at least; web kills come on top
    web_kill_every: int = 8  # every n-th kill hits the web process, just after a 2xx (0: never)
    seed: int = 1
    faults: bool = True
    worker_lifetime: float = 8.0  # each worker is killed about this often (mean, seconds)
    kill_interval: tuple[float, float] | None = None  # gap between kills; None: from the above
    restart_delay: tuple[float, float] = (0.0, 0.4)  # a killed process comes back after this
    batch: int = 20  # returns per `POST /_sim/scenario` call (one retailer)
    create_fraction: float = 0.8  # share of the expected kill phase that creation spans
    chaos_until_settled: float = 0.25  # keep faults and kills on until this share has settled
    max_chaos_seconds: float = 600.0  # ... or until the chaos phase has lasted this long
    renames: int = 3  # Khaos operator renames of a stock code during the kill phase
    zigzag_day_every: float = 30.0  # advance ZigZag's clock a day this often (0: never)
    kcc_minute_seconds: float = 0.02
    poll_interval_seconds: float = 3.0
    settled_sync_delay_seconds: float = 2.0  # 30 s deployed; scaled like the poll interval
    lease_seconds: float = 10.0
    settle_timeout: float = 900.0
    workdir: Path | None = None
    zigzag_faults: dict[str, Any] = field(default_factory=_default_zigzag_faults)
    gateway_faults: dict[str, Any] = field(default_factory=_default_gateway_faults)
    khaos_faults: dict[str, Any] = field(default_factory=_default_khaos_faults)


# -- our processes ---------------------------------------------------------------------------


@dataclass
class _Counters:
    worker_kills: int = 0
    web_kills: int = 0
    unexpected: list[dict[str, Any]] = field(default_factory=list)
    renames: list[dict[str, str]] = field(default_factory=list)
    zigzag_days: int = 0
    probes: int = 0
    mid_job_kills: int = 0
    batches: int = 0
    sweeps: int = 0


@dataclass
class _Run:
    options: ChaosOptions
    log: Callable[[str], None]
    zigzag: ZigZagSimulator
    khaos: KhaosSimulator
    gateway: GatewaySimulator
    data: list[RetailerData]
    ctx: Context
    web: ServiceProcess
    workers: list[ServiceProcess]
    port: int
    created: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    counters: _Counters = field(default_factory=_Counters)
    timings: dict[str, float] = field(default_factory=dict)
    probes_acked: list[tuple[str, str]] = field(default_factory=list)

    @property
    def processes(self) -> list[ServiceProcess]:
        return [self.web, *self.workers]

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def supervise(self) -> None:
        """Restart any process that ended without our kill (and remember it: a finding)."""
        for proc in self.processes:
            code = proc.exited()
            if code is not None:
                self.counters.unexpected.append(
                    {"process": proc.name, "exit_code": code, "log_tail": proc.tail()}
                )
                self.log(f"!! {proc.name} exited by itself with {code}; restarting")
                proc.start()


# -- the run ---------------------------------------------------------------------------------


def run_chaos(
    options: ChaosOptions, log: Callable[[str], None] = lambda _m: None
) -> dict[str, Any]:
    """Run the chaos scenario; returns the figures (see the module docstring)."""
    started = time.monotonic()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="returnsync-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "logs").mkdir(exist_ok=True)
    zigzag, khaos, gateway = start_simulators(
        seed=options.seed, kcc_minute_seconds=options.kcc_minute_seconds
    )
    server_log = logging.getLogger("uvicorn.error")
    server_log.addFilter(_hung_up)
    run: _Run | None = None
    try:
        run = _start(options, log=log, workdir=workdir, zigzag=zigzag, khaos=khaos, gateway=gateway)
        _boot(run)
        run.timings["setup"] = time.monotonic() - started
        phase = time.monotonic()
        _chaos_phase(run)
        run.timings["chaos"] = time.monotonic() - phase
        phase = time.monotonic()
        settled = _drain(run)
        run.timings["drain"] = time.monotonic() - phase
        summary = _figures(run, settled=settled)
        summary["seconds"] = round(time.monotonic() - started, 1)
        summary["workdir"] = str(workdir)
        return summary
    finally:
        if run is not None:
            for proc in run.processes:
                proc.stop()
            run.ctx.db.dispose()
        for sim in (zigzag, khaos, gateway):
            sim.stop()
        server_log.removeFilter(_hung_up)


def _hung_up(record: logging.LogRecord) -> bool:
    """Drop the simulators' tracebacks for a client that hung up: a worker we SIGKILLed."""
    error = record.exc_info[1] if record.exc_info else None
    return type(error).__name__ != "ClientDisconnect"


def _start(  # builds the run; starts no process
    options: ChaosOptions,
    *,
    log: Callable[[str], None],
    workdir: Path,
    zigzag: ZigZagSimulator,
    khaos: KhaosSimulator,
    gateway: GatewaySimulator,
) -> _Run:
    log(f"simulators up: zigzag {zigzag.url}  khaos {khaos.url}  gateway {gateway.url}")
    per_tenant = math.ceil(options.returns / options.tenants)
    data = generate(
        seed=options.seed, tenants=options.tenants, orders_per_tenant=max(per_tenant + 10, 30)
    )
    tenants = {d.tenant: make_tenant(d) for d in data}
    tenants_file = workdir / "tenants.toml"
    tenants_file.write_text(tenants_toml(tenants), encoding="utf-8")
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    settings = Settings(
        database_url=options.db_url,
        tenants_file=tenants_file,
        public_url=public,
        zigzag_base_url=zigzag.url,
        gateway_base_url=gateway.url,
        worker_threads=options.worker_threads,
        job_lease_seconds=options.lease_seconds,
        poll_interval_seconds=options.poll_interval_seconds,
        settled_sync_delay_seconds=options.settled_sync_delay_seconds,
    )
    ctx = build(settings)  # migrates once, before any process starts
    env = service_env(settings)
    logdir = workdir / "logs"
    web = ServiceProcess("web", webonly_argv(port), env, logdir)
    workers = [
        ServiceProcess(f"w{n + 1}", worker_argv(options.worker_threads), env, logdir)
        for n in range(options.workers)
    ]
    return _Run(
        options=options,
        log=log,
        zigzag=zigzag,
        khaos=khaos,
        gateway=gateway,
        data=data,
        ctx=ctx,
        web=web,
        workers=workers,
        port=port,
    )


def _boot(run: _Run) -> None:
    """Start our processes, seed the simulators, wait for the catalogue; then faults on."""
    run.web.start()
    _wait_web(run)
    for proc in run.workers:
        proc.start()
    run.log(
        f"returnsync up: web {run.public_url}, {len(run.workers)} worker process(es); "
        f"database {_safe(run.ctx)}"
    )
    seed_world(
        zigzag_url=run.zigzag.url,
        khaos_url=run.khaos.url,
        gateway_url=run.gateway.url,
        public_url=run.public_url,
        data=run.data,
        tenants=run.ctx.tenants,
    )
    wait_catalogue(run.ctx.db, run.data, timeout=120)
    run.log("seeded; Khaos catalogue received")
    if run.options.faults:
        _set_faults(run, on=True)
        run.log("faults on")


def _safe(ctx: Context) -> str:
    return ctx.db.engine.url.render_as_string(hide_password=True)


def _wait_web(run: _Run, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.supervise()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{run.public_url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the web process did not come up in {timeout:.0f}s:\n{run.web.tail()}")


def _post(url: str, body: dict[str, Any]) -> Any:
    resp = httpx.post(url, json=body, timeout=120.0)
    if resp.status_code >= 300:
        raise RuntimeError(f"POST {url} -> {resp.status_code}: {resp.text[:500]}")
    return resp.json()


def _set_faults(run: _Run, *, on: bool) -> None:
    options = run.options
    zz = dict(options.zigzag_faults)
    gw = dict(options.gateway_faults)
    kc = dict(options.khaos_faults)
    if not on:
        zz = {k: ([0, 0] if k == "latency_ms" else 0) for k in zz}
        gw = {k: ([0, 0] if k == "latency_ms" else 0) for k in gw}
        kc = dict.fromkeys(kc, 0)
    _post(f"{run.zigzag.url}/_sim/faults", zz)
    _post(f"{run.gateway.url}/_sim/faults", gw)
    _post(f"{run.khaos.url}/_sim/faults", {"channel": kc})


def _plan_batches(options: ChaosOptions, data: list[RetailerData]) -> list[tuple[str, int]]:
    """(retailer code, count) per scenario call, round-robin over retailers."""
    share = [options.returns // len(data)] * len(data)
    for n in range(options.returns % len(data)):
        share[n] += 1
    batches: list[tuple[str, int]] = []
    while any(share):
        for n, d in enumerate(data):
            take = min(options.batch, share[n])
            if take:
                batches.append((d.retailer_code, take))
                share[n] -= take
    return batches


def _chaos_phase(run: _Run) -> None:
    """Create the returns in batches while killing processes; faults stay on throughout.

    Ends once `kills` workers were killed, every batch was created and `chaos_until_settled`
    of the returns have settled (or `max_chaos_seconds` passed), so the kills land while
    the saga is busy, not only while returns are being created.
    """
    options = run.options
    rng = random.Random(f"{options.seed}:chaos")
    batches = _plan_batches(options, run.data)
    gap = _kill_gap(options)
    mean_gap = sum(gap) / 2
    spread = max(options.kills * mean_gap * options.create_fraction, 1.0)
    batch_at = [spread * n / len(batches) for n in range(len(batches))]
    rename_at = sorted(rng.uniform(0, spread) for _ in range(options.renames))
    next_kill = rng.uniform(*gap)
    day_every = options.zigzag_day_every if options.faults else 0.0
    next_day = day_every or math.inf
    next_report = 15.0
    next_look = 0.0
    share = 0.0
    t0 = time.monotonic()
    counters = run.counters
    run.log(
        f"chaos: {len(batches)} scenario batches over ~{spread:.0f}s, "
        f"a kill every {gap[0]:.1f}-{gap[1]:.1f}s"
    )
    while True:
        now = time.monotonic() - t0
        run.supervise()
        created_all = counters.batches >= len(batches)
        if created_all and now >= next_look:
            view = _settle_view(run)
            share = view["settled"] / max(1, view["expected"])
            next_look = now + 2.0
        if (
            counters.worker_kills >= options.kills
            and created_all
            and (share >= options.chaos_until_settled or now >= options.max_chaos_seconds)
        ):
            break
        if not created_all and now >= batch_at[counters.batches]:
            _create_batch(run, *batches[counters.batches])
            continue
        if rename_at and now >= rename_at[0]:
            rename_at.pop(0)
            _rename(run, rng)
        if now >= next_day:
            _post(f"{run.zigzag.url}/_sim/advance_clock", {"seconds": ZIGZAG_DAY})
            counters.zigzag_days += 1
            next_day = now + day_every
        if options.kills and now >= next_kill:
            killed = _kill_one(run, rng)
            next_kill = now + (rng.uniform(*gap) if killed else 0.5)
        if now >= next_report:
            run.log(f"  t={now:5.0f}s {_progress_line(run)}")
            next_report = now + 15.0
        waits = [next_kill - now, next_day - now, 0.25]
        if not created_all:
            waits.append(batch_at[counters.batches] - now)
        time.sleep(max(0.005, min(waits)))
    run.log(
        f"chaos phase done after {time.monotonic() - t0:.0f}s: {counters.worker_kills} worker "
        f"kills, {counters.web_kills} web kills ({counters.probes} probed just after a 2xx), "
        f"{sum(len(v) for v in run.created.values())} returns created, {share:.0%} settled"
    )


def _kill_gap(options: ChaosOptions) -> tuple[float, float]:
    """Seconds between two kills: given, or so that each worker lives `worker_lifetime`."""
    if options.kill_interval is not None:
        return options.kill_interval
    mean = options.worker_lifetime / max(1, options.workers)
    return (0.3 * mean, 1.7 * mean)


def _create_batch(run: _Run, retailer_code: str, count: int) -> None:
    """ZigZag creates `count` returns for one retailer, each driven to Processed at once."""
    counters = run.counters
    resp = _post(
        f"{run.zigzag.url}/_sim/scenario",
        {
            "retailerCode": retailer_code,
            "count": count,
            "seed": run.options.seed * 100_003 + counters.batches,
        },
    )
    tenant = next(d.tenant for d in run.data if d.retailer_code == retailer_code)
    run.created[tenant].extend(resp["returnIds"])
    counters.batches += 1


def _kill_one(run: _Run, rng: random.Random) -> bool:
    """SIGKILL a worker (mostly one holding a job), or every n-th time the web process just
    after it answered a 2xx; restart it. False when no process was worth killing yet."""
    options = run.options
    counters = run.counters
    number = counters.worker_kills + counters.web_kills + 1
    if options.web_kill_every and number % options.web_kill_every == 0:
        if run.web.uptime < MIN_UPTIME or not _probe(run, rng):
            return False
        proc = run.web
        proc.kill()
        counters.web_kills += 1
    else:
        picked = _pick_worker(run, rng)
        if picked is None:
            return False
        proc, mid_job = picked
        proc.kill()
        counters.worker_kills += 1
        counters.mid_job_kills += mid_job
    time.sleep(rng.uniform(*options.restart_delay))
    proc.start()
    return True


def _pick_worker(run: _Run, rng: random.Random) -> tuple[ServiceProcess, bool] | None:
    """A worker that has claimed a job since it started, preferably one holding a lease now.

    A process still importing (seconds on a loaded machine) is not worth killing: the kill
    would test nothing, and killing it again and again only starves the queue.
    """
    up = [p for p in run.workers if p.exited() is None and p.uptime >= MIN_UPTIME]
    if not up:
        return None
    now = run.ctx.clock.now()
    with run.ctx.db.read() as conn:
        rows = conn.execute(
            select(job_table.c.locked_by, job_table.c.status, job_table.c.lease_until)
            .where(job_table.c.updated_at >= now - timedelta(seconds=READY_WINDOW))
            .distinct()
        ).all()
    worked = {str(who).split("/", 1)[0] for who, _, _ in rows if who}
    holding = {
        str(who).split("/", 1)[0]
        for who, status, until in rows
        if who and status == "running" and until is not None and until > now
    }
    ready = [p for p in up if p.incarnation in worked]
    if not ready:
        return None
    busy = [p for p in ready if p.incarnation in holding]
    if busy and rng.random() < MID_JOB_SHARE:
        return rng.choice(busy), True
    proc = rng.choice(ready)
    return proc, proc.incarnation in holding


def _probe(run: _Run, rng: random.Random) -> bool:
    """Send one webhook ourselves (a copy of a recent event under a new eventId); True on 2xx.

    The caller SIGKILLs the web process at once: the event must still be in the inbox, and
    processed, at the end (the durability rule: acknowledged means stored).
    """
    events = run.zigzag.webhooks.events()[-50:]
    if not events:
        return False
    envelope = dict(rng.choice(events)["envelope"])
    envelope["eventId"] = f"chaos-probe-{run.counters.probes + 1}-{uuid.uuid4().hex[:8]}"
    tenant = next(d.tenant for d in run.data if d.retailer_code == envelope["retailerCode"])
    key = run.ctx.tenant(tenant).zigzag.webhook_key.get_secret_value()
    try:
        resp = httpx.post(
            f"{run.public_url}/webhooks/zigzag/{tenant}",
            json=envelope,
            headers={"X-ZigZag-Api-Key": key},
            timeout=5.0,
        )
    except httpx.HTTPError:
        return False
    if not 200 <= resp.status_code < 300:
        return False
    run.counters.probes += 1
    run.probes_acked.append((tenant, str(envelope["eventId"])))
    return True


def _rename(run: _Run, rng: random.Random) -> None:
    tenant = rng.choice(run.data).tenant
    with run.khaos.locked():
        company = run.khaos.company(tenant)
        before = {sid: item.StockCode for sid, item in company.catalogue.items.items()}
        item = rename_random_stock_code(company)
    if item is not None:
        run.counters.renames.append(
            {
                "tenant": tenant,
                "StockID": item.StockID,
                "from": before.get(item.StockID, ""),
                "to": item.StockCode,
            }
        )


def _progress_line(run: _Run) -> str:
    view = _settle_view(run, _khaos_rejections(run.khaos))
    jobs = view["jobs"]
    return (
        f"created={view['expected']} settled={view['settled']} "
        f"jobs pending={jobs.get('pending', 0)} running={jobs.get('running', 0)} "
        f"dead={jobs.get('dead', 0)} kills={run.counters.worker_kills}+{run.counters.web_kills}"
    )


# -- draining and settling -------------------------------------------------------------------


def _khaos_rejections(khaos: KhaosSimulator) -> dict[str, str]:
    """AssociatedRef -> why Khaos refused to import it (its own notifications and pull log)."""
    found: dict[str, str] = {}
    with khaos.locked():
        for company in khaos.companies():
            for note in company.notifications:
                if note.get("kind") == "import" and note.get("AssociatedRef"):
                    found[str(note["AssociatedRef"])] = str(note.get("message", ""))
            for pull in company.pulls:
                for rejected in pull.get("rejected", ()):
                    if rejected.get("AssociatedRef"):
                        found[str(rejected["AssociatedRef"])] = str(rejected.get("message", ""))
            for imported in company.customer_returns.values():
                found.pop(imported.AssociatedRef, None)
    return found


def _khaos_outbox_empty(khaos: KhaosSimulator) -> bool:
    with khaos.locked():
        return all(not company.outbox.heads() for company in khaos.companies())


def _expected(run: _Run) -> Iterator[tuple[str, str]]:
    for tenant, refs in run.created.items():
        for ref in refs:
            yield tenant, ref


def _settle_view(run: _Run, rejected: dict[str, str] | None = None) -> dict[str, Any]:
    """Where every created return stands in our database, and whether anything still moves."""
    with run.ctx.db.read() as conn:
        states = {
            (t, r): s
            for t, r, s in conn.execute(
                select(returns.c.tenant, returns.c.return_ref, returns.c.state)
            ).all()
        }
        open_exc: dict[tuple[str, str], set[str]] = defaultdict(set)
        for t, r, kind in conn.execute(
            select(exceptions.c.tenant, exceptions.c.return_ref, exceptions.c.kind).where(
                exceptions.c.status == "open"
            )
        ).all():
            open_exc[(t, r)].add(kind)
        jobs = jobqueue.counts(conn)
    codes = {d.tenant: d.retailer_code for d in run.data}
    rejected = rejected if rejected is not None else {}
    settled = 0
    unsettled: list[dict[str, Any]] = []
    held_by: Counter[str] = Counter()
    khaos_rejected: list[str] = []
    for tenant, ref in _expected(run):
        state = states.get((tenant, ref))
        blocking = sorted(open_exc.get((tenant, ref), set()) - INFORMATIONAL)
        if state is not None and (
            ReturnState(state) in TERMINAL or state == ReturnState.HELD.value
        ):
            settled += 1
            if state == ReturnState.HELD.value:
                held_by["held:" + ",".join(blocking or ["none"])] += 1
            continue
        if blocking:
            settled += 1
            held_by[f"{state}:" + ",".join(blocking)] += 1
            continue
        if state == ReturnState.STAGED.value and associated_ref(codes[tenant], ref) in rejected:
            settled += 1
            khaos_rejected.append(ref)
            continue
        unsettled.append({"tenant": tenant, "return_ref": ref, "state": state})
    return {
        "expected": settled + len(unsettled),
        "settled": settled,
        "unsettled": unsettled,
        "held_by": dict(held_by),
        "khaos_rejected": khaos_rejected,
        "jobs": jobs,
    }


def _drain(run: _Run) -> bool:
    """Faults off, late and failed webhooks re-sent, sweeps run; wait until settled."""
    options = run.options
    if options.faults:
        _set_faults(run, on=False)
    _wait_web(run)
    _post(f"{run.zigzag.url}/_sim/advance_clock", {"seconds": ZIGZAG_DAY})
    run.counters.zigzag_days += 1
    run.log("faults off; ZigZag clock moved on a day (late and failed webhooks re-sent)")
    scheduler = Scheduler(run.ctx, interval=0)
    deadline = time.monotonic() + options.settle_timeout
    last_sweep = last_day = last_report = time.monotonic()
    sweeps = 0
    quiet = 0
    while time.monotonic() < deadline:
        run.supervise()
        now = time.monotonic()
        if sweeps < 3 or now - last_sweep >= 10.0:
            scheduler.tick()
            sweeps += 1
            last_sweep = now
        stats = run.zigzag.webhooks.stats()
        waiting = stats["byState"].get("retrying", 0) + stats["byState"].get("late", 0)
        if waiting and stats["idle"] and now - last_day >= 10.0:
            _post(f"{run.zigzag.url}/_sim/advance_clock", {"seconds": ZIGZAG_DAY})
            run.counters.zigzag_days += 1
            last_day = now
        view = _settle_view(run, _khaos_rejections(run.khaos))
        jobs = view["jobs"]
        idle = (
            jobs.get("pending", 0) + jobs.get("running", 0) == 0
            and stats["idle"]
            and _khaos_outbox_empty(run.khaos)
        )
        done = not view["unsettled"] and idle and sweeps >= 3
        quiet = quiet + 1 if done else 0
        if quiet >= 3:  # three looks in a row, a second apart
            run.counters.sweeps = sweeps
            return True
        if now - last_report >= 15.0:
            run.log(f"  draining: {_progress_line(run)}")
            last_report = now
        time.sleep(1.0)
    run.counters.sweeps = sweeps
    run.log("!! did not settle before the timeout")
    return False


# -- the figures -----------------------------------------------------------------------------


def _pence(value: Any) -> int:
    return int((Decimal(str(value)) * 100).to_integral_value())


@dataclass(kw_only=True)
class _Truth:
    """The simulators' state, indexed for the checks."""

    zz: dict[str, Any]
    kc: dict[str, Any]
    gw: dict[str, Any]
    notes: dict[tuple[str, str], dict[str, Any]]  # (company = tenant, code) -> credit note
    by_assoc: dict[str, list[dict[str, Any]]]  # AssociatedRef -> credit notes
    ours: list[dict[str, Any]]  # refunds carrying a return_ref (paid by returnsync)


@dataclass(kw_only=True)
class _Ours:
    """Our database, read once at the end."""

    states: dict[tuple[str, str], str]
    refund_refs: dict[tuple[str, str], str | None]
    inbox: dict[tuple[str, str], str]  # (tenant, eventId) -> status, ZigZag webhooks
    seen_notes: set[tuple[str, str]]
    goodwill: list[tuple[str, str, dict[str, Any]]]  # (tenant, effect key, detail)
    open_exceptions: dict[str, int]
    jobs: dict[str, int]
    dead: list[dict[str, Any]]


def _truth(run: _Run) -> _Truth:
    kc = run.khaos.state_snapshot()
    gw = run.gateway.state_snapshot()
    notes = {
        (company, n["code"]): n
        for company, body in kc["companies"].items()
        for n in body["credit_notes"]
    }
    by_assoc: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for note in notes.values():
        if note.get("AssociatedRef"):
            by_assoc[note["AssociatedRef"]].append(note)
    return _Truth(
        zz=run.zigzag.state_snapshot(),
        kc=kc,
        gw=gw,
        notes=notes,
        by_assoc=by_assoc,
        ours=[r for r in gw["refunds"] if r["metadata"].get("return_ref")],
    )


def _ours(run: _Run) -> _Ours:
    with run.ctx.db.read() as conn:
        rows = conn.execute(
            select(returns.c.tenant, returns.c.return_ref, returns.c.state, returns.c.refund_ref)
        ).all()
        inbox_rows = conn.execute(
            select(inbox.c.tenant, inbox.c.dedupe_key, inbox.c.status).where(
                inbox.c.source == "zigzag_webhook"
            )
        ).all()
        seen = conn.execute(select(credit_notes.c.tenant, credit_notes.c.code)).all()
        goodwill = conn.execute(
            select(effects.c.tenant, effects.c.effect_key, effects.c.detail).where(
                effects.c.kind == "goodwill"
            )
        ).all()
        open_exceptions = conn.execute(
            select(exceptions.c.kind, func.count())
            .where(exceptions.c.status == "open")
            .group_by(exceptions.c.kind)
        ).all()
        jobs = jobqueue.counts(conn)
        dead = conn.execute(
            text("SELECT id, kind, last_error FROM jobs WHERE status = 'dead' LIMIT 10")
        ).mappings()
        return _Ours(
            states={(t, r): s for t, r, s, _ in rows},
            refund_refs={(t, r): ref for t, r, _, ref in rows},
            inbox={(t, k): s for t, k, s in inbox_rows},
            seen_notes={(t, c) for t, c in seen},
            goodwill=[(t, k, dict(d)) for t, k, d in goodwill],
            open_exceptions={str(k): int(n) for k, n in open_exceptions},
            jobs=jobs,
            dead=[dict(row) for row in dead],
        )


def _refund_checks(run: _Run, truth: _Truth) -> dict[str, Any]:
    """Duplicates, and refunds that name no credit note of their own return."""
    code_of = {d.tenant: d.retailer_code for d in run.data}
    per_return = Counter(
        (r["metadata"].get("tenant", ""), r["metadata"]["return_ref"]) for r in truth.ours
    )
    without_note = []
    for r in truth.ours:
        meta = r["metadata"]
        tenant = meta.get("tenant", "")
        note = truth.notes.get((tenant, meta.get("credit_note", "")))
        want = associated_ref(code_of[tenant], meta["return_ref"]) if tenant in code_of else None
        if note is None or note.get("AssociatedRef") != want:
            without_note.append(r["id"])
    return {
        "duplicate_credit_notes": sum(len(v) - 1 for v in truth.by_assoc.values() if len(v) > 1),
        "duplicate_refunds": sum(n - 1 for n in per_return.values() if n > 1),
        "refunds_without_credit_note": len(without_note),
        "refunds_without_credit_note_ids": without_note[:20],
        "refunds": len(truth.gw["refunds"]),
        "refunds_by_returnsync": len(truth.ours),
        "credit_notes": len(truth.notes),
    }


def _money_checks(run: _Run, truth: _Truth, ours: _Ours) -> dict[str, Any]:
    """For every closed return: refund + adopted goodwill == credit gross (less <= 1p a line)."""
    code_of = {d.tenant: d.retailer_code for d in run.data}
    refunds = truth.gw["refunds"]
    manual = {r["id"]: int(r["amount"]) for r in refunds if not r["metadata"].get("return_ref")}
    goodwill: Counter[tuple[str, str]] = Counter()
    for tenant, key, detail in ours.goodwill:
        refund_id = key.rsplit(":", 1)[-1]
        goodwill[(tenant, str(detail.get("return_ref", "")))] += manual.get(refund_id, 0)
    paid: Counter[tuple[str, str]] = Counter()
    for r in truth.ours:
        if r["status"] in LIVE_REFUND:
            paid[(r["metadata"].get("tenant", ""), r["metadata"]["return_ref"])] += int(r["amount"])
    totals = Counter[str]()
    mismatches: list[dict[str, Any]] = []
    for (tenant, ref), state in sorted(ours.states.items()):
        if state != ReturnState.CLOSED.value:
            continue
        found = truth.by_assoc.get(associated_ref(code_of[tenant], ref), [])
        if not found:
            mismatches.append({"return_ref": ref, "why": "closed without a Khaos credit note"})
            continue
        note = found[0]
        credit = _pence(note["gross"])
        applied = min(goodwill[(tenant, ref)], credit)
        refund = paid[(tenant, ref)]
        totals["credit"] += credit
        totals["refund"] += refund
        totals["goodwill"] += applied
        cap = _pence(run.ctx.tenant(tenant).refund_tolerance) * max(1, len(note["lines"] or []))
        if not 0 <= credit - applied - refund <= cap:
            mismatches.append(
                {"return_ref": ref, "credit": credit, "refund": refund, "goodwill": applied}
            )
    return {
        "refund_total_pence": totals["refund"],
        "goodwill_applied_pence": totals["goodwill"],
        "credit_total_pence": totals["credit"],
        "rounding_gap_pence": totals["credit"] - totals["refund"] - totals["goodwill"],
        "amount_mismatches": len(mismatches),
        "amount_mismatch_examples": mismatches[:10],
    }


def _ack_checks(run: _Run, truth: _Truth, ours: _Ours) -> dict[str, Any]:
    """Every 2xx we answered: stored (inbox row with that eventId) and processed."""
    tenant_of = {d.retailer_code: d.tenant for d in run.data}
    acked = {
        (tenant_of.get(d["retailerCode"], ""), d["eventId"])
        for d in truth.zz["deliveries"]
        if d["status"] is not None and 200 <= d["status"] < 300
    }
    acked.update(run.probes_acked)
    lost = sorted(k for t, k in acked if (t, k) not in ours.inbox)
    unprocessed = sorted(
        k for t, k in acked if ours.inbox.get((t, k)) not in {None, "processed", "quarantined"}
    )
    unobserved = sorted(
        code
        for (company, code), note in truth.notes.items()
        if str(note.get("AssociatedRef", "")).startswith("ZZ-")
        and (company, code) not in ours.seen_notes
    )
    return {
        "acknowledged": len(acked),
        "acknowledged_probes": len(run.probes_acked),
        "acknowledged_lost": len(lost),
        "acknowledged_lost_ids": lost[:20],
        "acknowledged_unprocessed": len(unprocessed),
        "acknowledged_unprocessed_ids": unprocessed[:20],
        "credit_notes_unobserved": len(unobserved),
    }


def _zigzag_told(truth: _Truth, ours: _Ours) -> list[str]:
    """Closed returns whose outcome (with our refund reference) ZigZag does not show."""
    zz_returns = {r["returnId"]: r for r in truth.zz["returns"]}
    not_told = []
    for key, state in ours.states.items():
        if state != ReturnState.CLOSED.value:
            continue
        zz = zz_returns.get(key[1]) or {}
        told = (zz.get("refund") or {}).get("refundReference")
        if zz.get("status") not in {"Refunded", "Closed"} or told != ours.refund_refs.get(key):
            not_told.append(key[1])
    return not_told


def _fault_counts(truth: _Truth) -> dict[str, Any]:
    events = truth.zz["events"]
    pushes = [p for body in truth.kc["companies"].values() for p in body["pushes"]]
    return {
        "zigzag_injected": truth.zz["faultLog"],
        "zigzag_webhook_chaos": {
            kind: sum(1 for e in events if e["chaos"].get(kind))
            for kind in ("duplicate", "reorder", "late", "drop")
        },
        "zigzag_deliveries_by_status": dict(
            Counter(
                "no_response" if d["status"] is None else str(d["status"])
                for d in truth.zz["deliveries"]
            )
        ),
        "gateway_injected": truth.gw["faults"]["injected"],
        "khaos_push_duplicates": sum(1 for p in pushes if p.get("duplicate")),
        "khaos_push_failures": sum(1 for p in pushes if p.get("status") != 200),
    }


def _in_flight(run: _Run, unsettled: list[dict[str, Any]]) -> int:
    """How many unsettled returns still had work queued when we stopped waiting.

    Only meaningful when the run did not settle in time: those are slow, not stuck (they
    still count as lost, since the run must settle).
    """
    if not unsettled:
        return 0
    with run.ctx.db.read() as conn:
        keys = {
            str(key)
            for (key,) in conn.execute(
                select(job_table.c.serial_key).where(job_table.c.status.in_(("pending", "running")))
            )
        }
    pushes = {key.split(":")[1] for key in keys if key.startswith("khaos:")}
    return sum(
        1
        for u in unsettled
        if f"return:{u['tenant']}:{u['return_ref']}" in keys
        or (u["state"] == ReturnState.STAGED.value and u["tenant"] in pushes)
    )


def _figures(run: _Run, *, settled: bool) -> dict[str, Any]:
    truth = _truth(run)
    ours = _ours(run)
    rejected = _khaos_rejections(run.khaos)
    view = _settle_view(run, rejected)
    code_of = {d.tenant: d.retailer_code for d in run.data}
    in_zigzag = {r["returnId"] for r in truth.zz["returns"]}
    lost = [u["return_ref"] for u in view["unsettled"]]
    lost += [ref for _, ref in _expected(run) if ref not in in_zigzag]
    not_told = _zigzag_told(truth, ours)
    counters = run.counters
    summary: dict[str, Any] = {
        "backend": run.ctx.db.dialect,
        "settled": settled,
        "returns": len(truth.zz["returns"]),
        "returns_created": view["expected"],
        "lost": len(lost),
        "lost_but_in_flight": _in_flight(run, view["unsettled"]),
        "lost_refs": lost[:20],
        **_refund_checks(run, truth),
        **_money_checks(run, truth, ours),
        **_ack_checks(run, truth, ours),
        "closed_not_told_zigzag": len(not_told),
        "closed_not_told_zigzag_refs": not_told[:20],
        "khaos_rejected": len(view["khaos_rejected"]),
        "khaos_rejected_examples": {
            ref: rejected.get(associated_ref(code_of[t], ref), "")
            for t, ref in _expected(run)
            if ref in set(view["khaos_rejected"][:10])
        },
        "kills": counters.worker_kills,
        "web_kills": counters.web_kills,
        "mid_job_kills": counters.mid_job_kills,
        "unexpected_exits": len(counters.unexpected),
        "unexpected_exit_details": counters.unexpected[:5],
        "renames": counters.renames,
        "zigzag_days_advanced": counters.zigzag_days,
        "sweeps_at_drain": counters.sweeps,
        "returns_by_state": dict(Counter(ours.states.values())),
        "settled_by": view["held_by"],
        "open_exceptions": ours.open_exceptions,
        "jobs": ours.jobs,
        "dead_jobs": ours.jobs.get("dead", 0),
        "dead_job_examples": ours.dead,
        "faults": _fault_counts(truth),
        "options": _options_json(run.options),
        "timings": {k: round(v, 1) for k, v in run.timings.items()},
    }
    summary["failures"] = failures(summary)
    summary["ok"] = not summary["failures"]
    return summary


def _options_json(options: ChaosOptions) -> dict[str, Any]:
    raw = asdict(options)
    raw["db_url"] = _mask(options.db_url)
    raw["workdir"] = str(options.workdir) if options.workdir else None
    return raw


def _mask(url: str) -> str:
    with contextlib.suppress(Exception):
        return create_engine(url).url.render_as_string(hide_password=True)
    return url


def failures(summary: dict[str, Any]) -> list[str]:
    """What makes a run fail: any non-zero checked figure, or not settling."""
    found = [f"{key}={summary[key]}" for key in CHECKED if summary.get(key)]
    if not summary.get("settled"):
        found.append("not settled before the timeout")
    return found


def format_line(summary: dict[str, Any]) -> str:
    """The one-line verdict."""
    paid = summary["refund_total_pence"] + summary["goodwill_applied_pence"]
    return (
        f"lost={summary['lost']} duplicate_credit_notes={summary['duplicate_credit_notes']} "
        f"duplicate_refunds={summary['duplicate_refunds']} "
        f"refunds_without_credit_note={summary['refunds_without_credit_note']} "
        f"acknowledged_lost={summary['acknowledged_lost']} kills={summary['kills']} "
        f"returns={summary['returns']} seconds={summary['seconds']:.0f} "
        f"backend={summary['backend']} web_kills={summary['web_kills']} "
        f"khaos_rejected={summary['khaos_rejected']} "
        f"refund_plus_goodwill_pence={paid} credit_total_pence={summary['credit_total_pence']} "
        f"amount_mismatches={summary['amount_mismatches']}"
    )


# -- PostgreSQL scratch databases and the command line ---------------------------------------


@contextlib.contextmanager
def scratch_postgres(admin_dsn: str | None = None, *, keep: bool = False) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one run; dropped afterwards unless `keep`."""
    admin_url = (admin_dsn or os.environ.get("RETURNSYNC_TEST_PG_DSN") or DEFAULT_PG).replace(
        "postgresql://", "postgresql+psycopg://", 1
    )
    name = f"returnsync_chaos_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """`python -m returnsync.simulators.demo.chaos`; exit 0 when every figure is clean."""
    parser = argparse.ArgumentParser(description="returnsync chaos run (see module docstring)")
    parser.add_argument("--returns", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=100, help="worker SIGKILLs (at least)")
    parser.add_argument("--workers", type=int, default=4, help="worker processes")
    parser.add_argument("--threads", type=int, default=2, help="threads per worker process")
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--db-url", help="use this database instead of a fresh one")
    parser.add_argument("--pg-admin-dsn", help="where to create the scratch PostgreSQL database")
    parser.add_argument("--no-faults", action="store_true", help="kills only, no injected faults")
    parser.add_argument("--settle-timeout", type=float, default=1800.0)
    parser.add_argument("--workdir", type=Path, help="logs, tenants file, SQLite database")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--json", type=Path, help="also write the JSON summary here")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # `timeout` and CI stop us: clean up first
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="returnsync-chaos-"))

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)  # noqa: T201 - progress of a CLI

    def options(db_url: str) -> ChaosOptions:
        return ChaosOptions(
            db_url=db_url,
            returns=args.returns,
            kills=args.kills,
            workers=args.workers,
            worker_threads=args.threads,
            tenants=args.tenants,
            seed=args.seed,
            faults=not args.no_faults,
            settle_timeout=args.settle_timeout,
            workdir=workdir,
        )

    if args.db_url:
        summary = run_chaos(options(args.db_url), log)
    elif args.backend == "sqlite":
        summary = run_chaos(options(f"sqlite:///{workdir / 'chaos.db'}"), log)
    else:
        with scratch_postgres(args.pg_admin_dsn, keep=args.keep) as url:
            summary = run_chaos(options(url), log)
    document = json.dumps(summary, indent=2, sort_keys=True, default=str)
    if args.json:
        args.json.write_text(document, encoding="utf-8")
    print(document)  # noqa: T201 - the product of this command
    print(format_line(summary))  # noqa: T201
    if summary["failures"]:
        print("FAILED: " + "; ".join(summary["failures"]))  # noqa: T201
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
