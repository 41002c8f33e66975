"""Stripe's wire conventions: form-encoded params, error objects, search queries.

Errors::

    StripeError            an error answered as Stripe's `{"error": {...}}` object
    └── ParamError         the request failed validation; an idempotency key is not spent on it

Stripe saves an idempotent result "only after the execution of an endpoint begins": a
`ParamError` releases the key, any other `StripeError` is saved and replayed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, overload
from urllib.parse import parse_qsl

Params = dict[str, Any]
"""Decoded request parameters: strings, nested by `a[b][c]` brackets into dicts."""

DEFAULT_LIMIT = 10  # objects per page when `limit` is not given (Stripe's default)
MAX_LIMIT = 100  # Stripe's ceiling for `limit`
MAX_METADATA_KEYS = 50  # Stripe's metadata limits: keys, key length, value length
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500

_NAME = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


class StripeError(Exception):
    """An error Stripe answers as `{"error": {"type", "code", "message", "param"}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON error object, shaped like Stripe's."""
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        return {"error": error}


class ParamError(StripeError):
    """A 400 for a malformed, missing or unknown parameter (validation, not execution)."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(400, message, code=code, param=param)


def not_found(kind: str, object_id: str, *, param: str | None = None) -> StripeError:
    """Stripe's `resource_missing`: `No such payment_intent: 'pi_123'`."""
    return StripeError(
        404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param or "id"
    )


def decode_form(raw: str) -> Params:
    """Decode `a=1&metadata[k]=v&expand[]=x` into nested dicts of strings.

    Arrays (`expand[]`, `expand[0]`) become dicts keyed by index; the simulator only
    accepts and ignores them, and dicts compare equal for idempotency either way.
    """
    root: Params = {}
    for name, value in parse_qsl(raw, keep_blank_values=True):
        match = _NAME.match(name)
        if match is None:
            raise ParamError(f"Invalid parameter name: {name}", param=name)
        path = [match.group(1), *_SEGMENT.findall(match.group(2))]
        node = root
        for depth, segment in enumerate(path[:-1]):
            key = segment or str(len(node))
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ParamError(f"Invalid hash: {'.'.join(path[: depth + 1])}", param=path[0])
            node = child
        last = path[-1] or str(len(node))
        if isinstance(node.get(last), dict):
            raise ParamError(f"Invalid hash: {name}", param=path[0])
        node[last] = value
    return root


def check_known(params: Params, allowed: frozenset[str]) -> None:
    """Reject parameters the endpoint does not take, as Stripe does."""
    for name in params:
        if name not in allowed:
            raise ParamError(
                f"Received unknown parameter: {name}", param=name, code="parameter_unknown"
            )


@overload
def string(params: Params, name: str, *, required: Literal[True]) -> str: ...
@overload
def string(params: Params, name: str, *, required: bool = False) -> str | None: ...
def string(params: Params, name: str, *, required: bool = False) -> str | None:
    """A scalar string parameter."""
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise ParamError(
                f"Missing required param: {name}.", param=name, code="parameter_missing"
            )
        return None
    if not isinstance(value, str):
        raise ParamError(f"Invalid string: {name}", param=name, code="parameter_invalid_string")
    return value


@overload
def integer(params: Params, name: str, *, required: Literal[True], minimum: int = 1) -> int: ...
@overload
def integer(
    params: Params, name: str, *, required: bool = False, minimum: int = 1
) -> int | None: ...
def integer(params: Params, name: str, *, required: bool = False, minimum: int = 1) -> int | None:
    """A whole-number parameter (amounts are integer minor units), at least `minimum`."""
    raw = string(params, name, required=required)
    if raw is None:
        return None
    if not re.fullmatch(r"-?\d+", raw):
        raise ParamError(f"Invalid integer: {raw}", param=name, code="parameter_invalid_integer")
    value = int(raw)
    if value < minimum:
        raise ParamError(
            f"This value must be greater than or equal to {minimum}.",
            param=name,
            code="parameter_invalid_integer",
        )
    return value


def boolean(params: Params, name: str) -> bool:
    """A `true`/`false` parameter; absent is false."""
    raw = string(params, name)
    if raw is None:
        return False
    if raw not in {"true", "false"}:
        raise ParamError(f"Invalid boolean: {raw}", param=name)
    return raw == "true"


def currency(params: Params) -> str:
    """A three-letter ISO currency code, lowercased as Stripe stores it."""
    raw = string(params, "currency", required=True)
    if not re.fullmatch(r"[A-Za-z]{3}", raw):
        raise ParamError(f"Invalid currency: {raw.lower()}.", param="currency")
    return raw.lower()


def metadata(params: Params) -> dict[str, str]:
    """`metadata[k]=v` pairs within Stripe's limits; empty values are dropped (unset)."""
    raw = params.get("metadata")
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, dict):
        raise ParamError("Invalid hash", param="metadata")
    result: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(value, str):
            raise ParamError(f"Invalid metadata value for key {key!r}", param=f"metadata[{key}]")
        if len(key) > MAX_METADATA_KEY_LENGTH:
            raise ParamError(
                f"Metadata keys can have up to {MAX_METADATA_KEY_LENGTH} characters.",
                param=f"metadata[{key}]",
            )
        if len(value) > MAX_METADATA_VALUE_LENGTH:
            raise ParamError(
                f"Metadata values can have up to {MAX_METADATA_VALUE_LENGTH} characters.",
                param=f"metadata[{key}]",
            )
        if value:
            result[key] = value
    if len(result) > MAX_METADATA_KEYS:
        raise ParamError(f"Metadata can have up to {MAX_METADATA_KEYS} keys.", param="metadata")
    return result


def limit(params: Params) -> int:
    """A page size in 1..100, default 10."""
    value = integer(params, "limit")
    if value is None:
        return DEFAULT_LIMIT
    if value > MAX_LIMIT:
        raise ParamError(
            f"This value must be less than or equal to {MAX_LIMIT}.",
            param="limit",
            code="parameter_invalid_integer",
        )
    return value


def created_filter(params: Params) -> tuple[int | None, int | None]:
    """`created=<ts>` or `created[gt|gte|lt|lte]=<ts>` as an inclusive (low, high) range."""
    raw = params.get("created")
    if raw is None:
        return None, None
    if isinstance(raw, str):
        exact = integer({"created": raw}, "created", minimum=0)
        return exact, exact
    if not isinstance(raw, dict):
        raise ParamError("Invalid hash", param="created")
    low: int | None = None
    high: int | None = None
    for op, value in raw.items():
        number = integer({"created": value}, "created", minimum=0)
        if number is None:
            continue
        if op in {"gt", "gte"}:
            low = number + 1 if op == "gt" else number
        elif op in {"lt", "lte"}:
            high = number - 1 if op == "lt" else number
        else:
            raise ParamError(f"Received unknown parameter: created[{op}]", param="created")
    return low, high


@dataclass(frozen=True, kw_only=True)
class Clause:
    """One search clause: `[-]field:value`, where field may be `metadata['key']`."""

    field: str
    value: str
    metadata_key: str | None = None
    negated: bool = False


@dataclass(frozen=True, kw_only=True)
class Query:
    """A parsed search query: clauses joined by one connective (`AND` or `OR`)."""

    clauses: tuple[Clause, ...]
    any_of: bool = False


SEARCHABLE_FIELDS = frozenset({"metadata", "status", "currency", "amount"})
MAX_CLAUSES = 10  # Stripe: "up to 10 clauses"

_CLAUSE = re.compile(
    r"""\s*(?P<neg>-)?
    (?P<field>[a-z_]+)
    (?:\[(?P<kq>['"])(?P<key>(?:(?!(?P=kq)).)+)(?P=kq)\])?
    :
    (?:(?P<vq>['"])(?P<quoted>(?:\\.|(?!(?P=vq)).)*)(?P=vq)|(?P<bare>[0-9]+))
    \s*""",
    re.VERBOSE,
)
_CONNECTIVE = re.compile(r"(AND|OR)\s+")


def parse_query(text: str) -> Query:
    """Parse Stripe's search query language, the subset of exact-match clauses.

    Supported: `metadata['k']:'v'` (single or double quotes), `status:'succeeded'`,
    `currency:'gbp'`, `amount:1000`, a leading `-` to negate, and up to 10 clauses
    joined by `AND` or by `OR` (not both, as in Stripe).
    """
    clauses: list[Clause] = []
    connectives: set[str] = set()
    pos = 0
    while True:
        match = _CLAUSE.match(text, pos)
        if match is None:
            raise ParamError(f"Invalid search query at position {pos}: {text!r}", param="query")
        field = match.group("field")
        key = match.group("key")
        if field not in SEARCHABLE_FIELDS or (field == "metadata") != (key is not None):
            raise ParamError(f"Field {field!r} is not searchable here.", param="query")
        quoted = match.group("quoted")
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else match.group("bare")
        clauses.append(
            Clause(field=field, value=value, metadata_key=key, negated=bool(match.group("neg")))
        )
        pos = match.end()
        if pos == len(text):
            break
        connective = _CONNECTIVE.match(text, pos)
        if connective is None:
            raise ParamError(f"Invalid search query at position {pos}: {text!r}", param="query")
        connectives.add(connective.group(1))
        pos = connective.end()
    if len(connectives) > 1:
        raise ParamError("Queries cannot combine AND and OR.", param="query")
    if len(clauses) > MAX_CLAUSES:
        raise ParamError(f"Queries can have at most {MAX_CLAUSES} clauses.", param="query")
    return Query(clauses=tuple(clauses), any_of=connectives == {"OR"})


def money(amount: int, currency_code: str) -> str:
    """`£12.34` for messages; integer arithmetic only (two-decimal currencies)."""
    symbol = {"gbp": "£", "usd": "$", "eur": "€"}.get(currency_code, currency_code.upper() + " ")
    return f"{symbol}{amount // 100}.{amount % 100:02d}"
