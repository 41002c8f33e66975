"""The ZigZag simulator over real HTTP: vendor API, admin API, webhooks and their retry rules."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from returnsync.simulators.runtime import FaultSpec, ServerThread
from returnsync.simulators.zigzag import ZigZagSimulator

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

DAY = 86400
API = "/Return/api/v1"


class Receiver:
    """A retailer's webhook endpoint: records every POST, answers with `respond(body)`."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.respond: Callable[[dict[str, Any]], int] = lambda _body: 200
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            body = json.loads(await request.body())
            with self._lock:
                self.calls.append({"headers": dict(request.headers), "body": body})
            return Response(status_code=self.respond(body))

        self.server = ServerThread(app)

    @property
    def url(self) -> str:
        return f"{self.server.url}/hook"

    def bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [call["body"] for call in self.calls]

    def event_ids(self) -> list[str]:
        return [body["eventId"] for body in self.bodies()]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    hook.server.start()
    yield hook
    hook.server.stop()


@pytest.fixture
def start_sim() -> Iterator[Callable[..., httpx.Client]]:
    started: list[tuple[ZigZagSimulator, httpx.Client]] = []

    def start(**kwargs: Any) -> httpx.Client:
        sim = ZigZagSimulator(**kwargs)
        sim.start()
        client = httpx.Client(base_url=sim.url, timeout=30)
        started.append((sim, client))
        return client

    yield start
    for sim, client in started:
        client.close()
        sim.stop()


@pytest.fixture
def zz(start_sim: Callable[..., httpx.Client]) -> httpx.Client:
    return start_sim(seed=7)


def ok(response: httpx.Response) -> Any:
    assert response.is_success, response.text
    return response.json()


ORDERS = [
    {
        "orderNumber": f"ORD-{n}",
        "customer": {"email": f"c{n}@example.com", "firstName": "Ada", "lastName": "Lovelace"},
        "dcWarehouse": "GB0064",
        "lines": [
            {"sku": "TSHIRT-BLK-L", "quantity": 3, "unitPrice": "24.99"},
            {"sku": "JEANS-32", "quantity": 2, "unitPrice": 49.9},
            {"sku": "SOCKS-3PK", "quantity": 4, "unitPrice": "6.00", "dcWarehouse": "GB0099"},
        ],
    }
    for n in range(1, 21)
]


def add_retailer(client: httpx.Client, code: str = "GL123", hook: Receiver | None = None) -> None:
    retailer = {"retailerCode": code, "username": f"api-{code}", "password": "secret"}
    ok(client.post("/_sim/retailers", json=retailer))
    ok(client.post("/_sim/orders", json={"retailerCode": code, "orders": ORDERS}))
    if hook is not None:
        subscription = {"retailerCode": code, "url": hook.url, "apiKey": f"key-{code}"}
        ok(client.post("/_sim/subscriptions", json=subscription))


def auth(client: httpx.Client, code: str = "GL123") -> dict[str, str]:
    token = ok(client.post("/token", json={"username": f"api-{code}", "password": "secret"}))
    return {"Authorization": f"Bearer {token['token']}"}


def new_return(client: httpx.Client, order: str = "ORD-1", quantity: int = 3) -> dict[str, Any]:
    body = {
        "retailerCode": "GL123",
        "orderNumber": order,
        "items": [{"sku": "TSHIRT-BLK-L", "quantity": quantity, "returnReasonId": 2}],
    }
    return ok(client.post("/_sim/returns", json=body))  # type: ignore[no-any-return]


def process(client: httpx.Client, return_id: str) -> dict[str, Any]:
    """Drive a fresh single-item return of 3 units to Processed."""
    ok(client.post(f"/_sim/returns/{return_id}/approve"))
    ok(client.post(f"/_sim/returns/{return_id}/label"))
    ok(client.post(f"/_sim/returns/{return_id}/receive"))
    groups = [
        {"quantity": 2, "condition": "A_NEW", "disposition": "RESALEABLE"},
        {"quantity": 1, "condition": "DAMAGED", "disposition": "WRITE_OFF", "notes": "torn seam"},
    ]
    body = {"items": [{"returnItemId": f"{return_id}-1", "inspections": groups}]}
    return ok(client.post(f"/_sim/returns/{return_id}/inspect", json=body))  # type: ignore[no-any-return]


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def drain(client: httpx.Client, timeout: float = 10.0) -> None:
    """Wait until the simulator has no webhook work due now."""
    wait_until(lambda: ok(client.get("/_sim/webhooks"))["idle"], timeout)


def deliveries(client: httpx.Client) -> list[dict[str, Any]]:
    return ok(client.get("/_sim/state"))["deliveries"]  # type: ignore[no-any-return]


REFUND = {
    "retailerCode": "GL123",
    "amount": "49.98",
    "currency": "GBP",
    "refundReference": "re_1",
    "creditNoteNumber": "CN00042",
}


# -- tokens and access --------------------------------------------------------------------


def test_token_expires_after_its_ttl_on_the_simulated_clock(zz: httpx.Client) -> None:
    """A token works until token_ttl_seconds of simulated time pass, then answers 401."""
    add_retailer(zz)
    token = ok(zz.post("/token", json={"username": "api-GL123", "password": "secret"}))
    assert token["expiresIn"] == 1800
    headers = {"Authorization": f"Bearer {token['token']}"}
    assert zz.get(f"{API}/Returns", params={"retailerCode": "GL123"}, headers=headers).is_success
    ok(zz.post("/_sim/advance_clock", json={"seconds": 1801}))
    expired = zz.get(f"{API}/Returns", params={"retailerCode": "GL123"}, headers=headers)
    assert expired.status_code == 401
    assert expired.headers["www-authenticate"] == "Bearer"
    assert expired.json() == {"message": "token expired", "errors": []}
    fresh = auth(zz)
    assert zz.get(f"{API}/Returns", params={"retailerCode": "GL123"}, headers=fresh).is_success


def test_bad_credentials_and_missing_or_forged_tokens_are_401(zz: httpx.Client) -> None:
    """A wrong password, no Authorization header, or a token not signed by us answers 401."""
    add_retailer(zz)
    assert zz.post("/token", json={"username": "api-GL123", "password": "nope"}).status_code == 401
    params = {"retailerCode": "GL123"}
    assert zz.get(f"{API}/Returns", params=params).status_code == 401
    forged = {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"}
    assert zz.get(f"{API}/Returns", params=params, headers=forged).status_code == 401


def test_a_user_gets_403_for_another_retailer(zz: httpx.Client) -> None:
    """Each API user is bound to one retailerCode; asking about another answers 403."""
    add_retailer(zz, "GL123")
    add_retailer(zz, "MA002")
    return_id = new_return(zz)["returnId"]
    headers = auth(zz, "MA002")
    theirs = {"retailerCode": "GL123"}
    assert zz.get(f"{API}/Returns", params=theirs, headers=headers).status_code == 403
    one = zz.get(f"{API}/Returns/{return_id}", params=theirs, headers=headers)
    assert one.status_code == 403
    refund = zz.put(f"{API}/Returns/{return_id}/Refund", json=REFUND, headers=headers)
    assert refund.status_code == 403
    own = zz.get(f"{API}/Returns/{return_id}", params={"retailerCode": "MA002"}, headers=headers)
    assert own.status_code == 404


# -- reads ----------------------------------------------------------------------------------


def test_list_pages_by_updated_at_and_filters_on_updated_from(zz: httpx.Client) -> None:
    """Returns list by (updatedAt, returnId) in pages; updatedFrom keeps updatedAt >= it."""
    add_retailer(zz)
    ids = [new_return(zz, f"ORD-{n}")["returnId"] for n in range(1, 6)]
    now = ok(zz.post("/_sim/advance_clock", json={"seconds": 3600}))["now"]
    ok(zz.post(f"/_sim/returns/{ids[3]}/approve"))
    ok(zz.post(f"/_sim/returns/{ids[0]}/approve"))
    headers = auth(zz)
    seen: list[str] = []
    for page in (1, 2, 3):
        params = {"retailerCode": "GL123", "page": page, "pageSize": 2}
        body = ok(zz.get(f"{API}/Returns", params=params, headers=headers))
        assert (body["page"], body["pageSize"], body["totalCount"]) == (page, 2, 5)
        seen += [r["returnId"] for r in body["items"]]
    assert seen == [ids[1], ids[2], ids[4], ids[0], ids[3]]
    params = {"retailerCode": "GL123", "updatedFrom": now}
    recent = ok(zz.get(f"{API}/Returns", params=params, headers=headers))
    assert [r["returnId"] for r in recent["items"]] == [ids[0], ids[3]]
    assert recent["totalCount"] == 2
    params = {"retailerCode": "GL123", "pageSize": 501}
    too_big = zz.get(f"{API}/Returns", params=params, headers=headers)
    assert too_big.status_code == 400
    assert too_big.json()["errors"][0]["field"] == "pageSize"


def test_money_is_serialised_as_two_decimal_strings(zz: httpx.Client) -> None:
    """unitPrice and refund amount leave as 2-dp strings, whatever form they came in."""
    add_retailer(zz)
    item = {"sku": "JEANS-32", "quantity": 1}
    body = {"retailerCode": "GL123", "orderNumber": "ORD-1", "items": [item]}
    return_id = ok(zz.post("/_sim/returns", json=body))["returnId"]
    group = {"quantity": 1, "condition": "B_GOOD", "disposition": "RESALEABLE"}
    inspected = {"items": [{"returnItemId": f"{return_id}-1", "inspections": [group]}]}
    for step in ("approve", "receive"):
        ok(zz.post(f"/_sim/returns/{return_id}/{step}"))
    processed = ok(zz.post(f"/_sim/returns/{return_id}/inspect", json=inspected))
    assert processed["items"][0]["unitPrice"] == "49.90"
    url = f"{API}/Returns/{return_id}/Refund"
    done = ok(zz.put(url, json=REFUND | {"amount": "49.9"}, headers=auth(zz)))
    assert done["refund"]["amount"] == "49.90"
    numeric = zz.put(url, json=REFUND | {"amount": 49.9}, headers=auth(zz))
    assert numeric.status_code == 400
    assert numeric.json()["errors"][0]["field"] == "amount"


# -- lifecycle and webhooks -----------------------------------------------------------------


def test_lifecycle_emits_one_event_per_change_in_order_with_full_snapshots(
    start_sim: Callable[..., httpx.Client], receiver: Receiver
) -> None:
    """Each lifecycle change emits one Z-9 event, in order, with the return as it was then."""
    zz = start_sim(seed=3)
    add_retailer(zz, hook=receiver)
    return_id = new_return(zz)["returnId"]
    process(zz, return_id)
    final = ok(zz.put(f"{API}/Returns/{return_id}/Refund", json=REFUND, headers=auth(zz)))
    drain(zz)
    bodies = receiver.bodies()
    assert [b["eventType"] for b in bodies] == [
        "ReturnCreated",
        "ReturnApproved",
        "ReturnLabelCreated",
        "ReturnReceived",
        "ReturnItemsInspected",
        "ReturnRefunded",
        "ReturnClosed",
    ]
    assert [b["data"]["status"] for b in bodies] == [
        "PendingApproval",
        "Approved",
        "LabelCreated",
        "Received",
        "Processed",
        "Refunded",
        "Closed",
    ]
    assert len(set(receiver.event_ids())) == 7
    for body in bodies:
        assert list(body) == [
            "eventId",
            "eventType",
            "occurredAt",
            "retailerCode",
            "returnId",
            "orderNumber",
            "data",
        ]
        assert body["retailerCode"] == "GL123"
        assert (body["returnId"], body["orderNumber"]) == (return_id, "ORD-1")
        assert body["occurredAt"] == body["data"]["updatedAt"]
    assert bodies[3]["data"]["items"][0]["receivedQuantity"] == 3
    assert bodies[3]["data"]["items"][0]["inspections"] == []
    inspected = bodies[4]["data"]["items"][0]["inspections"]
    assert [g["disposition"] for g in inspected] == ["RESALEABLE", "WRITE_OFF"]
    assert bodies[-1]["data"] == final
    assert {call["headers"]["x-zigzag-api-key"] for call in receiver.calls} == {"key-GL123"}
    assert all(d["status"] == 200 and d["attempt"] == 1 for d in deliveries(zz))


def test_a_500_is_retried_on_the_next_simulated_day_with_the_same_event_id(
    zz: httpx.Client, receiver: Receiver
) -> None:
    """A delivery answered 500 is re-sent by the next daily sweep, keeping its eventId."""
    failed_once: set[str] = set()

    def flaky(body: dict[str, Any]) -> int:
        if body["eventId"] in failed_once:
            return 200
        failed_once.add(body["eventId"])
        return 500

    receiver.respond = flaky
    add_retailer(zz, hook=receiver)
    new_return(zz)
    drain(zz)
    time.sleep(0.3)
    assert len(receiver.calls) == 1
    ok(zz.post("/_sim/advance_clock", json={"seconds": DAY}))
    drain(zz)
    first, retry = receiver.event_ids()
    assert first == retry
    assert [(d["attempt"], d["kind"], d["status"]) for d in deliveries(zz)] == [
        (1, "first", 500),
        (2, "retry", 200),
    ]


def test_a_404_is_not_retried(zz: httpx.Client, receiver: Receiver) -> None:
    """404 is not in ZigZag's retry list: one attempt, then the event is failed for good."""
    receiver.respond = lambda _body: 404
    add_retailer(zz, hook=receiver)
    new_return(zz)
    drain(zz)
    for _ in range(2):
        ok(zz.post("/_sim/advance_clock", json={"seconds": DAY}))
        drain(zz)
    time.sleep(0.3)
    assert len(receiver.calls) == 1
    state = ok(zz.get("/_sim/state"))
    assert [e["deliveryState"] for e in state["events"]] == ["failed"]


def test_unlisted_503_is_retried_only_when_configured(
    start_sim: Callable[..., httpx.Client], receiver: Receiver
) -> None:
    """503 is not retried by default, and is with retry_unlisted_5xx."""
    receiver.respond = lambda _body: 503
    for flag, expected_calls in ((False, 1), (True, 2)):
        zz = start_sim(seed=1, retry_unlisted_5xx=flag)
        add_retailer(zz, hook=receiver)
        receiver.calls.clear()
        new_return(zz)
        drain(zz)
        ok(zz.post("/_sim/advance_clock", json={"seconds": DAY}))
        drain(zz)
        assert len(receiver.calls) == expected_calls


def test_failures_are_abandoned_after_retry_days(
    start_sim: Callable[..., httpx.Client], receiver: Receiver
) -> None:
    """A failing delivery is retried daily while younger than retry_days, then abandoned."""
    zz = start_sim(seed=1, retry_days=2)
    receiver.respond = lambda _body: 502
    add_retailer(zz, hook=receiver)
    new_return(zz)
    drain(zz)
    for _ in range(4):
        ok(zz.post("/_sim/advance_clock", json={"seconds": DAY}))
        drain(zz)
    assert [d["kind"] for d in deliveries(zz)] == ["first", "retry", "retry"]
    assert ok(zz.get("/_sim/state"))["events"][0]["deliveryState"] == "abandoned"


def test_retries_follow_a_fast_clock_without_admin_help(
    start_sim: Callable[..., httpx.Client], receiver: Receiver
) -> None:
    """With day_seconds=1 simulated second, the daily sweep comes by itself in real time."""
    zz = start_sim(seed=1, day_seconds=1.0)
    answers = iter([500])
    receiver.respond = lambda _body: next(answers, 200)
    add_retailer(zz, hook=receiver)
    new_return(zz)
    wait_until(lambda: len(receiver.calls) == 2, timeout=5)
    assert receiver.event_ids()[0] == receiver.event_ids()[1]


def test_duplicate_fault_delivers_each_event_twice(zz: httpx.Client, receiver: Receiver) -> None:
    """With duplicate=1 every event reaches the receiver twice with the same eventId."""
    ok(zz.post("/_sim/faults", json={"duplicate": 1.0}))
    add_retailer(zz, hook=receiver)
    return_id = new_return(zz)["returnId"]
    ok(zz.post(f"/_sim/returns/{return_id}/approve"))
    drain(zz)
    ids = receiver.event_ids()
    assert len(ids) == 4
    assert ids[0] == ids[1] != ids[2] == ids[3]
    assert [d["kind"] for d in deliveries(zz)] == ["first", "duplicate"] * 2


def test_drop_fault_leaves_the_event_to_the_daily_retry(
    zz: httpx.Client, receiver: Receiver
) -> None:
    """A dropped first attempt counts as no response; the next day's sweep delivers it."""
    ok(zz.post("/_sim/faults", json={"drop": 1.0}))
    add_retailer(zz, hook=receiver)
    new_return(zz)
    drain(zz)
    assert receiver.calls == []
    assert deliveries(zz)[0]["status"] is None
    ok(zz.post("/_sim/advance_clock", json={"seconds": DAY}))
    drain(zz)
    assert [b["eventType"] for b in receiver.bodies()] == ["ReturnCreated"]


def test_late_fault_holds_events_for_a_simulated_day(zz: httpx.Client, receiver: Receiver) -> None:
    """With late=1 nothing arrives until a simulated day has passed, then everything does."""
    ok(zz.post("/_sim/faults", json={"late": 1.0}))
    add_retailer(zz, hook=receiver)
    process(zz, new_return(zz)["returnId"])
    drain(zz)
    time.sleep(0.3)
    assert receiver.calls == []
    ok(zz.post("/_sim/advance_clock", json={"seconds": DAY}))
    drain(zz)
    assert len(receiver.calls) == 5


def test_reorder_fault_delivers_some_events_after_their_successor(
    zz: httpx.Client, receiver: Receiver
) -> None:
    """With reorder=0.5 every event still arrives once, but not all in publication order."""
    ok(zz.post("/_sim/faults", json={"reorder": 0.5}))
    add_retailer(zz, hook=receiver)
    ok(zz.post("/_sim/scenario", json={"retailerCode": "GL123", "count": 3, "seed": 1}))
    drain(zz)
    wait_until(lambda: len(receiver.calls) == 15)
    published = [e["eventId"] for e in ok(zz.get("/_sim/state"))["events"]]
    assert sorted(receiver.event_ids()) == sorted(published)
    assert receiver.event_ids() != published


def test_a_burst_of_events_drains_without_loss(zz: httpx.Client, receiver: Receiver) -> None:
    """Thousands of events published at once all reach the receiver, each exactly once."""
    add_retailer(zz, hook=receiver)
    many = [order | {"orderNumber": f"BULK-{n}"} for n in range(300) for order in ORDERS[:1]]
    ok(zz.post("/_sim/orders", json={"retailerCode": "GL123", "orders": many}))
    ids = ok(zz.post("/_sim/scenario", json={"retailerCode": "GL123", "count": 400, "seed": 5}))
    assert len(ids["returnIds"]) == 400
    drain(zz, timeout=40)
    state = ok(zz.get("/_sim/state"))
    assert len(state["events"]) == 2000
    assert sorted(receiver.event_ids()) == sorted(e["eventId"] for e in state["events"])
    assert state["webhooks"]["byState"] == {"delivered": 2000}


# -- refunds ------------------------------------------------------------------------------


def test_refund_is_idempotent_on_reference_and_conflicts_otherwise(zz: httpx.Client) -> None:
    """Refund: 409 before Processed, then Closed; same ref 200 unchanged; other ref 409."""
    add_retailer(zz)
    headers = auth(zz)
    return_id = new_return(zz)["returnId"]
    url = f"{API}/Returns/{return_id}/Refund"
    early = zz.put(url, json=REFUND, headers=headers)
    assert early.status_code == 409
    assert early.json()["message"].endswith("not Processed")
    process(zz, return_id)
    done = ok(zz.put(url, json=REFUND, headers=headers))
    assert done["status"] == "Closed"
    assert [s["status"] for s in done["statusHistory"]][-2:] == ["Refunded", "Closed"]
    assert done["refund"] == {
        "amount": "49.98",
        "currency": "GBP",
        "refundReference": "re_1",
        "creditNoteNumber": "CN00042",
        "refundedAt": done["updatedAt"],
    }
    events_before = len(ok(zz.get("/_sim/state"))["events"])
    again = ok(zz.put(url, json=REFUND | {"amount": "1.00"}, headers=headers))
    assert again == done
    assert len(ok(zz.get("/_sim/state"))["events"]) == events_before
    other = zz.put(url, json=REFUND | {"refundReference": "re_2"}, headers=headers)
    assert other.status_code == 409
    assert zz.put(f"{API}/Returns/R999999/Refund", json=REFUND, headers=headers).status_code == 404


# -- scenario -------------------------------------------------------------------------------


def _without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if not k.endswith(("At", "at"))}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def test_scenario_is_deterministic_for_a_seed(start_sim: Callable[..., httpx.Client]) -> None:
    """The same seed over the same orders gives the same returns, inspections and event ids."""
    runs = []
    for _ in range(2):
        zz = start_sim(seed=11)
        add_retailer(zz)
        body = {"retailerCode": "GL123", "count": 25, "seed": 42}
        ids = ok(zz.post("/_sim/scenario", json=body))["returnIds"]
        state = ok(zz.get("/_sim/state"))
        event_ids = [e["eventId"] for e in state["events"]]
        runs.append((ids, _without_times(state["returns"]), event_ids))
    assert runs[0] == runs[1]
    returns = runs[0][1]
    assert len(returns) == 25
    assert {r["status"] for r in returns} == {"Processed"}
    assert len({r["orderNumber"] for r in returns}) == 20
    assert {r["dcWarehouse"] for r in returns} == {"GB0064", "GB0099"}
    for ret in returns:
        for item in ret["items"]:
            assert sum(g["quantity"] for g in item["inspections"]) == item["receivedQuantity"]
            assert isinstance(item["unitPrice"], str)
    other = start_sim(seed=11)
    add_retailer(other)
    ok(other.post("/_sim/scenario", json={"retailerCode": "GL123", "count": 25, "seed": 43}))
    assert _without_times(ok(other.get("/_sim/state"))["returns"]) != returns


def test_scenario_mix_shapes_lines_and_dispositions(zz: httpx.Client) -> None:
    """A scenario has single- and multi-line returns, partials, and all six dispositions."""
    add_retailer(zz)
    ok(zz.post("/_sim/scenario", json={"retailerCode": "GL123", "count": 40, "seed": 1}))
    returns = ok(zz.get("/_sim/state"))["returns"]
    line_counts = {len(r["items"]) for r in returns}
    assert 1 in line_counts
    assert line_counts & {2, 3}
    items = [item for r in returns for item in r["items"]]
    assert any(i["receivedQuantity"] < i["quantity"] for i in items)
    assert any(len(i["inspections"]) == 2 for i in items)
    dispositions = {g["disposition"] for i in items for g in i["inspections"]}
    assert "RESALEABLE" in dispositions
    assert len(dispositions) >= 4
    exhausted = zz.post("/_sim/scenario", json={"retailerCode": "GL123", "count": 500, "seed": 1})
    assert exhausted.status_code == 409


# -- validation and the published PUTs ------------------------------------------------------


def test_bad_bodies_answer_400_in_the_error_shape(zz: httpx.Client) -> None:
    """Bad JSON and missing fields answer 400 with {message, errors[{field, message}]}."""
    add_retailer(zz)
    bad_json = zz.post("/token", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400
    assert set(bad_json.json()) == {"message", "errors"}
    url = f"{API}/Returns/R000001/Refund"
    missing = zz.put(url, json={"retailerCode": "GL123"}, headers=auth(zz))
    assert missing.status_code == 400
    fields = {e["field"] for e in missing.json()["errors"]}
    assert fields == {"amount", "currency", "refundReference"}


def test_create_return_checks_sku_and_returnable_quantity(zz: httpx.Client) -> None:
    """A return must name SKUs on the order and at most ordered minus already returned."""
    add_retailer(zz)
    new_return(zz, quantity=2)
    body = {"retailerCode": "GL123", "orderNumber": "ORD-1"}
    too_many = zz.post(
        "/_sim/returns", json=body | {"items": [{"sku": "TSHIRT-BLK-L", "quantity": 2}]}
    )
    assert too_many.status_code == 400
    assert too_many.json()["errors"] == [
        {"field": "items[0].quantity", "message": "more than ordered minus already returned"}
    ]
    unknown = zz.post("/_sim/returns", json=body | {"items": [{"sku": "HAT", "quantity": 1}]})
    assert unknown.json()["errors"][0]["field"] == "items[0].sku"
    assert new_return(zz, quantity=1)["status"] == "PendingApproval"


def test_exchange_stocks_overwrite_and_report_unknown_skus(zz: httpx.Client) -> None:
    """ExchangeStocks/Update overwrites known SKUs and lists unknown or invalid items."""
    add_retailer(zz)
    headers = auth(zz)
    body = {
        "retailerCode": "GL123",
        "exchangeStocks": [
            {"sku": "JEANS-32", "warehouseDcCode": "GB0064", "availableQuantity": 5},
            {"sku": "NOPE", "warehouseDcCode": "GB0064", "availableQuantity": 1},
            {"sku": "JEANS-32", "warehouseDcCode": "GB0099", "availableQuantity": -1},
        ],
    }
    answer = ok(zz.put(f"{API}/ExchangeStocks/Update", json=body, headers=headers))
    assert answer["updatedCount"] == 1
    assert {e["field"] for e in answer["errors"]} == {
        "exchangeStocks[1].sku",
        "exchangeStocks[2].availableQuantity",
    }
    overwrite = {"sku": "JEANS-32", "warehouseDcCode": "GB0064", "availableQuantity": 2}
    body["exchangeStocks"] = [overwrite]
    ok(zz.put(f"{API}/ExchangeStocks/Update", json=body, headers=headers))
    retailer = ok(zz.get("/_sim/state"))["retailers"][0]
    assert retailer["exchangeStocks"] == [overwrite]


def test_non_returnable_products_are_stored_and_limited_to_40(zz: httpx.Client) -> None:
    """NonReturnableProducts stores valid items and refuses more than 40 in one call."""
    add_retailer(zz)
    headers = auth(zz)
    items = [{"sku": "SOCKS-3PK", "countryIso2": "GB", "messageKey": "ProductIsNonReturnable"}]
    body = {"retailerCode": "GL123", "nonReturnableProducts": items}
    url = f"{API}/NonReturnableProducts"
    assert ok(zz.put(url, json=body, headers=headers))["updatedCount"] == 1
    stored = ok(zz.get("/_sim/state"))["retailers"][0]["nonReturnableProducts"]
    assert stored == [items[0] | {"isReturnable": False}]
    body["nonReturnableProducts"] = [{"sku": f"S{n}"} for n in range(41)]
    assert zz.put(url, json=body, headers=headers).status_code == 400


# -- admin ----------------------------------------------------------------------------------


def test_request_faults_hit_the_vendor_api_but_never_the_admin_api(
    start_sim: Callable[..., httpx.Client],
) -> None:
    """With error_5xx=1 every vendor call fails with a 5xx while /_sim/ keeps answering."""
    zz = start_sim(seed=2, faults=FaultSpec(error_5xx=1.0))
    add_retailer(zz)
    token = zz.post("/token", json={"username": "api-GL123", "password": "secret"})
    assert token.status_code >= 500
    state = ok(zz.get("/_sim/state"))
    assert state["faultLog"] == {"error_5xx": 1}
    assert state["faults"]["error_5xx"] == 1.0


def test_faults_reject_unknown_keys_and_reset_restores_construction(zz: httpx.Client) -> None:
    """POST /_sim/faults refuses unknown keys; POST /_sim/reset forgets data and fault changes."""
    assert zz.post("/_sim/faults", json={"chaos_monkey": 1}).status_code == 400
    assert zz.post("/_sim/faults", json={"duplicate": 2}).status_code == 400
    faults = ok(zz.post("/_sim/faults", json={"duplicate": 0.5, "error_5xx": 0.1}))
    assert (faults["duplicate"], faults["error_5xx"]) == (0.5, 0.1)
    add_retailer(zz)
    new_return(zz)
    ok(zz.post("/_sim/reset"))
    state = ok(zz.get("/_sim/state"))
    assert state["returns"] == state["retailers"] == state["events"] == []
    assert state["faults"]["duplicate"] == state["faults"]["error_5xx"] == 0.0
