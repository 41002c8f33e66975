"""What every use case needs, built once by bootstrap: the database, the clock, the tenants
and a way to reach each tenant's outside systems."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from returnsync.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from returnsync.config import Settings, Tenant
    from returnsync.ports import Clock, Notifier, RefundGateway, ReturnsPlatform
    from returnsync.storage.db import Database


@dataclass(kw_only=True)
class Context:
    """The services' view of the world. Built by `returnsync.bootstrap.build`."""

    settings: Settings
    db: Database
    clock: Clock
    tenants: dict[str, Tenant]
    notifier: Notifier
    platform_factory: Callable[[Tenant], ReturnsPlatform]
    gateway_factory: Callable[[Tenant], RefundGateway]

    def __post_init__(self) -> None:
        self._platforms: dict[str, ReturnsPlatform] = {}
        self._gateways: dict[str, RefundGateway] = {}

    def tenant(self, tenant_id: str) -> Tenant:
        """The tenant, or ConfigError when there is no such tenant."""
        try:
            return self.tenants[tenant_id]
        except KeyError:
            raise ConfigError(f"unknown tenant {tenant_id!r}") from None

    def platform(self, tenant_id: str) -> ReturnsPlatform:
        """The tenant's ZigZag client (one per tenant, reused: it caches the JWT)."""
        if tenant_id not in self._platforms:
            self._platforms[tenant_id] = self.platform_factory(self.tenant(tenant_id))
        return self._platforms[tenant_id]

    def gateway(self, tenant_id: str) -> RefundGateway:
        """The tenant's payment gateway client."""
        if tenant_id not in self._gateways:
            self._gateways[tenant_id] = self.gateway_factory(self.tenant(tenant_id))
        return self._gateways[tenant_id]


def serial_key(tenant: str, return_ref: str) -> str:
    """Jobs of one return share this key, so they never run at the same time."""
    return f"return:{tenant}:{return_ref}"
