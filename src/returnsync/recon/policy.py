"""What counts as a gap: SLAs, tolerance, sites and dispositions, per tenant.

The rules never read settings; the caller builds a `ReconPolicy` (defaults, a
`--policy` TOML file, or the tenant settings) and passes it in.

    [default]                       # every tenant not named below
    received_to_credited_hours = 48
    credited_to_refunded_hours = 24
    refunded_to_restocked_hours = 24
    rounding_tolerance = "0.01"     # per credit line, in the document currency
    saleable_sites = ["MAIN"]

    [tenants.acme]                  # overrides for one tenant; unset keys inherit [default]
    retailer_code = "AC1"
    saleable_sites = ["MAIN", "OUTLET"]
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from returnsync.domain.model import Disposition
from returnsync.recon import linking

if TYPE_CHECKING:
    from collections.abc import Mapping


REFUND_STATUSES = frozenset({"succeeded", "pending", "failed", "canceled", "requires_action"})
COUNTED_REFUND_STATUSES = frozenset({"succeeded", "pending"})  # money left or is leaving


@dataclass(frozen=True, kw_only=True)
class TenantPolicy:
    """One tenant's SLAs (hours), rounding tolerance and saleable sites.

    `retailer_code`, when set, is the only code accepted in `ZZ-<code>-<return_ref>`
    references for this tenant; when None any code is accepted.
    """

    received_to_credited_hours: int = 48
    credited_to_refunded_hours: int = 24
    refunded_to_restocked_hours: int = 24
    rounding_tolerance: Decimal = Decimal("0.01")  # per credit line
    saleable_sites: frozenset[str] = frozenset({"MAIN"})
    retailer_code: str | None = None

    def __post_init__(self) -> None:
        sites = frozenset(linking.normalise_code(site) for site in self.saleable_sites)
        object.__setattr__(self, "saleable_sites", sites)


@dataclass(frozen=True, kw_only=True)
class ReconPolicy:
    """The policy for every tenant, plus the disposition sets the stock rules use.

    Dispositions in `restock_dispositions` must come back to a saleable site;
    every other known disposition (hold, quarantine, write-off, return to vendor,
    missing) must never reach one: RESALE_HOLD goes to a hold site, so stock of it
    at a saleable site is the error too.
    """

    default: TenantPolicy = field(default_factory=TenantPolicy)
    tenants: Mapping[str, TenantPolicy] = field(default_factory=dict)
    restock_dispositions: frozenset[str] = frozenset({Disposition.RESALEABLE.value})
    hold_dispositions: frozenset[str] = frozenset({Disposition.RESALE_HOLD.value})
    no_restock_dispositions: frozenset[str] = frozenset(
        {
            Disposition.WRITE_OFF.value,
            Disposition.QUARANTINE.value,
            Disposition.RETURN_TO_VENDOR.value,
            Disposition.MISSING.value,
        }
    )

    def for_tenant(self, tenant: str) -> TenantPolicy:
        """The tenant's own policy, or the default."""
        return self.tenants.get(tenant, self.default)

    @property
    def forbidden_dispositions(self) -> frozenset[str]:
        """Dispositions whose stock must not be at a saleable site."""
        return self.hold_dispositions | self.no_restock_dispositions

    @property
    def known_dispositions(self) -> frozenset[str]:
        """Every disposition a returns file may carry (blank means not inspected yet)."""
        return self.restock_dispositions | self.forbidden_dispositions


def tenant_policy_from(data: Mapping[str, Any], base: TenantPolicy) -> TenantPolicy:
    """`base` with the keys of a TOML table applied; raises ValueError on an unknown key."""
    known = {f.name for f in fields(TenantPolicy)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown policy key(s): {', '.join(unknown)}")
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key == "rounding_tolerance":
            try:
                changes[key] = Decimal(str(value))
            except InvalidOperation as error:
                raise ValueError(f"rounding_tolerance must be a decimal, got {value!r}") from error
        elif key == "saleable_sites":
            changes[key] = frozenset(str(site) for site in value)
        elif key == "retailer_code":
            changes[key] = str(value)
        else:
            changes[key] = int(value)
    return replace(base, **changes)


def policy_from(data: Mapping[str, Any], base: TenantPolicy | None = None) -> ReconPolicy:
    """A `ReconPolicy` from parsed TOML (`[default]` and `[tenants.<name>]` tables)."""
    default = tenant_policy_from(data.get("default", {}), base or TenantPolicy())
    tenants = {
        str(name): tenant_policy_from(table, default)
        for name, table in data.get("tenants", {}).items()
    }
    return ReconPolicy(default=default, tenants=tenants)
