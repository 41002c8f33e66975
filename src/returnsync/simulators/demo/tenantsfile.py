"""The tenants file (`config.load_tenants` format) written from `Tenant` objects.

The demo worlds build their tenants in code; worker processes read them from a file.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

if TYPE_CHECKING:
    from returnsync.config import Tenant


def _toml_scalar(value: Any) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))  # JSON string escapes are valid TOML basic strings
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_key(key: Any) -> str:
    return json.dumps(str(key.value if isinstance(key, Enum) else key))


def _toml_table(prefix: str, body: dict[Any, Any], out: list[str]) -> None:
    out.append(f"[{prefix}]")
    nested = []
    for key, value in body.items():
        if isinstance(value, dict):
            nested.append((key, value))
        else:
            out.append(f"{_toml_key(key)} = {_toml_scalar(value)}")
    out.append("")
    for key, value in nested:
        _toml_table(f"{prefix}.{_toml_key(key)}", value, out)


def tenants_toml(tenants: dict[str, Tenant]) -> str:
    """The tenants file (`config.load_tenants` format) for these tenants, secrets included."""
    out: list[str] = []
    for tenant_id, tenant in tenants.items():
        body = tenant.model_dump(exclude={"id"})
        _toml_table(f"tenants.{_toml_key(tenant_id)}", body, out)
    return "\n".join(out)
