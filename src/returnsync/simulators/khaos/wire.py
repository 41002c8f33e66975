"""JSON as KCC writes it: money and quantities are JSON numbers, never strings.

KCC's pushes carry numbers such as `"Available": 77.0` and `"Net": 41.65`. The
simulator keeps every amount as a `Decimal` and writes it as a JSON number with at
least two decimal places (`41.65`, `77.00`), keeping any further digits an unrounded
figure has (a sales order line's `UnitTax` of `3.334` stays `3.334`). Floats never
enter the state: documents pulled from the channel are parsed with `Decimal`.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from starlette.responses import Response

_CENT = Decimal("0.01")


class WireError(ValueError):
    """A value that cannot be written as KCC JSON (NaN, a float, an unknown type)."""


def number(value: Decimal) -> str:
    """The JSON text of a Decimal: at least 2 decimal places, never an exponent."""
    if not value.is_finite():
        raise WireError(f"not a finite number: {value}")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        value = value.quantize(_CENT)
    return f"{value:f}"


def dumps(value: Any) -> str:
    """Serialise `value` (dicts, lists, str, int, bool, None, Decimal) to compact JSON."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def _write(value: Any, out: list[str]) -> None:
    if value is None or isinstance(value, bool | str):
        out.append(json.dumps(value))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, Decimal):
        out.append(number(value))
    elif isinstance(value, dict):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                out.append(",")
            out.append(json.dumps(str(key)))
            out.append(":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise WireError(f"cannot write {type(value).__name__} as KCC JSON")


def loads(raw: bytes | str) -> Any:
    """Parse JSON with every non-integer number as a Decimal (raises ValueError)."""
    return json.loads(raw, parse_float=Decimal)


class WireJSONResponse(Response):
    """A Starlette response rendering content with `dumps` (Decimals as numbers)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Encode the content."""
        return dumps(content).encode()
