"""The composition root: Settings -> database, adapters, services. Entry points call this.

Nothing here runs at import. Development defaults are the safe ones: SQLite file,
console notifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from returnsync.adapters.notify.console import ConsoleNotifier
from returnsync.adapters.payments.client import StripeGateway
from returnsync.adapters.zigzag.client import ZigZagClient
from returnsync.config import Settings, Tenant, load_tenants
from returnsync.engine.handlers import HANDLERS
from returnsync.engine.scheduler import Scheduler
from returnsync.engine.worker import Worker, for_tenants
from returnsync.services.context import Context
from returnsync.storage import migrations
from returnsync.storage.db import Database

if TYPE_CHECKING:
    from collections.abc import Collection

    from returnsync.ports import Clock, Notifier, RefundGateway, ReturnsPlatform


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Now, UTC."""
        return datetime.now(UTC)


def build(
    settings: Settings,
    *,
    tenants: dict[str, Tenant] | None = None,
    clock: Clock | None = None,
    notifier: Notifier | None = None,
    migrate: bool = True,
) -> Context:
    """Wire everything for `settings`; migrates the database unless told not to."""
    db = Database(settings.database_url)
    if migrate:
        migrations.upgrade(db)

    def platform(tenant: Tenant) -> ReturnsPlatform:
        return ZigZagClient(
            settings.zigzag_base_url,
            username=tenant.zigzag.username,
            password=tenant.zigzag.password.get_secret_value(),
            retailer_code=tenant.zigzag.retailer_code,
        )

    def gateway(tenant: Tenant) -> RefundGateway:
        return StripeGateway(
            tenant.gateway.api_key.get_secret_value(),
            base_url=settings.gateway_base_url,
            order_metadata_key=tenant.gateway.order_metadata_key,
        )

    return Context(
        settings=settings,
        db=db,
        clock=clock or SystemClock(),
        tenants=tenants if tenants is not None else load_tenants(settings.tenants_file),
        notifier=notifier or ConsoleNotifier(),
        platform_factory=platform,
        gateway_factory=gateway,
    )


@dataclass
class Runtime:
    """The background parts of a running service: workers and the polling scheduler."""

    worker: Worker
    scheduler: Scheduler

    def start(self) -> None:
        """Start workers and scheduler."""
        self.worker.start()
        self.scheduler.start()

    def stop(self) -> None:
        """Stop both (jobs in hand finish)."""
        self.scheduler.stop()
        self.worker.stop()


def runtime(
    ctx: Context,
    *,
    name: str | None = None,
    threads: int | None = None,
    tenants: Collection[str] = (),
) -> Runtime:
    """Workers and scheduler for a context.

    The worker claims jobs of `tenants`, else of `settings.worker_tenants`, else of every
    tenant in the tenants file (ConfigError for a tenant the file does not have).
    """
    settings = ctx.settings
    return Runtime(
        worker=Worker(
            ctx,
            HANDLERS,
            name=name or settings.worker_id,
            threads=threads or settings.worker_threads,
            tenants=for_tenants(ctx.tenants, tenants or settings.worker_tenants),
            pinned=bool(tenants or settings.worker_tenants),
            turn=settings.worker_tenant_turn,
        ),
        scheduler=Scheduler(
            ctx,
            interval=settings.poll_interval_seconds,
            monitor_interval=settings.monitor_interval_seconds,
        ),
    )
