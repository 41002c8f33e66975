"""Faults and settings of the simulated KCC's *client* side (our channel endpoints).

`FaultSpec` (runtime) faults requests *to* a simulator; KCC is mostly a client, so
what can go wrong between KCC and a channel is set here instead:

- `push_duplicate`: probability that a push our endpoint answered 200 is sent again
  (KCC re-sends on any doubt; the reference warns "you experience duplicate data").
- `stock_code_rename`: probability, per returns pull cycle, that an operator renames
  a random item's Stock Code (same StockID); the admin action does it on demand.
- `push_timeout_seconds`: client timeout of a push; a timeout counts as a failure
  and is retried (K-13), so a slow 200 arrives twice.
- `pull_timeout_seconds`: client timeout of config and returns GETs.
- `max_push_attempts`, `backoff_cap_seconds`: K-13 (20 attempts, 1 s doubling to
  60 s, in simulated seconds).

A null in a pulled document is not injected here: the document comes from the
channel, and the simulator rejects it (null-intolerance).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from returnsync.simulators.runtime import FaultSpec


@dataclass
class ChannelFaults:
    """Client-side fault rates and settings (see module docstring)."""

    push_duplicate: float = 0.0
    stock_code_rename: float = 0.0
    push_timeout_seconds: float = 5.0
    pull_timeout_seconds: float = 30.0
    max_push_attempts: int = 20
    backoff_cap_seconds: float = 60.0

    @classmethod
    def names(cls) -> frozenset[str]:
        """The setting names."""
        return frozenset(item.name for item in fields(cls))

    def update(self, values: dict[str, Any]) -> None:
        """Apply a patch; unknown keys or bad values raise ValueError."""
        for key, value in values.items():
            if key not in self.names():
                raise ValueError(f"unknown channel fault {key!r}")
            number = int(value) if key == "max_push_attempts" else float(value)
            if number < 0:
                raise ValueError(f"{key} must not be negative")
            if key in {"push_duplicate", "stock_code_rename"} and number > 1:
                raise ValueError(f"{key} is a probability (0..1)")
            setattr(self, key, number)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return asdict(self)


def split_fault_spec(spec: str | None) -> tuple[FaultSpec, ChannelFaults]:
    """Parse a `--faults` string whose keys may belong to either fault set.

    `error_5xx=0.1,push_duplicate=0.2,push_timeout_seconds=2` gives a FaultSpec with
    `error_5xx` and ChannelFaults with the other two.
    """
    channel = ChannelFaults()
    http_parts: list[str] = []
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        key, _, raw = part.partition("=")
        if key.strip() in ChannelFaults.names():
            channel.update({key.strip(): raw.strip()})
        else:
            http_parts.append(part)
    return FaultSpec.parse(",".join(http_parts)), channel


def update_faults(http: FaultSpec, channel: ChannelFaults, values: dict[str, Any]) -> None:
    """Apply a `POST /_sim/faults` body to both sets (flat keys, or nested `http`/`channel`).

    Validates everything before changing anything; raises ValueError on unknown keys.
    """
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if key in {"http", "channel"} and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    channel_values = {k: v for k, v in flat.items() if k in ChannelFaults.names()}
    http_values = {k: v for k, v in flat.items() if k not in ChannelFaults.names()}
    trial_channel = ChannelFaults(**channel.as_dict())
    trial_channel.update(channel_values)
    trial_http = FaultSpec(**http.as_dict())
    trial_http.update(http_values)
    channel.update(channel_values)
    http.update(http_values)
