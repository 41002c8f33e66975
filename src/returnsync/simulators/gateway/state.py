"""The gateway simulator's ledger: accounts, payment intents and refunds.

This ledger is the ground truth tests count ("no duplicate refunds"). Every
operation takes the account it acts for: an API key sees only its own objects.
All methods are thread-safe (the server thread writes, the test thread reads).
"""

from __future__ import annotations

import random
import string
import threading
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from returnsync.simulators.gateway.idempotency import IdempotencyStore
from returnsync.simulators.gateway.wire import Query, StripeError, money, not_found

if TYPE_CHECKING:
    from returnsync.simulators.runtime import SimClock

DEFAULT_API_KEY = "sk_test_returnsync"  # the demo account every fresh simulator has
DEFAULT_ACCOUNT_NAME = "Demo retailer"
REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
_ID_ALPHABET = string.ascii_letters + string.digits

RefundSource = Literal["api", "dashboard"]


@dataclass(kw_only=True)
class GatewaySettings:
    """Behaviour switches beyond the fault spec (`POST /_sim/settings`).

    - `apply_delay_seconds`: real seconds a POST spends "executing" after claiming its
      idempotency key; widens the window in which a concurrent retry gets a 409.
    - `search_lag_seconds`: simulated seconds before a new payment intent is visible to
      search (Stripe: "data is searchable in under 1 minute"; 0 = at once).
    """

    apply_delay_seconds: float = 0.0
    search_lag_seconds: float = 0.0

    def update(self, values: dict[str, Any]) -> None:
        """Apply a JSON patch; unknown keys raise ValueError."""
        known = self.as_dict()
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"unknown setting {key!r}; known: {sorted(known)}")
            setattr(self, key, float(value))

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class Account:
    """One Stripe account, reached with one secret API key."""

    id: str
    api_key: str
    name: str


@dataclass(kw_only=True)
class PaymentIntent:
    """A payment; succeeded ones carry their charge (`latest_charge`)."""

    id: str
    account_id: str
    amount: int
    currency: str
    status: str
    metadata: dict[str, str]
    created: int
    latest_charge: str | None
    description: str | None = None
    refunded: int = 0  # minor units refunded so far

    @property
    def refundable(self) -> int:
        """Minor units that can still be refunded."""
        received = self.amount if self.status == "succeeded" else 0
        return received - self.refunded

    def to_api(self) -> dict[str, Any]:
        """The PaymentIntent object as Stripe answers it."""
        succeeded = self.status == "succeeded"
        return {
            "id": self.id,
            "object": "payment_intent",
            "amount": self.amount,
            "amount_capturable": 0,
            "amount_received": self.amount if succeeded else 0,
            "canceled_at": None,
            "capture_method": "automatic",
            "client_secret": f"{self.id}_secret_{self.id[-12:]}",
            "confirmation_method": "automatic",
            "created": self.created,
            "currency": self.currency,
            "customer": None,
            "description": self.description,
            "last_payment_error": None,
            "latest_charge": self.latest_charge,
            "livemode": False,
            "metadata": dict(self.metadata),
            "next_action": None,
            "payment_method": f"pm_{self.id[3:]}" if succeeded else None,
            "payment_method_types": ["card"],
            "status": self.status,
        }


@dataclass(kw_only=True)
class Refund:
    """A refund of (part of) a payment intent's charge."""

    id: str
    account_id: str
    payment_intent: str
    charge: str
    amount: int
    currency: str
    reason: str | None
    metadata: dict[str, str]
    created: int
    balance_transaction: str
    source: RefundSource
    idempotency_key: str | None
    note: str | None = None
    status: str = "succeeded"

    def to_api(self) -> dict[str, Any]:
        """The Refund object as Stripe answers it."""
        return {
            "id": self.id,
            "object": "refund",
            "amount": self.amount,
            "balance_transaction": self.balance_transaction,
            "charge": self.charge,
            "created": self.created,
            "currency": self.currency,
            "destination_details": None,
            "metadata": dict(self.metadata),
            "payment_intent": self.payment_intent,
            "reason": self.reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": self.status,
            "transfer_reversal": None,
        }

    def to_state(self) -> dict[str, Any]:
        """The admin view: the API fields plus who made it and with which key."""
        return {
            **self.to_api(),
            "account": self.account_id,
            "idempotency_key": self.idempotency_key,
            "source": self.source,
            "note": self.note,
        }


@dataclass(kw_only=True)
class _Ledger:
    accounts: dict[str, Account] = field(default_factory=dict)  # by API key
    payment_intents: dict[str, PaymentIntent] = field(default_factory=dict)  # creation order
    refunds: dict[str, Refund] = field(default_factory=dict)  # creation order


class GatewayState:
    """Accounts, payment intents, refunds and idempotency keys, driven by one seed."""

    def __init__(
        self, *, clock: SimClock, seed: int = 0, settings: GatewaySettings | None = None
    ) -> None:
        self.clock = clock
        self.settings = settings or GatewaySettings()
        self.idempotency = IdempotencyStore(clock)
        self._seed = seed
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._ledger = _Ledger()
        self.reset()

    def reset(self) -> None:
        """Forget every object and key; back to the demo account and the seed's first ids.

        Settings are kept: they describe the simulated system, not its data.
        """
        with self._lock:
            self._rng = random.Random(self._seed)
            self._ledger = _Ledger()
            self.idempotency.clear()
            self.add_account(api_key=DEFAULT_API_KEY, name=DEFAULT_ACCOUNT_NAME)

    def new_id(self, prefix: str, length: int = 24) -> str:
        """A Stripe-style id (`pi_...`), deterministic for the seed and call order."""
        with self._lock:
            return prefix + "".join(self._rng.choices(_ID_ALPHABET, k=length))

    def _now(self) -> int:
        return int(self.clock.now().timestamp())

    # accounts

    def add_account(self, *, api_key: str, name: str) -> tuple[Account, bool]:
        """Register an API key as its own account; (account, created). Same key: no-op."""
        with self._lock:
            existing = self._ledger.accounts.get(api_key)
            if existing is not None:
                return existing, False
            account = Account(id=self.new_id("acct_", 16), api_key=api_key, name=name)
            self._ledger.accounts[api_key] = account
            return account, True

    def account_for_key(self, api_key: str) -> Account | None:
        """The account an API key opens, if any."""
        with self._lock:
            return self._ledger.accounts.get(api_key)

    # payment intents

    def create_payment_intent(
        self,
        account: Account,
        *,
        amount: int,
        currency: str,
        metadata: dict[str, str],
        confirm: bool,
        description: str | None = None,
    ) -> PaymentIntent:
        """A confirmed intent succeeds at once with a charge; otherwise it awaits a method."""
        with self._lock:
            intent = PaymentIntent(
                id=self.new_id("pi_"),
                account_id=account.id,
                amount=amount,
                currency=currency,
                status="succeeded" if confirm else "requires_payment_method",
                metadata=metadata,
                created=self._now(),
                latest_charge=self.new_id("ch_") if confirm else None,
                description=description,
            )
            self._ledger.payment_intents[intent.id] = intent
            return intent

    def payment_intent(
        self, account: Account, intent_id: str, *, param: str = "intent"
    ) -> PaymentIntent:
        """One of the account's intents; 404 `resource_missing` otherwise."""
        with self._lock:
            intent = self._ledger.payment_intents.get(intent_id)
            if intent is None or intent.account_id != account.id:
                raise not_found("payment_intent", intent_id, param=param)
            return intent

    def payment_intents(self, account: Account) -> list[PaymentIntent]:
        """The account's intents, newest first."""
        with self._lock:
            mine = [p for p in self._ledger.payment_intents.values() if p.account_id == account.id]
        return mine[::-1]

    def search_payment_intents(self, account: Account, query: Query) -> list[PaymentIntent]:
        """Intents matching a search query, newest first (searchable after the lag)."""
        horizon = self._now() - self.settings.search_lag_seconds
        return [
            intent
            for intent in self.payment_intents(account)
            if intent.created <= horizon and _matches(intent, query)
        ]

    def intent_for_order(self, account: Account, order_number: str) -> PaymentIntent:
        """The newest intent whose `metadata[order_number]` is `order_number`."""
        for intent in self.payment_intents(account):
            if intent.metadata.get("order_number") == order_number:
                return intent
        raise not_found("payment_intent for order", order_number, param="order_number")

    # refunds

    def create_refund(
        self,
        account: Account,
        *,
        intent: PaymentIntent,
        amount: int | None,
        reason: str | None,
        metadata: dict[str, str],
        source: RefundSource,
        idempotency_key: str | None = None,
        note: str | None = None,
    ) -> Refund:
        """Refund `amount` (default: all that remains) of the intent's charge.

        Raises 400 `charge_already_refunded` when nothing remains and 400
        `amount_too_large` when `amount` exceeds what remains.
        """
        with self._lock:
            if intent.status != "succeeded" or intent.latest_charge is None:
                raise StripeError(
                    400,
                    f"This PaymentIntent ({intent.id}) does not have a successful charge "
                    "to refund.",
                    code="charge_not_refundable",
                    param="payment_intent",
                )
            remaining = intent.refundable
            if remaining <= 0:
                raise StripeError(
                    400,
                    f"Charge {intent.latest_charge} has already been refunded.",
                    code="charge_already_refunded",
                    param="amount" if amount is not None else "payment_intent",
                )
            amount = remaining if amount is None else amount
            if amount > remaining:
                raise StripeError(
                    400,
                    f"Refund amount ({money(amount, intent.currency)}) is greater than "
                    f"unrefunded amount on charge ({money(remaining, intent.currency)})",
                    code="amount_too_large",
                    param="amount",
                )
            refund = Refund(
                id=self.new_id("re_"),
                account_id=account.id,
                payment_intent=intent.id,
                charge=intent.latest_charge,
                amount=amount,
                currency=intent.currency,
                reason=reason,
                metadata=metadata,
                created=self._now(),
                balance_transaction=self.new_id("txn_"),
                source=source,
                idempotency_key=idempotency_key,
                note=note,
            )
            intent.refunded += amount
            self._ledger.refunds[refund.id] = refund
            return refund

    def intent_for_charge(self, account: Account, charge_id: str) -> PaymentIntent:
        """The account's intent whose charge is `charge_id`; 404 otherwise."""
        with self._lock:
            for intent in self._ledger.payment_intents.values():
                if intent.account_id == account.id and intent.latest_charge == charge_id:
                    return intent
        raise not_found("charge", charge_id, param="charge")

    def refund(self, account: Account, refund_id: str) -> Refund:
        """One of the account's refunds; 404 `resource_missing` otherwise."""
        with self._lock:
            refund = self._ledger.refunds.get(refund_id)
            if refund is None or refund.account_id != account.id:
                raise not_found("refund", refund_id, param="id")
            return refund

    def refunds(
        self, account: Account, *, payment_intent: str | None = None, charge: str | None = None
    ) -> list[Refund]:
        """The account's refunds, newest first, optionally of one intent or charge."""
        with self._lock:
            mine = [
                r
                for r in self._ledger.refunds.values()
                if r.account_id == account.id
                and (payment_intent is None or r.payment_intent == payment_intent)
                and (charge is None or r.charge == charge)
            ]
        return mine[::-1]

    # admin

    def snapshot(self) -> dict[str, Any]:
        """Everything the gateway holds (`GET /_sim/state`), in creation order."""
        with self._lock:
            return {
                "accounts": [
                    {"id": a.id, "name": a.name, "api_key": a.api_key}
                    for a in self._ledger.accounts.values()
                ],
                "payment_intents": [
                    {**p.to_api(), "account": p.account_id, "amount_refunded": p.refunded}
                    for p in self._ledger.payment_intents.values()
                ],
                "refunds": [r.to_state() for r in self._ledger.refunds.values()],
                "idempotency_keys": self.idempotency.snapshot(),
            }


def _matches(intent: PaymentIntent, query: Query) -> bool:
    results = []
    for clause in query.clauses:
        if clause.metadata_key is not None:
            hit = intent.metadata.get(clause.metadata_key) == clause.value
        else:
            hit = str(getattr(intent, clause.field)) == clause.value
        results.append(hit != clause.negated)
    return any(results) if query.any_of else all(results)
