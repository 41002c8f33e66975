"""A complete, valid tenant for tests (as in the demo world), its secrets derived from its id;
and a context of such tenants with no outside systems (for engine tests)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import SecretStr

from returnsync.adapters.notify.fake import FakeNotifier
from returnsync.config import GatewayTenant, KhaosTenant, Settings, Tenant, ZigZagTenant
from returnsync.domain.model import Disposition
from returnsync.services.context import Context

if TYPE_CHECKING:
    from returnsync.ports import Clock
    from returnsync.storage.db import Database


def make_tenant(tenant_id: str, retailer_code: str | None = None) -> Tenant:
    """Webhook key `whk-<id>`, KCC login `kcc-<id>` / `kcc-secret-<id>`, Stripe `sk_test_<id>`."""
    return Tenant(
        id=tenant_id,
        name=tenant_id.title(),
        zigzag=ZigZagTenant(
            retailer_code=retailer_code or tenant_id.upper(),
            username=f"{tenant_id}-api",
            password=SecretStr(f"zz-secret-{tenant_id}"),
            webhook_key=SecretStr(f"whk-{tenant_id}"),
        ),
        khaos=KhaosTenant(
            channel_username=f"kcc-{tenant_id}",
            channel_password=SecretStr(f"kcc-secret-{tenant_id}"),
            return_urn="WEBRETURNS",
            sites={"GB0064": 1},
            return_reasons={d: str(n) for n, d in enumerate(Disposition, 1)},
            returns_address_line1="Unit 4, Returns Park",
            returns_address_town="Grantham",
            returns_address_postcode="NG31 7FZ",
        ),
        gateway=GatewayTenant(api_key=SecretStr(f"sk_test_{tenant_id}")),
    )


def tenants_context(db: Database, clock: Clock, *tenant_ids: str, **settings: Any) -> Context:
    """A context for `tenant_ids` on `db` (settings as given), without outside systems."""
    return Context(
        settings=Settings(database_url=db.url, **settings),
        db=db,
        clock=clock,
        tenants={t: make_tenant(t) for t in tenant_ids},
        notifier=FakeNotifier(),
        platform_factory=_no_outside_systems,
        gateway_factory=_no_outside_systems,
    )


def _no_outside_systems(tenant: Tenant) -> NoReturn:
    raise RuntimeError(f"this test context has no ZigZag or gateway (tenant {tenant.id})")
