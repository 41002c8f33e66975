"""The simulator's own admin API under `/_sim/` (never Stripe's, never faulted).

- `GET  /_sim/state`            everything held: accounts, payment_intents, refunds, keys
- `GET  /_sim/faults`           the fault spec and counts of faults injected so far
- `POST /_sim/faults`           patch the fault spec, e.g. `{"lost_response": 0.2}`
- `POST /_sim/settings`         patch `GatewaySettings`, e.g. `{"apply_delay_seconds": 0.3}`
- `POST /_sim/reset`            forget all objects and keys (faults and settings stay)
- `POST /_sim/clock/advance`    `{"seconds": 86400}` moves the simulated clock on
- `POST /_sim/accounts`         `{api_key, name}` registers an account
- `POST /_sim/payments`         `{api_key, payments: [{order_number, amount, currency,
                                metadata?}]}` creates succeeded intents; answers their ids
- `POST /_sim/goodwill_refund`  `{api_key, payment_intent | order_number, amount?, note?}`:
                                a CX agent's refund in the dashboard (no metadata)
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from returnsync.simulators.gateway.state import REFUND_REASONS
from returnsync.simulators.gateway.wire import StripeError

if TYPE_CHECKING:
    from returnsync.simulators.gateway.state import Account, GatewayState
    from returnsync.simulators.runtime import FaultSpec


class SimControl(Protocol):
    """What the admin API needs from the simulator object."""

    @property
    def state(self) -> GatewayState:
        """The ledger."""
        ...

    @property
    def faults(self) -> FaultSpec:
        """The live fault spec (the injector reads it on every request)."""
        ...

    def fault_report(self) -> dict[str, Any]:
        """The fault spec and the counts of faults injected, by kind."""
        ...

    def state_snapshot(self) -> dict[str, Any]:
        """The `GET /_sim/state` document."""
        ...


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountIn(_Body):
    """`POST /_sim/accounts`."""

    api_key: str = Field(min_length=1)
    name: str = ""


class PaymentIn(_Body):
    """One payment of `POST /_sim/payments`: amount in integer minor units (pence)."""

    order_number: str = Field(min_length=1)
    amount: StrictInt = Field(gt=0)
    currency: str = Field(pattern=r"^[A-Za-z]{3}$")
    metadata: dict[str, str] = Field(default_factory=dict)
    description: str | None = None


class PaymentsIn(_Body):
    """`POST /_sim/payments`."""

    api_key: str
    payments: list[PaymentIn]


class GoodwillIn(_Body):
    """`POST /_sim/goodwill_refund`: name the payment by id or by order number."""

    api_key: str
    payment_intent: str | None = None
    order_number: str | None = None
    amount: StrictInt | None = Field(default=None, gt=0)
    note: str | None = None
    reason: str | None = None


_M = TypeVar("_M", bound=BaseModel)


class AdvanceIn(_Body):
    """`POST /_sim/clock/advance`."""

    seconds: float = Field(ge=0)


def router(sim: SimControl) -> APIRouter:
    """The `/_sim` routes."""
    routes = _AdminRoutes(sim)
    admin = APIRouter(prefix="/_sim")
    admin.add_api_route("/state", routes.state, methods=["GET"])
    admin.add_api_route("/faults", routes.get_faults, methods=["GET"])
    admin.add_api_route("/faults", routes.set_faults, methods=["POST"])
    admin.add_api_route("/settings", routes.set_settings, methods=["POST"])
    admin.add_api_route("/reset", routes.reset, methods=["POST"])
    admin.add_api_route("/clock/advance", routes.advance_clock, methods=["POST"])
    admin.add_api_route("/accounts", routes.add_account, methods=["POST"])
    admin.add_api_route("/payments", routes.add_payments, methods=["POST"])
    admin.add_api_route("/goodwill_refund", routes.goodwill_refund, methods=["POST"])
    return admin


class _AdminRoutes:
    """Admin endpoints bound to one simulator."""

    def __init__(self, sim: SimControl) -> None:
        self.sim = sim

    async def state(self) -> Response:
        return JSONResponse(self.sim.state_snapshot())

    async def get_faults(self) -> Response:
        return JSONResponse(self.sim.fault_report())

    async def set_faults(self, request: Request) -> Response:
        try:
            self.sim.faults.update(await _json_object(request))
        except (ValueError, TypeError) as error:
            return _bad_request(str(error))
        return await self.get_faults()

    async def set_settings(self, request: Request) -> Response:
        settings = self.sim.state.settings
        try:
            settings.update(await _json_object(request))
        except (ValueError, TypeError) as error:
            return _bad_request(str(error))
        return JSONResponse(settings.as_dict())

    async def reset(self) -> Response:
        self.sim.state.reset()
        return JSONResponse({"reset": True})

    async def advance_clock(self, request: Request) -> Response:
        body = await _parse(request, AdvanceIn)
        if isinstance(body, Response):
            return body
        clock = self.sim.state.clock
        clock.advance(timedelta(seconds=body.seconds))
        return JSONResponse({"now": clock.now().isoformat()})

    async def add_account(self, request: Request) -> Response:
        body = await _parse(request, AccountIn)
        if isinstance(body, Response):
            return body
        account, created = self.sim.state.add_account(api_key=body.api_key, name=body.name)
        if not created and account.name != body.name:
            return JSONResponse({"error": "api_key already belongs to another account"}, 409)
        return JSONResponse(
            {"id": account.id, "name": account.name, "api_key": account.api_key},
            status_code=201 if created else 200,
        )

    async def add_payments(self, request: Request) -> Response:
        body = await _parse(request, PaymentsIn)
        if isinstance(body, Response):
            return body
        state = self.sim.state
        account = state.account_for_key(body.api_key)
        if account is None:
            return _unknown_key()
        ids = [
            state.create_payment_intent(
                account,
                amount=payment.amount,
                currency=payment.currency.lower(),
                metadata={**payment.metadata, "order_number": payment.order_number},
                confirm=True,
                description=payment.description,
            ).id
            for payment in body.payments
        ]
        return JSONResponse({"ids": ids}, status_code=201)

    async def goodwill_refund(self, request: Request) -> Response:
        body = await _parse(request, GoodwillIn)
        if isinstance(body, Response):
            return body
        account = self.sim.state.account_for_key(body.api_key)
        if account is None:
            return _unknown_key()
        if (body.payment_intent is None) == (body.order_number is None):
            return _bad_request("give exactly one of payment_intent and order_number")
        if body.reason is not None and body.reason not in REFUND_REASONS:
            return _bad_request(f"reason must be one of {sorted(REFUND_REASONS)}")
        try:
            refund = _goodwill(self.sim.state, account, body)
        except StripeError as error:
            return JSONResponse(error.body(), status_code=error.status)
        return JSONResponse(refund, status_code=201)


def _goodwill(state: GatewayState, account: Account, body: GoodwillIn) -> dict[str, Any]:
    if body.payment_intent is not None:
        intent = state.payment_intent(account, body.payment_intent, param="payment_intent")
    else:
        intent = state.intent_for_order(account, body.order_number or "")
    refund = state.create_refund(
        account,
        intent=intent,
        amount=body.amount,
        reason=body.reason,
        metadata={},
        source="dashboard",
        note=body.note,
    )
    return refund.to_state()


async def _json_object(request: Request) -> dict[str, Any]:
    body = await request.json()
    if not isinstance(body, dict):
        raise TypeError("expected a JSON object")
    return body


async def _parse(request: Request, model: type[_M]) -> _M | Response:
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as error:
        return _bad_request(error.errors(include_url=False, include_context=False))


def _bad_request(detail: object) -> Response:
    return JSONResponse({"error": detail}, status_code=400)


def _unknown_key() -> Response:
    return JSONResponse({"error": "unknown api_key"}, status_code=404)
