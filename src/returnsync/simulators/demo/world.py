"""Start the three simulators, seed them with a month of data, and run returnsync against them.

Used by `returnsync demo`, the end-to-end tests and the chaos runs. Everything talks over
real HTTP on 127.0.0.1: returnsync reaches the simulators only through its adapters.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr
from sqlalchemy import func, select

from returnsync.bootstrap import Runtime, build, runtime
from returnsync.config import (
    GatewayTenant,
    KhaosTenant,
    Settings,
    Tenant,
    ZigZagTenant,
)
from returnsync.domain.model import Disposition
from returnsync.domain.states import TERMINAL, ReturnState
from returnsync.simulators.demo.dataset import RetailerData, generate
from returnsync.simulators.demo.processes import (
    ServiceProcess,
    service_env,
    wait_healthy,
    webonly_argv,
    worker_argv,
)
from returnsync.simulators.demo.tenantsfile import tenants_toml
from returnsync.simulators.gateway import GatewaySimulator
from returnsync.simulators.khaos import KhaosSimulator
from returnsync.simulators.runtime import ServerThread, free_port
from returnsync.simulators.zigzag import ZigZagSimulator
from returnsync.storage import exceptions, jobqueue
from returnsync.storage.tables import returns, stock_items
from returnsync.web.app import create_app

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from returnsync.services.context import Context
    from returnsync.storage.db import Database

REASONS: dict[Disposition, tuple[str, str, str]] = {
    # disposition: (Khaos ReturnReason ID, description, processing type)
    Disposition.RESALEABLE: ("1", "Customer return - resaleable", "ReturnToStock"),
    Disposition.RESALE_HOLD: ("2", "Customer return - refurbish", "ReturnToStock"),
    Disposition.QUARANTINE: ("3", "Customer return - quarantine", "ReturnToStock"),
    Disposition.RETURN_TO_VENDOR: ("4", "Customer return - to supplier", "ReturnToStock"),
    Disposition.WRITE_OFF: ("5", "Goods damaged [Stock Missing/Write off]", "StockMissing"),
}
RETURN_URN = "WEBRETURNS"


@dataclass(kw_only=True)
class WorldOptions:
    """Knobs of one demo or test world."""

    db_url: str
    port: int = 0
    seed: int = 7
    tenants: int = 3
    orders_per_tenant: int = 120
    returns_per_tenant: int = 70
    kcc_minute_seconds: float = 0.02  # a KCC "minute" (pull Frequency unit) in real seconds
    poll_interval_seconds: float = 5.0
    # the wait of a sync of a return past ZigZag's part (30 s deployed), scaled like the poll
    settled_sync_delay_seconds: float = 2.0
    worker_threads: int = 4
    worker_processes: int = 0  # > 0: `returnsync worker` processes (1 thread each) instead
    # our web app and polling sweep in their own process (`demo.webonly`), as deployed,
    # instead of a thread here; needs worker_processes > 0
    web_process: bool = False
    workdir: Path | None = None  # tenants file and process logs (worker_processes > 0)
    zigzag_faults: str | None = None
    khaos_faults: str | None = None
    gateway_faults: str | None = None


@dataclass(kw_only=True)
class World:
    """A running world."""

    options: WorldOptions
    zigzag: ZigZagSimulator
    khaos: KhaosSimulator
    gateway: GatewaySimulator
    data: list[RetailerData]
    ctx: Context
    public_url: str
    server: ServerThread | None  # None: the web app runs in `processes` (web_process)
    runtime: Runtime
    processes: list[ServiceProcess] = field(default_factory=list)
    return_ids: dict[str, list[str]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """returnsync's base URL."""
        return self.public_url

    def stop(self) -> None:
        """Stop returnsync and the simulators."""
        self.runtime.stop()
        for proc in self.processes:
            proc.stop()
        if self.server is not None:
            self.server.stop()
        for sim in (self.zigzag, self.khaos, self.gateway):
            sim.stop()
        self.ctx.db.dispose()

    def progress(self) -> tuple[int, int, bool]:
        """(returns settled, returns expected, job queue idle).

        Settled means terminal, or held on an exception that needs a person.
        """
        expected = sum(len(ids) for ids in self.return_ids.values())
        with self.ctx.db.read() as conn:
            rows = conn.execute(select(returns.c.state, func.count()).group_by(returns.c.state))
            by_state = {state: int(n) for state, n in rows}
            jobs = jobqueue.counts(conn)
        settled = sum(n for s, n in by_state.items() if ReturnState(s) in TERMINAL)
        settled += by_state.get(ReturnState.HELD.value, 0)
        idle = jobs.get("pending", 0) + jobs.get("running", 0) == 0
        return settled, expected, idle

    def wait_settled(
        self, timeout: float = 300.0, on_progress: Callable[[int, int], None] | None = None
    ) -> bool:
        """Wait until every return is settled and the job queue is idle; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done, expected, idle = self.progress()
            if on_progress is not None:
                on_progress(done, expected)
            if expected and done >= expected and idle:
                return True
            time.sleep(0.25)
        return False

    def diagnose(self) -> dict[str, Any]:
        """What is stuck: job errors, open exceptions, Khaos notifications (for failing tests)."""
        from returnsync.services import queries  # noqa: PLC0415

        jobs = [
            j
            for j in queries.jobs(self.ctx, status=None)
            if j["last_error"] or j["status"] != "succeeded"
        ]
        companies = self.khaos.state_snapshot()["companies"].values()
        return {
            "jobs": [(j["id"], j["kind"], j["status"], j["last_error"]) for j in jobs[:10]],
            "exceptions": [
                (e["kind"], e["message"])
                for e in queries.exceptions(self.ctx, tenant=None, status="open")
            ][:10],
            "khaos_notifications": [n for c in companies for n in c["notifications"]][:10],
            "zigzag_deliveries": self.zigzag.state_snapshot()["deliveries"][-5:],
        }

    def summary(self) -> dict[str, Any]:
        """Counts from the simulators' own state (the ground truth) and our exception queue."""
        zz = self.zigzag.state_snapshot()
        kc = self.khaos.state_snapshot()
        gw = self.gateway.state_snapshot()
        notes = [n for c in kc["companies"].values() for n in c["credit_notes"]]
        by_ref = Counter(n["AssociatedRef"] for n in notes if n.get("AssociatedRef"))
        refunds = gw["refunds"]
        ours = Counter(
            r["metadata"].get("return_ref") for r in refunds if r["metadata"].get("return_ref")
        )
        with self.ctx.db.read() as conn:
            open_exceptions = exceptions.counts(conn)
            states: dict[str, int] = dict(
                conn.execute(select(returns.c.state, func.count()).group_by(returns.c.state)).all()
            )
        return {
            "tenants": len(self.data),
            "returns": len(zz["returns"]),
            "returns_by_state": {k: int(v) for k, v in states.items()},
            "credit_notes": len(notes),
            "refunds": len(refunds),
            "refunds_by_returnsync": sum(ours.values()),
            "goodwill_refunds": len(refunds) - sum(ours.values()),
            "exceptions_by_kind": open_exceptions,
            "khaos_import_failures": sum(len(c["notifications"]) for c in kc["companies"].values()),
            "duplicate_credit_notes": sum(n - 1 for n in by_ref.values() if n > 1),
            "duplicate_refunds": sum(n - 1 for n in ours.values() if n > 1),
            "refunds_without_credit_note": sum(
                1
                for r in refunds
                if r["metadata"].get("return_ref") and not r["metadata"].get("credit_note")
            ),
        }


def make_tenant(data: RetailerData) -> Tenant:
    """The returnsync tenant of a generated retailer (the credentials the simulators get)."""
    return Tenant(
        id=data.tenant,
        name=data.name,
        zigzag=ZigZagTenant(
            retailer_code=data.retailer_code,
            username=f"{data.tenant}-api",
            password=SecretStr(f"zz-secret-{data.tenant}"),
            webhook_key=SecretStr(f"whk-{data.tenant}"),
        ),
        khaos=KhaosTenant(
            channel_username=f"kcc-{data.tenant}",
            channel_password=SecretStr(f"kcc-secret-{data.tenant}"),
            return_urn=RETURN_URN,
            default_site_id=1,
            sites={"GB0064": 1},
            return_reasons={d: r[0] for d, r in REASONS.items()},
            returns_address_line1="Unit 4, Returns Park",
            returns_address_town="Grantham",
            returns_address_postcode="NG31 7FZ",
        ),
        gateway=GatewayTenant(api_key=SecretStr(f"sk_test_{data.tenant.replace('-', '')}")),
    )


def start_simulators(
    *,
    seed: int,
    kcc_minute_seconds: float,
    zigzag_faults: str | None = None,
    khaos_faults: str | None = None,
    gateway_faults: str | None = None,
) -> tuple[ZigZagSimulator, KhaosSimulator, GatewaySimulator]:
    """Start the three simulators in this process (real HTTP servers on 127.0.0.1)."""
    zigzag = ZigZagSimulator(seed=seed, faults=_faults(zigzag_faults))
    khaos = KhaosSimulator(
        seed=seed, minute_seconds=kcc_minute_seconds, faults=_faults(khaos_faults)
    )
    gateway = GatewaySimulator(seed=seed, faults=_faults(gateway_faults))
    for sim in (zigzag, khaos, gateway):
        sim.start()
    return zigzag, khaos, gateway


def start_world(options: WorldOptions, *, log: Callable[[str], None] = lambda _m: None) -> World:
    """Start simulators and returnsync, seed the month, and launch the returns scenario."""
    seed = options.seed
    zigzag, khaos, gateway = start_simulators(
        seed=seed,
        kcc_minute_seconds=options.kcc_minute_seconds,
        zigzag_faults=options.zigzag_faults,
        khaos_faults=options.khaos_faults,
        gateway_faults=options.gateway_faults,
    )
    log(f"simulators up: zigzag {zigzag.url}  khaos {khaos.url}  gateway {gateway.url}")

    port = options.port or free_port()
    public = f"http://127.0.0.1:{port}"
    data = generate(seed=seed, tenants=options.tenants, orders_per_tenant=options.orders_per_tenant)
    settings = Settings(
        database_url=options.db_url,
        public_url=public,
        zigzag_base_url=zigzag.url,
        gateway_base_url=gateway.url,
        worker_threads=options.worker_threads,
        poll_interval_seconds=options.poll_interval_seconds,
        settled_sync_delay_seconds=options.settled_sync_delay_seconds,
        job_lease_seconds=30.0,
    )
    tenants = {d.tenant: make_tenant(d) for d in data}
    ctx = build(settings, tenants=tenants)  # migrates once, before any process starts
    rt = runtime(ctx)
    processes = _service_processes(options, settings, tenants, port=port)
    server = None if options.web_process else ServerThread(create_app(ctx), port=port).start()
    if options.web_process:
        wait_healthy(public, processes[0])  # it runs the sweep too
    elif processes:
        rt.scheduler.start()  # the sweep here; jobs in the worker processes
    else:
        rt.start()
    log(f"returnsync up: {public}  (database {options.db_url})")
    world = World(
        options=options,
        zigzag=zigzag,
        khaos=khaos,
        gateway=gateway,
        data=data,
        ctx=ctx,
        public_url=public,
        server=server,
        runtime=rt,
        processes=processes,
    )
    _seed(world)
    log("seeded: catalogues, orders, payments; waiting for the Khaos catalogue push")
    _wait_catalogue(world)
    world.return_ids.update(
        create_scenario(zigzag.url, data, per_tenant=options.returns_per_tenant, seed=seed)
    )
    log(f"scenario: {sum(len(v) for v in world.return_ids.values())} returns created in ZigZag")
    return world


def _service_processes(
    options: WorldOptions, settings: Settings, tenants: dict[str, Tenant], *, port: int
) -> list[ServiceProcess]:
    """Start the web process (first, if `options.web_process`) and
    `options.worker_processes` worker processes on this world's settings."""
    if options.worker_processes <= 0:
        if options.web_process:
            raise ValueError("web_process needs worker_processes > 0")
        return []
    if options.workdir is None:
        raise ValueError("worker_processes needs a workdir (tenants file, process logs)")
    tenants_file = options.workdir / "tenants.toml"
    tenants_file.write_text(tenants_toml(tenants), encoding="utf-8")
    env = service_env(settings.model_copy(update={"tenants_file": tenants_file}))
    logs = options.workdir / "logs"
    processes = [
        ServiceProcess(f"w{n + 1}", worker_argv(1), env, logs)
        for n in range(options.worker_processes)
    ]
    if options.web_process:
        processes.insert(0, ServiceProcess("web", webonly_argv(port), env, logs))
    for proc in processes:
        proc.start()
    return processes


def create_scenario(
    zigzag_url: str, data: list[RetailerData], *, per_tenant: int, seed: int
) -> dict[str, list[str]]:
    """Have ZigZag create `per_tenant` returns for each retailer, each driven to Processed."""
    created: dict[str, list[str]] = {}
    for d in data:
        resp = _post(
            zigzag_url,
            "/_sim/scenario",
            {"retailerCode": d.retailer_code, "count": per_tenant, "seed": seed},
        )
        created[d.tenant] = list(resp["returnIds"])
    return created


def _faults(spec: str | None) -> Any:
    from returnsync.simulators.runtime import FaultSpec  # noqa: PLC0415

    return FaultSpec.parse(spec)


def _post(base: str, path: str, body: dict[str, Any]) -> Any:
    resp = httpx.post(f"{base}{path}", json=body, timeout=60.0)
    if resp.status_code >= 300:
        raise RuntimeError(f"POST {path} -> {resp.status_code}: {resp.text[:500]}")
    return resp.json()


def _seed(world: World) -> None:
    seed_world(
        zigzag_url=world.zigzag.url,
        khaos_url=world.khaos.url,
        gateway_url=world.gateway.url,
        public_url=world.url,
        data=world.data,
        tenants=world.ctx.tenants,
    )


def seed_world(
    *,
    zigzag_url: str,
    khaos_url: str,
    gateway_url: str,
    public_url: str,
    data: list[RetailerData],
    tenants: dict[str, Tenant],
) -> None:
    """Load catalogues, orders, payments, subscriptions and a goodwill refund into the simulators.

    `public_url` is where returnsync listens (the ZigZag webhook and Khaos channel endpoints).
    """
    # Real KCC keeps re-sending; the simulator's clock runs fast, so allow many attempts.
    _post(khaos_url, "/_sim/faults", {"channel": {"max_push_attempts": 100000}})
    for d in data:
        tenant = tenants[d.tenant]
        key = tenant.gateway.api_key.get_secret_value()
        _post(gateway_url, "/_sim/accounts", {"api_key": key, "name": d.name})
        _post(
            gateway_url,
            "/_sim/payments",
            {
                "api_key": key,
                "payments": [
                    {"order_number": o.number, "amount": int(o.gross * 100), "currency": "gbp"}
                    for o in d.orders
                ],
            },
        )
        if d.goodwill_order:
            first = next(o for o in data[0].orders if o.number == d.goodwill_order)
            product, _qty = first.lines[0]
            _post(
                gateway_url,
                "/_sim/goodwill_refund",
                {
                    "api_key": key,
                    "order_number": d.goodwill_order,
                    "amount": int(product.gross * 100),
                    "note": "CX goodwill: customer chased twice",
                },
            )
        company = d.tenant
        _post(
            khaos_url,
            "/_sim/companies",
            {
                "name": company,
                "config_url": f"{public_url}/khaos/{d.tenant}/config",
                "username": tenant.khaos.channel_username,
                "password": tenant.khaos.channel_password.get_secret_value(),
                "channel_id": "21",
                "sites": [{"SiteID": 1, "Name": "Main Site"}, {"SiteID": 2, "Name": "Refurb"}],
                "default_site_id": 1,
                "customers": [RETURN_URN],
                "return_reasons": [
                    {"ID": rid, "Description": desc, "ProcessingType": ptype}
                    for rid, desc, ptype in REASONS.values()
                ],
                "currency": "GBP",
            },
        )
        _post(
            khaos_url,
            f"/_sim/companies/{company}/stock_items",
            {
                "items": [
                    {
                        "StockID": p.stock_id,
                        "StockCode": p.stock_code,
                        "StockDescription": p.stock_code,
                    }
                    for p in d.products
                ],
                "levels": [
                    {"StockID": p.stock_id, "SiteID": 1, "Available": 20} for p in d.products
                ],
            },
        )
        _post(
            khaos_url,
            f"/_sim/companies/{company}/sales_orders",
            {
                "orders": [
                    {
                        "AssociatedRef": o.number,
                        "URN": RETURN_URN,
                        "items": [
                            {
                                "SKU": p.stock_code,
                                "Quantity": q,
                                "UnitNet": str(p.unit_net),
                                "UnitTax": str(p.unit_tax),
                            }
                            for p, q in o.lines
                        ],
                    }
                    for o in d.orders
                ]
            },
        )
        _post(
            zigzag_url,
            "/_sim/retailers",
            {
                "retailerCode": d.retailer_code,
                "username": tenant.zigzag.username,
                "password": tenant.zigzag.password.get_secret_value(),
            },
        )
        _post(
            zigzag_url,
            "/_sim/subscriptions",
            {
                "retailerCode": d.retailer_code,
                "url": f"{public_url}/webhooks/zigzag/{d.tenant}",
                "apiKey": tenant.zigzag.webhook_key.get_secret_value(),
            },
        )
        _post(
            zigzag_url,
            "/_sim/orders",
            {
                "retailerCode": d.retailer_code,
                "orders": [
                    {
                        "orderNumber": o.number,
                        "currency": "GBP",
                        "customer": o.customer,
                        "dcWarehouse": "GB0064",
                        "lines": [
                            {"sku": p.sku, "quantity": q, "unitPrice": str(p.gross)}
                            for p, q in o.lines
                        ],
                    }
                    for o in d.orders
                ],
            },
        )


def _wait_catalogue(world: World, timeout: float = 60.0) -> None:
    wait_catalogue(world.ctx.db, world.data, timeout=timeout)


def wait_catalogue(db: Database, data: list[RetailerData], *, timeout: float = 60.0) -> None:
    """Wait until Khaos has pushed every retailer's catalogue into our database."""
    want = {d.tenant: len(d.products) for d in data}
    deadline = time.monotonic() + timeout
    have: dict[str, int] = {}
    while time.monotonic() < deadline:
        with db.read() as conn:
            have = dict(
                conn.execute(
                    select(stock_items.c.tenant, func.count()).group_by(stock_items.c.tenant)
                ).all()
            )
        if all(have.get(t, 0) >= n for t, n in want.items()):
            return
        time.sleep(0.2)
    raise RuntimeError(f"Khaos catalogue push did not arrive in {timeout:.0f}s: have {have}")
