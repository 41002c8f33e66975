"""The vendor API: the Stripe subset of docs/assumptions.md G-1, at Stripe's paths.

Form-encoded requests, JSON answers, `Authorization: Bearer sk_...` (or Basic with the
key as user name), Stripe's error objects, list and search_result objects, and the
idempotency layer on every POST. (`envelope.py` stamps the `Request-Id`.)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from returnsync.simulators.gateway import wire
from returnsync.simulators.gateway.envelope import REQUEST_ID_SCOPE_KEY
from returnsync.simulators.gateway.state import REFUND_REASONS
from returnsync.simulators.gateway.wire import ParamError, Params, StripeError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from returnsync.simulators.gateway.state import Account, GatewayState

    Operation = Callable[[Account, Params], dict[str, Any]]

DEFAULT_STRIPE_VERSION = "2026-10-28.endive"  # answered when a request names no version

_EXPAND = frozenset({"expand"})
_PI_CREATE = frozenset(
    {
        "amount",
        "currency",
        "metadata",
        "confirm",
        "description",
        "payment_method",
        "payment_method_types",
        "automatic_payment_methods",
        "return_url",
        "receipt_email",
        "expand",
    }
)
_PI_LIST = frozenset({"limit", "starting_after", "ending_before", "created", "expand"})
_PI_SEARCH = frozenset({"query", "limit", "page", "expand"})
_REFUND_CREATE = frozenset(
    {
        "payment_intent",
        "charge",
        "amount",
        "reason",
        "metadata",
        "expand",
        "instructions_email",
        "origin",
        "refund_application_fee",
        "reverse_transfer",
    }
)
_REFUND_LIST = frozenset({"payment_intent", "charge", *_PI_LIST})
_AUTH_HEADERS = {"WWW-Authenticate": 'Basic realm="Stripe"'}


def router(state: GatewayState) -> APIRouter:
    """The `/v1` routes, plus Stripe's 404 for any other path (include it last)."""
    routes = _VendorRoutes(state)
    api = APIRouter()
    api.add_api_route("/v1/payment_intents", routes.create_payment_intent, methods=["POST"])
    api.add_api_route("/v1/payment_intents", routes.list_payment_intents, methods=["GET"])
    api.add_api_route("/v1/payment_intents/search", routes.search_payment_intents, methods=["GET"])
    api.add_api_route(
        "/v1/payment_intents/{intent}", routes.retrieve_payment_intent, methods=["GET"]
    )
    api.add_api_route("/v1/refunds", routes.create_refund, methods=["POST"])
    api.add_api_route("/v1/refunds", routes.list_refunds, methods=["GET"])
    api.add_api_route("/v1/refunds/{refund}", routes.retrieve_refund, methods=["GET"])
    api.add_api_route(
        "/{path:path}", routes.unrecognized, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]
    )
    return api


class _VendorRoutes:
    """Endpoints bound to one ledger: each authenticates, decodes, then runs an operation."""

    def __init__(self, state: GatewayState) -> None:
        self.state = state

    async def create_payment_intent(self, request: Request) -> Response:
        return await _post(
            request, self.state, lambda a, p: _create_payment_intent(self.state, a, p)
        )

    async def list_payment_intents(self, request: Request) -> Response:
        return _get(request, self.state, lambda a, p: _list_payment_intents(self.state, a, p))

    async def search_payment_intents(self, request: Request) -> Response:
        return _get(request, self.state, lambda a, p: _search_payment_intents(self.state, a, p))

    async def retrieve_payment_intent(self, request: Request, intent: str) -> Response:
        def retrieve(account: Account, params: Params) -> dict[str, Any]:
            wire.check_known(params, _EXPAND)
            return self.state.payment_intent(account, intent).to_api()

        return _get(request, self.state, retrieve)

    async def create_refund(self, request: Request) -> Response:
        key = request.headers.get("idempotency-key")
        return await _post(request, self.state, lambda a, p: _create_refund(self.state, a, p, key))

    async def list_refunds(self, request: Request) -> Response:
        return _get(request, self.state, lambda a, p: _list_refunds(self.state, a, p))

    async def retrieve_refund(self, request: Request, refund: str) -> Response:
        def retrieve(account: Account, params: Params) -> dict[str, Any]:
            wire.check_known(params, _EXPAND)
            return self.state.refund(account, refund).to_api()

        return _get(request, self.state, retrieve)

    async def unrecognized(self, request: Request, path: str) -> Response:
        if path.startswith("_sim/"):
            return JSONResponse({"error": f"no admin route {request.url.path}"}, status_code=404)
        return _error(
            request,
            StripeError(
                404,
                f"Unrecognized request URL ({request.method}: {request.url.path}). Please see "
                "https://stripe.com/docs or we can help at https://support.stripe.com/.",
            ),
        )


# request handling


async def _post(request: Request, state: GatewayState, operation: Operation) -> Response:
    """Authenticate, decode the form, then run once per idempotency key (or replay)."""
    try:
        account = _authenticate(request, state)
        params = wire.decode_form((await request.body()).decode("utf-8", "replace"))
    except StripeError as error:
        return _error(request, error)
    key = request.headers.get("idempotency-key")
    store = state.idempotency
    if key:
        try:
            stored = store.claim(
                account_id=account.id,
                key=key,
                endpoint=f"{request.method} {request.url.path}",
                params=params,
                request_id=_request_id(request),
            )
        except StripeError as error:
            return _error(request, error)
        if stored is not None:
            return _json(request, stored.status, stored.body, replay_of=stored.request_id)
    try:
        status, body = await _execute(state, operation, account, params)
    except ParamError as error:
        if key:
            store.release(account_id=account.id, key=key)
        return _error(request, error)
    except BaseException:
        if key:
            store.release(account_id=account.id, key=key)
        raise
    if key:
        store.complete(account_id=account.id, key=key, status=status, body=body)
    return _json(request, status, body)


async def _execute(
    state: GatewayState, operation: Operation, account: Account, params: Params
) -> tuple[int, dict[str, Any]]:
    """Run a POST: validation errors propagate; execution errors become the saved answer."""
    delay = state.settings.apply_delay_seconds
    if delay > 0:
        await asyncio.sleep(delay)
    try:
        return 200, operation(account, params)
    except ParamError:
        raise
    except StripeError as error:
        return error.status, error.body()


def _get(request: Request, state: GatewayState, operation: Operation) -> Response:
    try:
        account = _authenticate(request, state)
        return _json(request, 200, operation(account, wire.decode_form(request.url.query)))
    except StripeError as error:
        return _error(request, error)


def _authenticate(request: Request, state: GatewayState) -> Account:
    """The account of the secret key in `Authorization` (Bearer, or Basic user name)."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    key = ""
    if scheme.lower() == "bearer":
        key = credentials.strip()
    elif scheme.lower() == "basic":
        try:
            key = base64.b64decode(credentials.strip()).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            key = ""
    if not key:
        raise StripeError(
            401,
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY').",
            headers=_AUTH_HEADERS,
        )
    account = state.account_for_key(key)
    if account is None:
        raise StripeError(401, f"Invalid API Key provided: {_mask(key)}", headers=_AUTH_HEADERS)
    return account


def _mask(key: str) -> str:
    """`sk_test_****************1234`, as Stripe echoes a rejected key."""
    prefix = key[:8] if key.startswith(("sk_test_", "sk_live_")) else ""
    tail = key[len(prefix) :]
    return prefix + "*" * max(len(tail) - 4, 0) + tail[-4:]


def _request_id(request: Request) -> str:
    return str(request.scope.get(REQUEST_ID_SCOPE_KEY, ""))


def _json(
    request: Request, status: int, body: dict[str, Any], *, replay_of: str | None = None
) -> Response:
    headers = {"Stripe-Version": request.headers.get("stripe-version", DEFAULT_STRIPE_VERSION)}
    if request.method == "POST" and (key := request.headers.get("idempotency-key")):
        headers["Idempotency-Key"] = key
    if replay_of is not None:
        headers["Idempotent-Replayed"] = "true"
        headers["Original-Request"] = replay_of
    return JSONResponse(body, status_code=status, headers=headers)


def _error(request: Request, error: StripeError) -> Response:
    response = _json(request, error.status, error.body())
    response.headers.update(error.headers)
    return response


# operations: validate every parameter first (ParamError), then act


def _create_payment_intent(state: GatewayState, account: Account, params: Params) -> dict[str, Any]:
    wire.check_known(params, _PI_CREATE)
    amount = wire.integer(params, "amount", required=True)
    currency = wire.currency(params)
    metadata = wire.metadata(params)
    confirm = wire.boolean(params, "confirm")
    description = wire.string(params, "description")
    intent = state.create_payment_intent(
        account,
        amount=amount,
        currency=currency,
        metadata=metadata,
        confirm=confirm,
        description=description,
    )
    return intent.to_api()


def _list_payment_intents(state: GatewayState, account: Account, params: Params) -> dict[str, Any]:
    wire.check_known(params, _PI_LIST)
    items = _created_between(state.payment_intents(account), params)
    page, has_more = _paginate(items, params, "payment_intent")
    return _list_object([p.to_api() for p in page], has_more, "/v1/payment_intents")


def _search_payment_intents(
    state: GatewayState, account: Account, params: Params
) -> dict[str, Any]:
    wire.check_known(params, _PI_SEARCH)
    query = wire.parse_query(wire.string(params, "query", required=True))
    size = wire.limit(params)
    offset = _page_offset(wire.string(params, "page"))
    hits = state.search_payment_intents(account, query)
    page = hits[offset : offset + size]
    has_more = len(hits) > offset + size
    return {
        "object": "search_result",
        "data": [p.to_api() for p in page],
        "has_more": has_more,
        "next_page": f"page_{offset + size}" if has_more else None,
        "url": "/v1/payment_intents/search",
    }


def _create_refund(
    state: GatewayState, account: Account, params: Params, idempotency_key: str | None
) -> dict[str, Any]:
    wire.check_known(params, _REFUND_CREATE)
    intent_id = wire.string(params, "payment_intent")
    charge_id = wire.string(params, "charge")
    if intent_id is None and charge_id is None:
        raise ParamError(
            "One of the following params should be provided for this request: "
            "charge or payment_intent.",
            code="parameter_missing",
        )
    amount = wire.integer(params, "amount")
    reason = wire.string(params, "reason")
    if reason is not None and reason not in REFUND_REASONS:
        raise ParamError(
            "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer",
            param="reason",
        )
    metadata = wire.metadata(params)
    if intent_id is not None:
        intent = state.payment_intent(account, intent_id, param="payment_intent")
    else:
        intent = state.intent_for_charge(account, charge_id or "")
    if charge_id is not None and intent.latest_charge != charge_id:
        raise StripeError(
            400, f"Charge {charge_id} does not belong to {intent.id}.", param="charge"
        )
    refund = state.create_refund(
        account,
        intent=intent,
        amount=amount,
        reason=reason,
        metadata=metadata,
        source="api",
        idempotency_key=idempotency_key,
    )
    return refund.to_api()


def _list_refunds(state: GatewayState, account: Account, params: Params) -> dict[str, Any]:
    wire.check_known(params, _REFUND_LIST)
    refunds = state.refunds(
        account,
        payment_intent=wire.string(params, "payment_intent"),
        charge=wire.string(params, "charge"),
    )
    page, has_more = _paginate(_created_between(refunds, params), params, "refund")
    return _list_object([r.to_api() for r in page], has_more, "/v1/refunds")


# list helpers


class _Listed(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def created(self) -> int: ...


_T = TypeVar("_T", bound=_Listed)


def _created_between(items: Sequence[_T], params: Params) -> list[_T]:
    low, high = wire.created_filter(params)
    return [
        item
        for item in items
        if (low is None or item.created >= low) and (high is None or item.created <= high)
    ]


def _paginate(items: Sequence[_T], params: Params, kind: str) -> tuple[list[_T], bool]:
    """Cursor pagination over newest-first items: `limit`, `starting_after`, `ending_before`."""
    size = wire.limit(params)
    after = wire.string(params, "starting_after")
    before = wire.string(params, "ending_before")
    if after is not None and before is not None:
        raise ParamError(
            "You may only specify one of these parameters: ending_before, starting_after."
        )
    ids = [item.id for item in items]
    if after is not None:
        if after not in ids:
            raise wire.not_found(kind, after, param="starting_after")
        rest = list(items[ids.index(after) + 1 :])
        return rest[:size], len(rest) > size
    if before is not None:
        if before not in ids:
            raise wire.not_found(kind, before, param="ending_before")
        rest = list(items[: ids.index(before)])
        return rest[-size:], len(rest) > size
    return list(items[:size]), len(items) > size


def _list_object(data: list[dict[str, Any]], has_more: bool, url: str) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def _page_offset(page: str | None) -> int:
    if page is None:
        return 0
    prefix, _, number = page.partition("_")
    if prefix != "page" or not number.isdigit():
        raise ParamError(f"Invalid page: {page}", param="page")
    return int(number)
