"""The channel's `EndpointConfig` document (reference §1.1.1, §1.1.2; K-1).

KCC GETs the configuration URL with HTTP Basic auth and caches the answer for a
day. The document names, per endpoint kind, a `URL`, a `Format` (`XML`/`JSON`) and,
for downloads, a `Frequency` in minutes. `OrderDownload`, `StockStatusUpload` and
`StockUpload` are required; `CReturnDownload` and `OrderStatusUpload` are optional.
The vendor wraps the children in `EndpointConfig`; K-1 serves them bare: both are
accepted. The simulator speaks JSON only, so an `XML` format is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlparse

from returnsync.simulators.khaos.wire import loads

REQUIRED = ("OrderDownload", "StockStatusUpload", "StockUpload")
DOWNLOADS = ("OrderDownload", "CReturnDownload")
KNOWN = (*REQUIRED, "CReturnDownload", "OrderStatusUpload", "ProvidedStock", "PriceListUpload")


class ConfigError(ValueError):
    """The configuration document is unusable."""


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of the configuration."""

    URL: str
    Format: str
    Frequency: Decimal | None = None


@dataclass(frozen=True)
class EndpointConfig:
    """The endpoints the simulator uses."""

    endpoints: dict[str, Endpoint]

    def get(self, kind: str) -> Endpoint | None:
        """The endpoint of a kind (`CReturnDownload`, `StockUpload`, ...), if configured."""
        return self.endpoints.get(kind)

    def wire(self) -> dict[str, Any]:
        """State view."""
        view: dict[str, Any] = {}
        for kind, endpoint in self.endpoints.items():
            entry: dict[str, Any] = {"URL": endpoint.URL, "Format": endpoint.Format}
            if endpoint.Frequency is not None:
                entry["Frequency"] = endpoint.Frequency
            view[kind] = entry
        return view


def parse_endpoint_config(raw: bytes) -> EndpointConfig:
    """Parse and check a configuration document; raises ConfigError."""
    try:
        document = loads(raw)
    except ValueError as exc:
        raise ConfigError(f"configuration is not valid JSON: {exc}") from None
    if isinstance(document, dict) and isinstance(document.get("EndpointConfig"), dict):
        document = document["EndpointConfig"]
    if not isinstance(document, dict):
        raise ConfigError("configuration must be a JSON object")
    for kind in REQUIRED:
        if kind not in document:
            raise ConfigError(f"configuration lacks the required {kind}")
    endpoints: dict[str, Endpoint] = {}
    for kind in KNOWN:
        if kind in document:
            endpoints[kind] = _endpoint(kind, document[kind])
    return EndpointConfig(endpoints)


def _endpoint(kind: str, value: Any) -> Endpoint:
    if not isinstance(value, dict):
        raise ConfigError(f"{kind} must be an object")
    url = value.get("URL")
    if not isinstance(url, str) or urlparse(url).scheme not in {"http", "https"}:
        raise ConfigError(f"{kind}.URL must be an http(s) URL, got {url!r}")
    fmt = value.get("Format")
    if not isinstance(fmt, str) or fmt.upper() not in {"JSON", "XML"}:
        raise ConfigError(f"{kind}.Format must be XML or JSON, got {fmt!r}")
    if fmt.upper() != "JSON":
        raise ConfigError(f"{kind}.Format {fmt!r}: this simulator speaks JSON only (K-1)")
    frequency: Decimal | None = None
    if kind in DOWNLOADS:
        raw_frequency = value.get("Frequency")
        if isinstance(raw_frequency, bool) or not isinstance(raw_frequency, int | Decimal):
            raise ConfigError(f"{kind}.Frequency must be a number of minutes")
        frequency = Decimal(raw_frequency)
        if frequency <= 0:
            raise ConfigError(f"{kind}.Frequency must be positive")
    return Endpoint(URL=url, Format="JSON", Frequency=frequency)
