"""Deterministic simulation of returnsync (FoundationDB-style): one seed drives everything.

A `Simulation(seed)` owns one `random.Random(seed)`, a virtual clock, a fresh copy of a
migrated SQLite file (the `Runner` keeps one engine across scenarios), and in-memory ZigZag,
Khaos Control and gateway fakes (`returnsync.testing.world`). Our real services run
unchanged: webhooks enter through `services.intake`, Khaos pulls through
`services.channel.returns_page` and pushes through `intake.accept_khaos_push`, jobs run
through `engine.worker.Worker.run_once`, the sweep through `engine.scheduler.Scheduler.tick`.
In half the scenarios the workers are pinned to every tenant, so they claim through the
tenant filter (docs/decisions/0010-workers-by-tenant.md); the workers' tenant turn (0, 1, 2
or 8 jobs, docs/decisions/0011-tenant-turns.md) is drawn per scenario too. In a quarter
(seed divisible by 4) an idle worker looks before it claims (`Worker.anything_due`, ADR
0012), and the claim is checked to find nothing the look did not see.

A scenario is three phases:
1. chaos: a seeded scheduler picks one action per step (ZigZag moves a return on, a webhook
   is delivered (maybe again, maybe out of order), a job runs, Khaos pulls or pushes, the
   sweep runs, time passes, a worker is killed holding a job, CX pays a goodwill refund,
   someone forges a webhook) while BUGGIFY fault points (`testing.faults`) fail remote calls,
   lose their answers, and kill our process after a remote call or around a commit;
2. recovery and drain: every lifecycle completes, every delivery and push arrives, the
   clock jumps to the next due job or lease expiry; first with faults still on (bounded
   rounds), then with faults off until nothing is left to do (or a round cap);
3. check: the invariants (`testing.invariants`) against the fakes' ledgers.

After every step no return may have moved backwards. A failing seed replays exactly:

    python -m returnsync.testing.dst --seed 1234 [--verbose]
    python -m returnsync.testing.dst --seeds 10000 [--start 0] [--jobs N]  (N: one per CPU)
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import logging
import multiprocessing
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from pydantic import SecretStr

from returnsync.adapters.notify.fake import FakeNotifier
from returnsync.adapters.payments.fake import FakeGateway
from returnsync.config import GatewayTenant, KhaosTenant, Settings, Tenant, ZigZagTenant
from returnsync.domain.model import Disposition
from returnsync.domain.money import Money
from returnsync.domain.states import RANK, TERMINAL, ReturnState
from returnsync.engine.handlers import HANDLERS
from returnsync.engine.scheduler import Scheduler
from returnsync.engine.worker import Worker
from returnsync.services import intake
from returnsync.services.context import Context
from returnsync.storage import jobqueue, migrations
from returnsync.storage.db import Database
from returnsync.testing import faults
from returnsync.testing.invariants import TenantTruth, check_final
from returnsync.testing.world import (
    Inspection,
    Product,
    SimClock,
    SimDatabase,
    SimGateway,
    SimKhaos,
    SimZigZag,
    ZzItem,
    ZzReturn,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from returnsync.ports import GatewayRefund
    from returnsync.storage.jobqueue import Job

START = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
LEASE_SECONDS = 60.0
RECOVERY_ROUNDS = 40
DRAIN_ROUNDS = 400
REASON_IDS: dict[Disposition, str] = {
    Disposition.RESALEABLE: "1",
    Disposition.RESALE_HOLD: "2",
    Disposition.QUARANTINE: "3",
    Disposition.RETURN_TO_VENDOR: "4",
    Disposition.WRITE_OFF: "5",
}
# disposition, condition, weight
DISPOSITIONS = (
    ("RESALEABLE", "A_NEW", 50),
    ("RESALE_HOLD", "B_GOOD", 8),
    ("QUARANTINE", "C_FAIR", 5),
    ("RETURN_TO_VENDOR", "INCORRECT_ITEM", 5),
    ("WRITE_OFF", "DAMAGED", 12),
    ("MISSING", "MISSING", 10),
)
ACTIONS: dict[str, float] = {
    "zigzag": 3.0,
    "webhook": 3.0,
    "job": 6.0,
    "pull": 1.5,
    "push": 2.5,
    "sweep": 0.6,
    "tick": 2.0,
    "leap": 0.4,
    "stall": 0.3,
    "zombie": 0.3,
    "goodwill": 0.2,
    "catalogue": 0.3,
    "forge": 0.1,
}


@dataclass(kw_only=True)
class TenantWorld:
    """One retailer's simulated outside world."""

    tenant: Tenant
    zigzag: SimZigZag
    khaos: SimKhaos
    fake: FakeGateway
    gateway: SimGateway
    products: list[Product]
    withheld: list[Product]
    withheld_forever: bool
    forged: list[str] = field(default_factory=list)
    goodwill: int = 0

    def truth(self) -> TenantTruth:
        """The world as the invariants read it."""
        return TenantTruth(
            tenant=self.tenant,
            zigzag=self.zigzag,
            khaos=self.khaos,
            gateway=self.fake,
            catalogue_pushed=set(self.khaos.catalogue_codes),
            forged=self.forged,
        )


@dataclass(kw_only=True)
class Outcome:
    """The result of one scenario."""

    seed: int
    violations: list[str]
    trace: list[str]
    stats: Counter[str]
    seconds: float
    cpu_seconds: float

    @property
    def ok(self) -> bool:
        """No invariant was violated."""
        return not self.violations

    @property
    def digest(self) -> str:
        """A fingerprint of the whole trace: equal digests mean identical executions."""
        return hashlib.sha256("\n".join(self.trace).encode()).hexdigest()[:16]


class Simulation:
    """One seeded scenario against a fresh database."""

    def __init__(
        self,
        seed: int,
        *,
        db: SimDatabase,
        steps: int | None = None,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.clock = SimClock(START)
        self.plan = faults.FaultPlan(self.rng)
        self.steps = steps if steps is not None else self.rng.randint(40, 160)
        self.trace: list[str] = []
        self.violations: list[str] = []
        self.stats: Counter[str] = Counter()
        self.db = db
        self.path = db.path
        self.worlds: dict[str, TenantWorld] = {}
        self.settings = Settings(
            database_url=f"sqlite:///{self.path}",
            tenants_file=Path("unused.toml"),
            public_url="http://returnsync.sim",
            worker_id="sim",
            worker_threads=1,
            job_lease_seconds=LEASE_SECONDS,
            poll_interval_seconds=300.0,
            shadow_mode=False,
        )
        self.ctx = Context(
            settings=self.settings,
            db=self.db,
            clock=self.clock,
            tenants={},
            notifier=FakeNotifier(),
            platform_factory=lambda t: self.worlds[t.id].zigzag,
            gateway_factory=lambda t: self.worlds[t.id].gateway,
        )
        self.workers = 0
        self.claim_tenants: frozenset[str] | None = None  # a pinned worker's (see _setup)
        self.turn = 0  # tenant turns of the workers (see _setup)
        self.turns_given = 0  # by the workers replaced so far (see _new_worker)
        self.killed = 0
        self.zombies: list[Job] = []
        self.handlers: dict[str, Any] = {kind: self._wrap(fn) for kind, fn in HANDLERS.items()}
        self.worker = self._new_worker()
        self.current_job: Job | None = None
        # In a quarter of the scenarios (by seed: no draw from the scenario's random stream,
        # which would change every seed's run) a job action after an idle one looks first,
        # as a worker thread does (`Worker.anything_due`), and the claim runs anyway to
        # check the look missed nothing. In every scenario it would cost 5 to 10 % of the
        # rate for the same check.
        self.looks = seed % 4 == 0
        self.idle = False  # the last job action found nothing
        self.job_error: Exception | None = None
        self.weights = dict(ACTIONS)
        self._states: dict[tuple[str, str], ReturnState] = {}
        self._step = 0
        self._served = 0

    # running

    def run(self) -> Outcome:
        """Run the scenario; never raises for a failure of ours (it becomes a violation)."""
        started, cpu = time.perf_counter(), time.process_time()
        with faults.armed(self.plan), _quiet_logs():
            try:
                self._setup()
                self._chaos()
                self._drain()
                self.turns_given += self.worker.turns_given
                self.stats["tenant_turns"] = self.turns_given
                with self.plan.suspended(), self.db.begin() as conn:
                    truths = [w.truth() for w in self.worlds.values()]
                    self.violations += check_final(conn, truths, self.stats)
            except (Exception, faults.SimulatedCrash) as exc:
                self.violations.append(f"step {self._step}: {type(exc).__name__}: {exc}")
                self.trace.extend("    " + line for line in traceback.format_exc().splitlines())
            finally:
                self.db.close()
        self.stats.update({f"fault:{k}": v for k, v in self.plan.fired.items()})
        self.trace.append(f"outcome: {dict(sorted(self.stats.items()))}")
        self.trace.extend(f"VIOLATION {v}" for v in self.violations)
        self.violations = list(dict.fromkeys(self.violations))
        return Outcome(
            seed=self.seed,
            violations=self.violations,
            trace=self.trace,
            stats=self.stats,
            seconds=time.perf_counter() - started,
            cpu_seconds=time.process_time() - cpu,
        )

    def _violate(self, message: str) -> None:
        self.violations.append(f"step {self._step}: {message}")

    def _log(self, line: str) -> None:
        self.trace.append(line)

    def _event(self, line: str) -> None:
        self.trace.append(f"      · {line}")

    # the scenario

    def _setup(self) -> None:
        rng = self.rng
        tenants = 1 if rng.random() < 0.7 else 2
        for n in range(1, tenants + 1):
            world = self._tenant_world(n)
            self.worlds[world.tenant.id] = world
            self.ctx.tenants[world.tenant.id] = world.tenant
        if rng.random() < 0.5:  # workers pinned to every tenant: the filtered claim
            self.claim_tenants = frozenset(self.worlds)
        # Tenant turns: after this many jobs of one tenant, a claim passes over it (0: never)
        self.turn = rng.choice((0, 1, 2, 8))
        self.worker = self._new_worker()
        for name in self.weights:
            self.weights[name] *= rng.choice((0.25, 0.5, 1.0, 1.0, 2.0))
        pinned = f", workers pinned to {sorted(self.claim_tenants)}" if self.claim_tenants else ""
        self._log(
            f"seed {self.seed}: {self.steps} chaos steps{pinned}, tenant turn {self.turn}, "
            f"weights {self.weights}"
        )

    def _tenant_world(self, n: int) -> TenantWorld:
        rng = self.rng
        tid = f"shop{n}"
        tenant = Tenant(
            id=tid,
            name=f"Shop {n}",
            zigzag=ZigZagTenant(
                retailer_code=f"RC{n}",
                username=f"{tid}-api",
                password=SecretStr(f"zz-{tid}"),
                webhook_key=SecretStr(f"whk-{tid}"),
            ),
            khaos=KhaosTenant(
                channel_username=f"kcc-{tid}",
                channel_password=SecretStr(f"kcc-{tid}"),
                return_urn="WEBRETURNS",
                sites={"GB0064": 1},
                return_reasons=dict(REASON_IDS),
                page_size=rng.randint(1, 4),
                returns_address_line1="Unit 4, Returns Park",
                returns_address_town="Grantham",
                returns_address_postcode="NG31 7FZ",
            ),
            gateway=GatewayTenant(api_key=SecretStr(f"sk_test_{tid}")),
        )
        products = []
        for i, stem in enumerate(rng.sample(("TEE", "JKT", "CAP", "SCK", "BAG", "HAT"), 4)):
            code = f"{stem}-{rng.randint(100, 999)}"
            shape = rng.random()
            sku = code.lower() if shape < 0.15 else f" {code}" if shape < 0.2 else code
            products.append(
                Product(
                    stock_id=f"{n}{i:04d}",
                    stock_code=code,
                    sku=sku,
                    price=Decimal(rng.randint(199, 12999)) / 100,
                    vat_rate=rng.choice(
                        (Decimal("0.20"), Decimal("0.20"), Decimal("0.05"), Decimal(0))
                    ),
                )
            )
        zigzag = SimZigZag(f"RC{n}", rng, self.clock)
        fake = FakeGateway()
        orders: dict[str, dict[str, int]] = {}
        returns: list[ZzReturn] = []
        for j in range(rng.randint(1, 4)):
            order_ref = f"ORD-{n}{j:03d}"
            lines = {
                p.stock_code: rng.randint(1, 3) for p in rng.sample(products, rng.randint(1, 3))
            }
            orders[order_ref] = lines
            total = sum(
                (p.price * lines[p.stock_code] for p in products if p.stock_code in lines),
                Decimal(0),
            )
            if rng.random() < 0.95:
                fake.add_payment(order_ref=order_ref, amount=Money(total, "GBP"))
            left = dict(lines)
            for _ in range(2 if rng.random() < 0.25 else 1):
                ret = self._zz_return(len(returns) + 1, order_ref, products, left)
                if ret is not None:
                    returns.append(ret)
        khaos = SimKhaos(
            tid,
            products=products,
            orders=orders,
            urn="WEBRETURNS",
            reasons=set(REASON_IDS.values()),
            rng=rng,
        )
        returned = sorted({i.sku for r in returns for i in r.items})
        withheld: list[Product] = []
        if returned and rng.random() < 0.15:
            sku = rng.choice(returned)
            withheld = [next(p for p in products if p.sku == sku)]
        khaos.catalogue_push([p for p in products if p not in withheld])
        world = TenantWorld(
            tenant=tenant,
            zigzag=zigzag,
            khaos=khaos,
            fake=fake,
            gateway=SimGateway(fake, lambda refund: self._on_refund(tid, refund)),
            products=products,
            withheld=withheld,
            withheld_forever=bool(withheld) and rng.random() < 0.3,
        )
        for ret in returns:
            zigzag.add(ret)
            items = ", ".join(
                f"{i.sku.strip()}x{i.quantity}@{i.unit_price} recv {i.received} "
                + "+".join(f"{x.quantity}{x.disposition[:4]}" for x in i.inspections)
                for i in ret.items
            )
            self._log(f"  {tid} {ret.ref} {ret.order_ref} plan {ret.plan}: {items}")
        for payment in fake.payments.values():
            self._log(
                f"  {tid} payment {payment.payment_ref} {payment.order_ref} {payment.amount.amount}"
            )
        if withheld:
            forever = " forever" if world.withheld_forever else ""
            self._log(f"  {tid} catalogue withholds {withheld[0].stock_code}{forever}")
        return world

    def _zz_return(
        self, number: int, order_ref: str, products: list[Product], left: dict[str, int]
    ) -> ZzReturn | None:
        rng = self.rng
        ref = f"R{number:05d}"
        items: list[ZzItem] = []
        for p in products:
            if left.get(p.stock_code, 0) <= 0 or (items and rng.random() < 0.4):
                continue
            qty = rng.randint(1, left[p.stock_code])
            left[p.stock_code] -= qty
            received = qty - 1 if qty > 1 and rng.random() < 0.1 else qty
            groups: list[Inspection] = []
            remaining = received
            while remaining > 0:
                size = remaining if rng.random() < 0.7 else rng.randint(1, remaining)
                disposition, condition, _ = rng.choices(
                    DISPOSITIONS, weights=[d[2] for d in DISPOSITIONS]
                )[0]
                groups.append(
                    Inspection(quantity=size, condition=condition, disposition=disposition)
                )
                remaining -= size
            items.append(
                ZzItem(
                    item_id=f"{ref}-{len(items) + 1}",
                    sku=p.sku,
                    quantity=qty,
                    unit_price=p.price,
                    received=received,
                    inspections=groups,
                )
            )
        if not items:
            return None
        roll = rng.random()
        if roll < 0.03:
            plan = ["reject"]
        elif roll < 0.1:
            plan = ["approve", "cancel"] if rng.random() < 0.5 else ["approve", "label", "cancel"]
        else:
            plan = ["approve"]
            plan += [s for s in ("label", "transit") if rng.random() < 0.3]
            plan.append("receive")
            if len(items) > 1 and rng.random() < 0.3:
                plan.append("inspect_partial")
            plan.append("process")
        return ZzReturn(
            ref=ref, order_ref=order_ref, items=items, created_at=self.clock.now(), plan=plan
        )

    # the scheduler

    def _chaos(self) -> None:
        for _ in range(self.steps):
            options = self._options()
            names = list(options)
            action = self.rng.choices(names, weights=[options[n] for n in names])[0]
            self._do(action)

    def _options(self) -> dict[str, float]:
        w = self.weights
        worlds = list(self.worlds.values())
        options = {
            "job": w["job"],
            "pull": w["pull"],
            "sweep": w["sweep"],
            "tick": w["tick"],
            "leap": w["leap"],
            "stall": w["stall"],
            "forge": w["forge"],
            "goodwill": w["goodwill"],
        }
        if any(x.zigzag.movable() for x in worlds):
            options["zigzag"] = w["zigzag"]
        if any(x.zigzag.outbox for x in worlds):
            options["webhook"] = w["webhook"]
        if any(x.khaos.outbox for x in worlds):
            options["push"] = w["push"]
        if any(x.withheld and not x.withheld_forever for x in worlds):
            options["catalogue"] = w["catalogue"]
        if self.zombies:
            options["zombie"] = w["zombie"]
        return options

    def _do(self, action: str, act: Callable[[], str] | None = None) -> str:
        self._step += 1
        at = (self.clock.now() - START).total_seconds()
        header = len(self.trace)
        self._log(f"{self._step:04d} +{at:.3f}s {action}")
        try:
            result = act() if act is not None else getattr(self, f"_act_{action}")()
        except faults.SimulatedCrash as crash:
            result = f"our process died at {crash.point}"
            self._restart()
        self.trace[header] += f": {result}"
        with self.plan.suspended():
            self._check_monotonic()
        return result

    def _world(self, candidates: Iterable[TenantWorld]) -> TenantWorld:
        pool = list(candidates)
        return pool[self.rng.randrange(len(pool))]

    def _act_zigzag(self) -> str:
        world = self._world(w for w in self.worlds.values() if w.zigzag.movable())
        refs = world.zigzag.movable()
        return f"{world.tenant.id} " + world.zigzag.progress(refs[self.rng.randrange(len(refs))])

    def _act_webhook(self) -> str:
        world = self._world(w for w in self.worlds.values() if w.zigzag.outbox)
        outbox = world.zigzag.outbox
        index = self.rng.randrange(len(outbox))
        delivery = outbox[index]
        header = "X-ZigZag-Api-Key" if self.rng.random() < 0.8 else "x-zigzag-api-key"
        key = world.tenant.zigzag.webhook_key.get_secret_value()
        what = f"{world.tenant.id} {delivery.event_id} {delivery.event_type} {delivery.return_ref}"
        try:
            receipt = intake.accept_zigzag_webhook(
                self.ctx, world.tenant.id, {header: key}, delivery.body
            )
        except faults.SimulatedCrash as crash:
            self._restart()
            return f"{what}: our process died at {crash.point}; ZigZag will retry"
        if receipt.status != 200:
            self.violations.append(f"authentic webhook {what} answered {receipt.status}")
        elif not faults.buggify("zigzag.webhook.duplicate"):
            outbox.pop(index)
        return f"{what} -> {receipt.status} {receipt.message}"

    def _act_job(self) -> str:
        self.current_job = None
        due = self.worker.anything_due() if self.looks and self.idle else None
        try:
            ran = self.worker.run_once()
        except faults.SimulatedCrash as crash:
            job = self.current_job
            self._restart()
            holding = f" holding job {job.id} {job.kind} {_about(job)}" if job else ""
            return f"worker died at {crash.point}{holding}"
        except Exception as exc:
            # run_once must record every outcome itself. The worker loop would log "claim
            # failed" and go on with the job still leased; so do we, and report it.
            first = str(exc).splitlines()[0]
            job = self.current_job
            about = f"job {job.id} {job.kind} {_about(job)}" if job else "a claim"
            self._violate(f"Worker.run_once raised {type(exc).__name__} on {about}: {first}")
            self.trace.extend("    " + line for line in traceback.format_exc().splitlines())
            return f"run_once raised {type(exc).__name__}: {first}"
        self.idle = not ran
        if not ran:
            return "idle"
        job = self.current_job
        if job is None:
            return "ran a job without a handler"
        if due is False:
            self._violate(f"anything_due saw nothing due, then the claim ran {_about(job)}")
        if self.job_error is None:
            return f"job {job.id} {job.kind} {_about(job)} attempt {job.attempts}: done"
        [(status, error)] = self.db.peek(
            "SELECT status, last_error FROM jobs WHERE id = ?", (job.id,)
        )
        detail = f" ({(error or '')[:140]})" if status != "succeeded" else ""
        return f"job {job.id} {job.kind} {_about(job)} attempt {job.attempts}: {status}{detail}"

    def _act_pull(self) -> str:
        return self._pull(self._world(self.worlds.values()))

    def _pull(self, world: TenantWorld) -> str:
        served, new = world.khaos.pull(self.ctx)
        self._served = served
        if served < 0:
            return f"{world.tenant.id} Khaos pull: answer lost, keeps {world.khaos.continuation!r}"
        cursor = world.khaos.continuation
        return f"{world.tenant.id} Khaos pulled {served}, imported {new}, next {cursor!r}"

    def _act_push(self) -> str:
        world = self._world(w for w in self.worlds.values() if w.khaos.outbox)
        outbox = world.khaos.outbox
        index = self.rng.randrange(len(outbox))
        push = outbox[index]
        receipt = intake.accept_khaos_push(self.ctx, world.tenant.id, push.kind, push.body)
        if receipt.status != 200:
            self.violations.append(f"Khaos push {push.label} answered {receipt.status}")
        elif not faults.buggify("khaos.push.duplicate"):
            outbox.pop(index)
        return f"{world.tenant.id} Khaos push {push.kind} {push.label} -> {receipt.status}"

    def _act_sweep(self) -> str:
        return f"sweep queued {Scheduler(self.ctx, interval=300.0).tick()}"

    def _act_tick(self) -> str:
        self.clock.advance(self.rng.uniform(1, 120))
        return "time passes"

    def _act_leap(self) -> str:
        self.clock.advance(self.rng.uniform(300, 5400))
        return "a long time passes"

    def _act_stall(self) -> str:
        self.killed += 1
        with self.plan.suspended(), self.db.begin() as conn:
            job = jobqueue.claim(
                conn,
                worker=f"killed-{self.killed}",
                now=self.clock.now(),
                lease=timedelta(seconds=LEASE_SECONDS),
            )
        if job is None:
            return "nothing to kill a worker over"
        fate = "died"
        if self.rng.random() < 0.5:
            self.zombies.append(job)
            fate = "froze (it may wake up later)"
        return (
            f"worker killed-{self.killed} claimed job {job.id} {job.kind} {_about(job)} and {fate}"
        )

    def _act_zombie(self) -> str:
        """A frozen worker wakes after its lease may have expired and finishes its job, as
        `Worker.run_once` would after the claim (another worker may have run it meanwhile)."""
        job = self.zombies.pop(self.rng.randrange(len(self.zombies)))
        zombie = self._new_worker(job.locked_by.split("/", 1)[0])
        what = f"zombie {job.locked_by} wakes with job {job.id} {job.kind} {_about(job)}"
        try:
            self.handlers[job.kind](self.ctx, job)
        except Exception as exc:
            zombie._failed(job, exc)  # noqa: SLF001 (run_once's own outcome path, minus the claim)
            return f"{what}: failed ({type(exc).__name__})"
        with self.db.begin() as conn:
            kept = jobqueue.succeed(conn, job, now=self.clock.now())
        return f"{what}: done" + ("" if kept else "; lease lost, outcome ignored")

    def _act_goodwill(self) -> str:
        world = self._world(self.worlds.values())
        payments = list(world.fake.payments.values())
        if not payments:
            return f"{world.tenant.id}: no payment to refund by hand"
        payment = payments[self.rng.randrange(len(payments))]
        spent = sum(
            (r.amount.amount for r in world.fake.refunds if r.payment_ref == payment.payment_ref),
            Decimal(0),
        )
        room = payment.amount.amount - spent
        if room < 1:
            return f"{world.tenant.id}: {payment.order_ref} has nothing left to refund by hand"
        amount = Decimal(self.rng.randint(100, int(min(room, Decimal(40)) * 100))) / 100
        refund = world.fake.add_manual_refund(payment.payment_ref, Money(amount, "GBP"))
        world.goodwill += 1
        order = payment.order_ref
        return f"{world.tenant.id}: CX refunds {amount} by hand on {order} ({refund.refund_ref})"

    def _act_catalogue(self) -> str:
        world = self._world(
            w for w in self.worlds.values() if w.withheld and not w.withheld_forever
        )
        world.khaos.catalogue_push(world.withheld)
        codes = [p.stock_code for p in world.withheld]
        world.withheld = []
        return f"{world.tenant.id}: Khaos adds {codes} to the catalogue"

    def _act_forge(self) -> str:
        world = self._world(self.worlds.values())
        ref = f"FORGED{len(world.forged) + 1}"
        world.forged.append(ref)
        others = [w for w in self.worlds.values() if w is not world]
        key = others[0].tenant.zigzag.webhook_key.get_secret_value() if others else "guess"
        body = (
            b'{"eventId": "x-' + ref.encode() + b'", "eventType": "ReturnCreated", '
            b'"occurredAt": "2026-10-01T09:00:00Z", "retailerCode": "'
            + world.tenant.zigzag.retailer_code.encode()
            + b'", "returnId": "'
            + ref.encode()
            + b'", "orderNumber": "X", "data": {}}'
        )
        receipt = intake.accept_zigzag_webhook(
            self.ctx, world.tenant.id, {"X-ZigZag-Api-Key": key}, body
        )
        if receipt.status != 401:
            self.violations.append(f"forged webhook {ref} answered {receipt.status}")
        return f"{world.tenant.id}: forged webhook {ref} -> {receipt.status}"

    # our process

    def _new_worker(self, name: str = "") -> Worker:
        self.workers += 1
        if not name and hasattr(self, "worker"):  # the worker it replaces: count its turns
            self.turns_given += self.worker.turns_given
        return Worker(
            self.ctx,
            self.handlers,
            name=name or f"w{self.workers}",
            seed=self.rng.randrange(2**32),
            tenants=self.claim_tenants,
            pinned=self.claim_tenants is not None,
            turn=self.turn,
        )

    def _wrap(self, handler: Callable[[Context, Job], Any]) -> Callable[[Context, Job], None]:
        def run(ctx: Context, job: Job) -> None:
            self.current_job = job
            self.job_error = None
            faults.maybe_crash("job.before_handler")
            try:
                handler(ctx, job)
            except Exception as exc:
                self.job_error = exc
                raise
            # A kill after the handler's work, before the worker records the job as done.
            faults.maybe_crash("job.after_handler")

        return run

    def _restart(self) -> None:
        """Our process died: a new worker (new name) starts; the database is what is left."""
        self.worker = self._new_worker()

    def _on_refund(self, tid: str, refund: GatewayRefund) -> None:
        """The gateway just created a refund: its credit note must already be observed."""
        code = refund.metadata.get("credit_note", "")
        ret = refund.metadata.get("return_ref", "")
        seen = self.db.peek(
            "SELECT associated_ref FROM credit_notes WHERE tenant = ? AND code = ?", (tid, code)
        )
        state = self.db.peek(
            "SELECT state FROM returns WHERE tenant = ? AND return_ref = ?", (tid, ret)
        )
        self._event(
            f"gateway refunds {refund.amount.amount} for {ret} ({code}) as {refund.refund_ref}"
        )
        if not seen:
            self.violations.append(f"{tid}: refund {refund.refund_ref} before {code} was observed")
        if not state or RANK[ReturnState(state[0][0])] < RANK[ReturnState.CREDITED]:
            self.violations.append(f"{tid}: refund {refund.refund_ref} while {ret} is {state}")

    # invariants during the run

    def _check_monotonic(self) -> None:
        rows = self.db.peek("SELECT tenant, return_ref, state FROM returns")
        for tenant, ref, raw in rows:
            state = ReturnState(raw)
            before = self._states.get((tenant, ref))
            if before is not None and before is not state:
                if RANK[state] < RANK[before] or before in TERMINAL:
                    self.violations.append(
                        f"step {self._step}: {tenant}/{ref} moved {before} -> {state}"
                    )
                self._event(f"{tenant}/{ref} {before} -> {state}")
            self._states[(tenant, ref)] = state

    # the drain

    def _drain(self) -> None:
        """Recovery: every lifecycle runs to its end with faults still on (most refunds and
        ZigZag updates happen here, so they happen under faults). Then the quiet drain:
        faults off, frozen workers wake, until nothing is left to do."""
        self._log(f"recovery from +{(self.clock.now() - START).total_seconds():.3f}s")
        while any(w.withheld and not w.withheld_forever for w in self.worlds.values()):
            self._do("catalogue")
        self._settle(RECOVERY_ROUNDS)
        self.plan.enabled = False
        self._log(f"drain from +{(self.clock.now() - START).total_seconds():.3f}s")
        while self.zombies:
            self._do("zombie")
        if not self._settle(DRAIN_ROUNDS):
            self.violations.append(f"not quiescent after {DRAIN_ROUNDS} drain rounds")

    def _settle(self, rounds: int) -> bool:
        """Finish lifecycles, deliver everything, run every job; pull and sweep only when
        nothing else is left; then jump to the next due job or lease. True when quiescent."""
        for _ in range(rounds):
            if self._drain_round():
                continue
            if any(self._drain_pull(world) for world in self.worlds.values()):
                continue
            if not self._do("sweep").endswith(" 0") or self._wake_next():
                continue
            return True
        return False

    def _drain_round(self) -> bool:
        busy = False
        for world in self.worlds.values():
            while world.zigzag.movable():
                busy = bool(self._do("zigzag"))
            while world.zigzag.outbox:
                busy = bool(self._do("webhook"))
            while world.khaos.outbox:
                busy = bool(self._do("push"))
        while self._do("job") != "idle":
            busy = True
        return busy

    def _drain_pull(self, world: TenantWorld) -> bool:
        imported = False
        while True:
            self._do("pull", functools.partial(self._pull, world))
            if self._served <= 0:
                return imported
            imported = True

    def _wake_next(self) -> bool:
        """Jump the clock to the next due job or expired lease; False when nothing is left."""
        [(due, lease)] = self.db.peek(
            "SELECT (SELECT min(run_after) FROM jobs WHERE status = 'pending'),"
            " (SELECT min(lease_until) FROM jobs WHERE status = 'running')"
        )
        wake = [datetime.fromisoformat(t).replace(tzinfo=UTC) for t in (due, lease) if t]
        if not wake:
            return False
        self.clock.advance_to(min(wake) + timedelta(milliseconds=1))
        self.clock.advance(300)  # and the sweep's interval, so a poll is due as well
        self._log(f"clock jumps to +{(self.clock.now() - START).total_seconds():.3f}s")
        return True


def violation_kind(violation: str) -> str:
    """A violation with its step, ids, refs and amounts blanked out, to group seeds by bug."""
    text = re.sub(r"^step \d+: ", "", violation.splitlines()[0])
    return re.sub(r"\d+(\.\d+)?", "N", text)[:160]


def _about(job: Job) -> str:
    payload = job.payload
    if "return_ref" in payload:
        return f"{job.tenant}/{payload['return_ref']}"
    return f"{job.tenant} inbox {payload.get('inbox_id')} {payload.get('kind', '')}".rstrip()


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """Expected failures (retries, dead jobs) log warnings; keep runs fast and output clean."""
    logger = logging.getLogger("returnsync")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


# running many


def scratch_base() -> Path | None:
    """Where scenario databases go: /dev/shm (memory-backed) when writable, else the default."""
    shm = Path("/dev/shm")  # noqa: S108 (only ever a private mkdtemp below it)
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else None


class Runner:
    """Runs scenarios in one scratch directory with a migrated template database."""

    def __init__(self, workdir: Path | None = None) -> None:
        self.workdir = workdir or Path(
            tempfile.mkdtemp(prefix="returnsync-dst-", dir=scratch_base())
        )
        self.template = self.workdir / "template.db"
        if not self.template.exists():
            database = Database(f"sqlite:///{self.template}")
            migrations.upgrade(database)
            database.dispose()

        # One engine for every scenario: its compiled-statement cache stays warm (a fresh
        # engine per scenario compiled ~70 statements each time, 14 % of a scenario's CPU).
        self.db = SimDatabase(self.workdir / "scenario.db")

    def run(self, seed: int, *, steps: int | None = None) -> Outcome:
        """One scenario, on a fresh copy of the template database."""
        self.db.restore(self.template)
        return Simulation(seed, db=self.db, steps=steps).run()

    def close(self) -> None:
        """Close the engine and remove the scratch directory."""
        self.db.dispose()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def run_seed(seed: int, *, steps: int | None = None) -> Outcome:
    """Run one seed in its own scratch directory."""
    with Runner() as runner:
        return runner.run(seed, steps=steps)


def run_seeds(
    seeds: Iterable[int], *, steps: int | None = None, root: Path | None = None
) -> list[Outcome]:
    """Run many seeds in this process (one scratch directory, below `root` if given)."""
    workdir = Path(tempfile.mkdtemp(dir=root)) if root is not None else None
    with Runner(workdir) as runner:
        return [runner.run(seed, steps=steps) for seed in seeds]


@dataclass(frozen=True, kw_only=True)
class Summary:
    """What a batch run keeps of each scenario (small enough to cross processes)."""

    seed: int
    violations: list[str]
    digest: str
    seconds: float
    cpu_seconds: float


def _terminate(*_: object) -> None:
    """SIGTERM: stop the pool's processes, then unwind so the scratch root is removed."""
    for child in multiprocessing.active_children():
        child.terminate()
    raise SystemExit(143)


def _batch(seeds: list[int], steps: int | None, root: str) -> list[Summary]:
    return [
        Summary(
            seed=o.seed,
            violations=o.violations,
            digest=o.digest,
            seconds=o.seconds,
            cpu_seconds=o.cpu_seconds,
        )
        for o in run_seeds(seeds, steps=steps, root=Path(root))
    ]


def run_many(
    seeds: list[int],
    *,
    steps: int | None = None,
    jobs: int = 1,
    chunk: int = 25,
    progress: Callable[[list[Summary], int], None] | None = None,
) -> list[Summary]:
    """Run `seeds` over `jobs` processes (fresh interpreters); results in seed order.

    Each scenario depends only on its seed, so the split over processes changes nothing.
    `progress(batch, done)` is called with each finished chunk, in seed order.
    """
    batches = [seeds[i : i + chunk] for i in range(0, len(seeds), chunk)]
    results: list[Summary] = []
    root = tempfile.mkdtemp(prefix="returnsync-dst-", dir=scratch_base())
    pool = (
        ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))
        if jobs > 1
        else None
    )
    try:
        n = len(batches)
        done: Iterable[list[Summary]] = (
            pool.map(_batch, batches, [steps] * n, [root] * n)
            if pool is not None
            else (_batch(b, steps, root) for b in batches)
        )
        for batch in done:
            results += batch
            if progress is not None:
                progress(batch, len(results))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        shutil.rmtree(root, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    """`python -m returnsync.testing.dst --seed N [--verbose]` or `--seeds N [--jobs J]`."""
    parser = argparse.ArgumentParser(
        prog="python -m returnsync.testing.dst", description="Deterministic simulation runs."
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--seed", type=int, help="replay one scenario and print its trace")
    which.add_argument("--seeds", type=int, help="run this many scenarios from --start")
    parser.add_argument("--start", type=int, default=0, help="first seed of --seeds (0)")
    parser.add_argument("--steps", type=int, default=None, help="chaos steps (default: seeded)")
    parser.add_argument(
        "--jobs", type=int, default=None, help="processes for --seeds (default: one per CPU)"
    )
    parser.add_argument(
        "--verbose", action="store_true", help="with --seed: also the events inside each step"
    )
    args = parser.parse_args(argv)
    out = sys.stdout
    if args.seed is not None:
        outcome = run_seed(args.seed, steps=args.steps)
        lines = outcome.trace
        if not args.verbose:
            lines = [t for t in lines if not t.startswith("      ")]
        out.write("\n".join(lines) + "\n")
        status = "ok" if outcome.ok else f"FAILED ({len(outcome.violations)} violations)"
        out.write(
            f"seed {outcome.seed}: {status}; trace {outcome.digest}; {outcome.seconds:.2f}s\n"
        )
        return 0 if outcome.ok else 1
    started = time.perf_counter()
    last = [0]
    failed = [0]

    def progress(batch: list[Summary], done: int) -> None:
        for r in batch:
            if r.violations:
                failed[0] += 1
                out.write(f"failing seed {r.seed}: {violation_kind(r.violations[0])}\n")
        if done - last[0] >= 500 or done == args.seeds:
            last[0] = done
            rate = done / (time.perf_counter() - started) * 60
            out.write(f"{done} scenarios, {failed[0]} failing, {rate:,.0f}/minute\n")
        out.flush()

    seeds = list(range(args.start, args.start + args.seeds))
    jobs = args.jobs if args.jobs is not None else os.cpu_count() or 1
    results = run_many(seeds, steps=args.steps, jobs=jobs, progress=progress)
    elapsed = time.perf_counter() - started
    plural = "es" if jobs > 1 else ""
    cpu = sum(r.cpu_seconds for r in results)
    out.write(
        f"ran {len(results)} scenarios (seeds {args.start}..{args.start + args.seeds - 1}) "
        f"in {elapsed:.1f}s: {len(results) / elapsed * 60:,.0f} scenarios/minute "
        f"({jobs} process{plural}); {len(results) / cpu * 60:,.0f} per CPU-minute\n"
    )
    failing = [r for r in results if r.violations]
    kinds: Counter[str] = Counter()
    for r in failing:
        more = f" (+{len(r.violations) - 1} more)" if len(r.violations) > 1 else ""
        out.write(f"FAILING seed {r.seed}: {r.violations[0][:300]}{more}\n")
        kinds.update({violation_kind(v) for v in r.violations})
    for kind, n in kinds.most_common():
        out.write(f"{n:6d} seeds: {kind}\n")
    if failing:
        out.write("replay one: python -m returnsync.testing.dst --seed N --verbose\n")
    return 1 if failing else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    with suppress(KeyboardInterrupt):
        sys.exit(main())
