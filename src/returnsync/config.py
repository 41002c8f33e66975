"""Settings: one typed object from the environment (RETURNSYNC_*) plus a TOML file of tenants.

Nothing else reads the environment. Secrets are `SecretStr` and print as `**********`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from returnsync.domain.model import Disposition
from returnsync.errors import ConfigError


class ZigZagTenant(BaseModel):
    """A retailer's ZigZag account."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retailer_code: str
    username: str
    password: SecretStr
    webhook_key: SecretStr  # the shared key ZigZag sends in X-ZigZag-Api-Key (assumption Z-10)


class KhaosTenant(BaseModel):
    """A retailer's Khaos Control Cloud channel."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel_username: str
    channel_password: SecretStr
    return_urn: str  # the customer account returns are booked to (assumption K-4)
    default_site_id: int = 1
    sites: dict[str, int] = Field(default_factory=dict)  # ZigZag DC code -> Khaos SiteID
    process_return: bool = True
    pull_frequency_minutes: int = 15
    page_size: int = Field(default=100, ge=1, le=1000)
    return_reasons: dict[Disposition, str]  # disposition -> Khaos ReturnReason ID
    returns_address_line1: str = "Returns Department"
    returns_address_town: str = "Unknown"
    returns_address_postcode: str = ""

    @field_validator("return_reasons")
    @classmethod
    def _every_creditable_disposition(cls, value: dict[Disposition, str]) -> dict[Disposition, str]:
        missing = {d for d in Disposition if d is not Disposition.MISSING} - set(value)
        if missing:
            names = ", ".join(sorted(d.value for d in missing))
            raise ValueError(f"return_reasons has no Khaos ReturnReason ID for: {names}")
        return value


class GatewayTenant(BaseModel):
    """A retailer's payment gateway account."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: SecretStr
    order_metadata_key: str = "order_number"  # assumption G-3


class SlaSettings(BaseModel):
    """How long each step may take before it is a finding."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    received_to_credited_hours: float = 48.0
    credited_to_refunded_hours: float = 24.0


class Tenant(BaseModel):
    """One retailer: its credentials, sites and mapping tables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str
    currency: str = "GBP"
    zigzag: ZigZagTenant
    khaos: KhaosTenant
    gateway: GatewayTenant
    sla: SlaSettings = SlaSettings()
    refund_tolerance: str = "0.01"  # per line, the rounding we accept between systems


class Settings(BaseSettings):
    """Process-wide settings (`RETURNSYNC_…`, nested with `__`)."""

    model_config = SettingsConfigDict(
        env_prefix="RETURNSYNC_", env_nested_delimiter="__", extra="ignore"
    )

    database_url: str = "sqlite:///var/returnsync.db"
    tenants_file: Path = Path("tenants.toml")
    public_url: str = "http://127.0.0.1:8000"  # how Khaos reaches our channel endpoints
    zigzag_base_url: str = "https://api.returns.international"
    gateway_base_url: str | None = None  # None: the real Stripe API
    worker_id: str = "worker"
    worker_threads: int = Field(default=2, ge=1, le=64)
    # The tenants whose jobs this process's workers claim (comma-separated in the
    # environment); empty: every tenant of the tenants file (docs/operator.md, scaling).
    worker_tenants: Annotated[list[str], NoDecode] = []
    # Tenant turns (docs/decisions/0011-tenant-turns.md): after this many jobs of one tenant
    # in a row, a worker runs the oldest due job of another tenant, if any, so one retailer's
    # backlog never holds up the others' returns for long. 0: strict queue order.
    worker_tenant_turn: int = Field(default=8, ge=0, le=100_000)
    job_lease_seconds: float = 60.0
    poll_interval_seconds: float = 300.0
    monitor_interval_seconds: float = 300.0  # continuous reconciliation of every tenant
    # Between full monitor passes (every return, every payment at the gateway) the monitor
    # looks only at what can have changed (services/monitor_scope.py).
    monitor_full_pass_hours: float = Field(default=24.0, gt=0)
    shadow_mode: bool = False  # stage nothing, refund nothing: record what would happen
    # Group commit of webhook deliveries (docs/decisions/0007-group-commit.md): at most this
    # many events per transaction, and how long to wait after the first for more (0: commit as
    # soon as the queue is empty).
    ingest_batch_max: int = Field(default=256, ge=1, le=10_000)
    ingest_batch_wait_ms: float = Field(default=2.0, ge=0.0, le=1_000.0)
    # A ZigZag event for a return past ZigZag's part (staged, credited, refunded, closed,
    # held) changes nothing in its flow: its sync waits this long, so live returns go first
    # and a burst of such events (ZigZag echoing our own updates) is fetched once.
    settled_sync_delay_seconds: float = Field(default=30.0, ge=0.0, le=3_600.0)

    @field_validator("worker_tenants", mode="before")
    @classmethod
    def _tenant_list(cls, value: Any) -> Any:
        """`acme, beta` (the environment) as well as a list."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


def load_tenants(path: Path) -> dict[str, Tenant]:
    """Read and validate the tenants file; raises ConfigError naming the file and the field."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"tenants file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"tenants file {path} is not valid TOML: {exc}") from exc
    tenants: dict[str, Tenant] = {}
    for key, body in (raw.get("tenants") or {}).items():
        try:
            tenants[key] = Tenant.model_validate({"id": key, **body})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"{path}: tenant {key!r}: {problems}") from exc
    if not tenants:
        raise ConfigError(f"{path} defines no [tenants.<id>] table")
    return tenants


def masked(tenant: Tenant) -> dict[str, Any]:
    """The tenant as JSON with every secret masked (SecretStr dumps as '**********')."""
    return tenant.model_dump(mode="json")
