"""The Khaos Control Cloud simulator against a fake channel (a test double of our service)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from hypothesis import given
from hypothesis import strategies as st

from returnsync.simulators.khaos import KhaosSimulator
from returnsync.simulators.khaos.vat import Credited, credit_line, line_amounts
from returnsync.simulators.runtime import ServerThread

USER, PASSWORD = "khaos", "control"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
PUSH_PATHS = ("/khaos/stock", "/khaos/stock-status", "/khaos/order-status")


class FakeChannel:
    """Serves EndpointConfig and CustomerReturnImport pages, records every request and push."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.returns: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.pushes: dict[str, list[Any]] = {path: [] for path in PUSH_PATHS}
        self.fail_next: dict[str, int] = {}
        self.next_body: bytes | None = None
        self.slow_next: dict[str, float] = {}
        self.page_size = 100
        self.frequency = 600
        self.url = ""

    def stage(self, *returns: dict[str, Any]) -> None:
        with self.lock:
            self.returns.extend(returns)

    def calls(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def received(self, path: str) -> list[Any]:
        with self.lock:
            return list(self.pushes[path])

    def app(self) -> FastAPI:
        app = FastAPI()
        app.get("/khaos/config.json")(self.config)
        app.get("/khaos/orders")(self.orders)
        app.get("/khaos/returns")(self.page)
        for path in PUSH_PATHS:
            app.post(path)(self.receiver(path))
        return app

    def record(self, request: Request) -> None:
        with self.lock:
            self.requests.append(
                {
                    "path": request.url.path,
                    "auth": request.headers.get("authorization"),
                    "continuation": request.headers.get("sirion-continuation"),
                    "specific_ids": request.headers.get("specificids"),
                }
            )

    def config(self, request: Request) -> Response:
        self.record(request)
        if request.headers.get("authorization") != BASIC:
            return Response(status_code=401)
        base = str(request.base_url).rstrip("/")
        pull = {"Format": "JSON", "Frequency": self.frequency}
        body = {
            "OrderDownload": {"URL": f"{base}/khaos/orders", **pull},
            "CReturnDownload": {"URL": f"{base}/khaos/returns", **pull},
            "StockUpload": {"URL": f"{base}/khaos/stock", "Format": "JSON"},
            "StockStatusUpload": {"URL": f"{base}/khaos/stock-status", "Format": "JSON"},
            "OrderStatusUpload": {"URL": f"{base}/khaos/order-status", "Format": "JSON"},
        }
        return Response(json.dumps(body), media_type="application/json")

    def orders(self, request: Request) -> Response:
        self.record(request)
        return Response(json.dumps({"Orders": [], "ApiVersion": 1000}))

    def page(self, request: Request) -> Response:
        self.record(request)
        with self.lock:
            if self.next_body is not None:
                body, self.next_body = self.next_body, None
                return Response(body, headers={"Sirion-Continuation": "seq:999"})
            wanted = request.headers.get("specificids")
            if wanted:
                refs = set(wanted.split(","))
                page = [r for r in self.returns if r.get("AssociatedRef") in refs]
                return Response(json.dumps({"Returns": page, "ApiVersion": 1000}))
            cursor = request.headers.get("sirion-continuation", "")
            start = int(cursor[4:]) if cursor.startswith("seq:") else 0
            page = self.returns[start : start + self.page_size]
            document = {"Returns": page, "ApiVersion": 1000}
        headers = {"Sirion-Continuation": f"seq:{start + len(page)}"}
        return Response(json.dumps(document), headers=headers)

    def receiver(self, path: str) -> Any:
        async def receive(request: Request) -> Response:
            self.record(request)
            body = json.loads(await request.body(), parse_float=Decimal)
            with self.lock:
                delay = self.slow_next.pop(path, 0.0)
            await asyncio.sleep(delay)
            with self.lock:
                if self.fail_next.get(path, 0) > 0:
                    self.fail_next[path] -= 1
                    return Response(status_code=500)
                self.pushes[path].append(body)
            return Response(status_code=200)

        return receive


@pytest.fixture
def channel():
    fake = FakeChannel()
    server = ServerThread(fake.app()).start()
    fake.url = server.url
    yield fake
    server.stop()


@pytest.fixture
def sim():
    simulator = KhaosSimulator(seed=7, minute_seconds=0.6)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def admin(sim):
    with httpx.Client(base_url=sim.url, trust_env=False, timeout=30) as client:
        yield client


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return json.loads(response.text, parse_float=Decimal)


def setup_company(admin, channel, *, items=None, levels=None, orders=None) -> dict[str, Any]:
    ok(
        admin.post(
            "/_sim/companies",
            json={
                "name": "acme",
                "config_url": f"{channel.url}/khaos/config.json",
                "username": USER,
                "password": PASSWORD,
                "channel_id": "21",
                "sites": [{"SiteID": 1, "Name": "Main Site"}, {"SiteID": 2, "Name": "Leeds DC"}],
                "default_site_id": 1,
                "customers": ["WEBRETURNS"],
                "return_reasons": [
                    {"ID": "6", "Description": "Unwanted", "ProcessingType": "ReturnToStock"},
                    {"ID": "7", "Description": "Goods Damaged", "ProcessingType": "StockMissing"},
                ],
                "currency": "GBP",
            },
        )
    )
    ok(
        admin.post(
            "/_sim/companies/acme/stock_items",
            json={
                "items": items
                if items is not None
                else [
                    {"StockID": "112", "StockCode": "TSHIRT-BLK-L", "StockDescription": "Tee"},
                    {"StockID": "505", "StockCode": "MUG1", "OtherRef": "MUG-OTHER"},
                ],
                "levels": levels
                if levels is not None
                else [
                    {"StockID": "112", "SiteID": 1, "Available": 10},
                    {"StockID": "505", "SiteID": 1, "Available": 4},
                ],
            },
        )
    )
    created = ok(
        admin.post(
            "/_sim/companies/acme/sales_orders",
            json={
                "orders": orders
                if orders is not None
                else [
                    {
                        "AssociatedRef": "ORD-1",
                        "URN": "ADA01",
                        "items": [
                            {
                                "SKU": "TSHIRT-BLK-L",
                                "Quantity": 3,
                                "UnitNet": 16.67,
                                "UnitTax": 3.334,
                            },
                            {"SKU": "MUG1", "Quantity": 2, "UnitNet": 5.00, "UnitTax": 1.00},
                        ],
                    }
                ]
            },
        )
    )
    return created["orders"][0] if created["orders"] else {}


def a_return(ref: str, sku: str = "TSHIRT-BLK-L", quantity: Any = 1, **changes: Any) -> dict:
    item = {
        "SKU": sku,
        "Mapping": [{"Mapping": "StockCode"}, {"Mapping": "OtherRef"}],
        "Quantity": quantity,
        "ReturnReason": {"ID": changes.pop("reason", "6")},
        "ExtendedDescription": [f"{ref}-1"],
        "SourceReturnReference": {"SourceOrder": {"AssociatedRef": "ORD-1"}},
    }
    item.update(changes.pop("item", {}))
    document = {
        "AssociatedRef": ref,
        "CreatedDate": "2026-10-06T14:03:11",
        "URN": "WEBRETURNS",
        "InvoiceAddress": {
            "Line1": "1 Priest Court",
            "Town": "Grantham",
            "Country": {"Code": "GB"},
        },
        "InvoiceContact": {"Forename": "Ada", "Surname": "Lovelace"},
        "ReturnedItems": [item],
        "ProcessReturn": True,
    }
    document.update(changes)
    return document


def company(sim) -> dict[str, Any]:
    return sim.state_snapshot()["companies"]["acme"]


def returns_by_ref(sim) -> dict[str, dict[str, Any]]:
    return {r["AssociatedRef"]: r for r in company(sim)["customer_returns"]}


def all_statuses(channel, path: str) -> list[dict[str, Any]]:
    return [status for push in channel.received(path) for status in push["Statuses"]]


def test_basic_auth_sent_on_config_pulls_and_pushes(sim, admin, channel):
    """Config, pulls and pushes all carry the channel's Basic credentials; config is cached."""
    setup_company(admin, channel)
    channel.stage(a_return("ZZ-1"))
    sim.sync_now("acme")
    sim.sync_now("acme")
    wait_for(lambda: channel.received("/khaos/order-status"))
    assert len(channel.calls("/khaos/config.json")) == 1
    assert len(channel.calls("/khaos/returns")) == 2
    assert channel.calls("/khaos/orders")
    assert {r["auth"] for r in channel.requests} == {BASIC}


def test_continuation_first_contact_datetime_then_echo(sim, admin, channel):
    """First pull sends a 'YYYY-MM-DD HH:MM:SSZ' datetime, later pulls echo our last value."""
    setup_company(admin, channel)
    channel.stage(a_return("ZZ-1"), a_return("ZZ-2"))
    sim.sync_now("acme")
    channel.stage(a_return("ZZ-3"))
    sim.sync_now("acme")
    sent = [call["continuation"] for call in channel.calls("/khaos/returns")]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z", sent[0])
    assert sent[1:] == ["seq:2"]
    assert set(returns_by_ref(sim)) == {"ZZ-1", "ZZ-2", "ZZ-3"}
    assert company(sim)["continuation"] == "seq:3"


def test_unreadable_document_keeps_continuation(sim, admin, channel):
    """Bad JSON or a missing ApiVersion is a notification and the continuation stays put."""
    setup_company(admin, channel)
    channel.stage(a_return("ZZ-1"))
    sim.sync_now("acme")
    channel.next_body = b'{"Returns": [, "ApiVersion": 1000}'
    sim.sync_now("acme")
    channel.next_body = json.dumps({"Returns": []}).encode()
    sim.sync_now("acme")
    sim.sync_now("acme")
    sent = [call["continuation"] for call in channel.calls("/khaos/returns")]
    assert sent[1:] == ["seq:1", "seq:1", "seq:1"]
    messages = [n["message"] for n in company(sim)["notifications"]]
    assert any("not valid JSON" in m for m in messages)
    assert any("no ApiVersion" in m for m in messages)


def test_full_page_is_followed_by_another_pull(sim, admin, channel):
    """A page of 100 returns (K-3) makes KCC pull again at once."""
    setup_company(
        admin,
        channel,
        orders=[
            {
                "AssociatedRef": "ORD-1",
                "URN": "ADA01",
                "items": [{"SKU": "MUG1", "Quantity": 200, "UnitNet": 5, "UnitTax": 1}],
            }
        ],
    )
    channel.stage(*(a_return(f"ZZ-{n}", "MUG1", ProcessReturn=False) for n in range(130)))
    sim.sync_now("acme")
    sent = [call["continuation"] for call in channel.calls("/khaos/returns")]
    assert sent[1:] == ["seq:100"]
    assert len(returns_by_ref(sim)) == 130


def test_retry_sends_specific_ids(sim, admin, channel):
    """An operator retry pulls with SpecificIDs and imports the return once the cause is fixed."""
    setup_company(admin, channel)
    channel.stage(a_return("ZZ-9", "NEWTEE"))
    sim.sync_now("acme")
    assert "ZZ-9" not in returns_by_ref(sim)
    ok(
        admin.post(
            "/_sim/companies/acme/stock_items",
            json={"items": [{"StockID": "900", "StockCode": "NEWTEE"}], "levels": []},
        )
    )
    ok(
        admin.post(
            "/_sim/companies/acme/sales_orders",
            json={
                "orders": [
                    {
                        "AssociatedRef": "ORD-1B",
                        "URN": "ADA01",
                        "items": [{"SKU": "NEWTEE", "Quantity": 1, "UnitNet": 10, "UnitTax": 2}],
                    }
                ]
            },
        )
    )
    channel.returns[0]["ReturnedItems"][0]["SourceReturnReference"] = {
        "SourceOrder": {"AssociatedRef": "ORD-1B"}
    }
    outcome = ok(
        admin.post("/_sim/companies/acme/retry_returns", json={"associatedRefs": ["ZZ-9"]})
    )
    assert outcome["imported"] == ["ZZ-9"]
    assert channel.calls("/khaos/returns")[-1]["specific_ids"] == "ZZ-9"
    assert returns_by_ref(sim)["ZZ-9"]["State"] == "Issued"


def test_quirks_returns_object_and_source_reference_without_wrapper(sim, admin, channel):
    """`Returns` as an object, `SourceReference` without `SourceOrder`, OneOf breaches: imported."""
    order = setup_company(admin, channel)
    bare = a_return("ZZ-OBJ", item={"SourceReference": {"SOrderID": order["SOrderID"]}})
    del bare["ReturnedItems"][0]["SourceReturnReference"]
    channel.next_body = json.dumps({"Returns": bare, "ApiVersion": 10000}).encode()
    sim.sync_now("acme")
    unpadded = "SO" + str(int(order["SOrderCode"][2:]))
    oneof = a_return(
        "ZZ-ONEOF",
        item={
            "SourceReturnReference": {
                "SourceOrder": {
                    "AssociatedRef": "",
                    "SOrderID": order["SOrderID"],
                    "SOrderCode": unpadded,
                }
            }
        },
    )
    channel.next_body = json.dumps({"Returns": [oneof], "ApiVersion": 1000}).encode()
    sim.sync_now("acme")
    imported = returns_by_ref(sim)
    assert imported["ZZ-OBJ"]["items"][0]["SOrderID"] == order["SOrderID"]
    assert imported["ZZ-ONEOF"]["items"][0]["SOrderCode"] == order["SOrderCode"]
    assert company(sim)["notifications"] == []


def test_null_rejects_only_that_return(sim, admin, channel):
    """A null inside one return sends it to notifications; the rest of the page imports."""
    setup_company(admin, channel)
    channel.stage(a_return("ZZ-NULL", Notes=None), a_return("ZZ-FINE"))
    sim.sync_now("acme")
    assert set(returns_by_ref(sim)) == {"ZZ-FINE"}
    [note] = company(sim)["notifications"]
    assert note["AssociatedRef"] == "ZZ-NULL"
    assert "null value at Notes" in note["message"]


def test_duplicate_associated_ref_is_skipped_silently(sim, admin, channel):
    """A return whose AssociatedRef was imported before is skipped without a notification."""
    setup_company(admin, channel)
    channel.stage(a_return("ZZ-1"), a_return("ZZ-1"))
    sim.sync_now("acme")
    channel.stage(a_return("ZZ-1"))
    sim.sync_now("acme")
    state = company(sim)
    assert len(state["customer_returns"]) == 1
    assert len(state["credit_notes"]) == 1
    assert state["notifications"] == []


def test_unknown_urn_sku_reason_order_or_excess_quantity_rejected(sim, admin, channel):
    """Unknown URN, SKU, reason or source order, or too many units: the return is rejected."""
    setup_company(admin, channel)
    channel.stage(
        a_return("ZZ-URN", URN="NOBODY"),
        a_return("ZZ-SKU", "NO-SUCH-SKU"),
        a_return("ZZ-REASON", reason="99"),
        a_return("ZZ-ORDER", item={"SourceReturnReference": {"SourceOrder": {"SOrderID": "1"}}}),
        a_return("ZZ-QTY", quantity=4),
    )
    sim.sync_now("acme")
    state = company(sim)
    assert state["customer_returns"] == []
    messages = {n["AssociatedRef"]: n["message"] for n in state["notifications"]}
    assert "not an existing customer" in messages["ZZ-URN"]
    assert "not found" in messages["ZZ-SKU"]
    assert "unknown ReturnReason" in messages["ZZ-REASON"]
    assert "source order not found" in messages["ZZ-ORDER"]
    assert "above the 3" in messages["ZZ-QTY"]
    assert channel.received("/khaos/order-status") == []


def test_sku_found_by_other_ref_case_insensitively(sim, admin, channel):
    """Mapping[] is tried in order and matching is trimmed and case-insensitive (K-12)."""
    setup_company(admin, channel)
    channel.stage(a_return("ZZ-1", " mug-other "))
    sim.sync_now("acme")
    assert returns_by_ref(sim)["ZZ-1"]["items"][0]["StockID"] == "505"


def test_return_to_stock_raises_available_and_pushes_stock_status(sim, admin, channel):
    """ReturnToStock adds the units at the return's site, logs an adjustment, pushes the level."""
    setup_company(admin, channel)
    channel.stage(a_return("ZZ-1", quantity=2), a_return("ZZ-2", Site={"ID": "2"}))
    sim.sync_now("acme")
    state = company(sim)
    levels = {(lv["StockID"], lv["SiteID"]): lv["Available"] for lv in state["stock_levels"]}
    assert levels[("112", 1)] == 12
    assert levels[("112", 2)] == 1
    assert [(a["StockID"], a["SiteID"], a["AdjustBy"]) for a in state["adjustments"]] == [
        ("112", 1, 2),
        ("112", 2, 1),
    ]
    wait_for(lambda: len(all_statuses(channel, "/khaos/stock-status")) >= 4)
    pushed = all_statuses(channel, "/khaos/stock-status")[-2:]
    assert pushed[0] == {
        "StockCode": "TSHIRT-BLK-L",
        "StockID": "112",
        "SiteID": 1,
        "Levels": {"Available": Decimal("12.00"), "OnOrder": Decimal("0.00")},
    }
    assert (pushed[1]["SiteID"], pushed[1]["Levels"]["Available"]) == (2, Decimal(1))


def test_stock_missing_leaves_stock_but_credits(sim, admin, channel):
    """A StockMissing reason moves no stock and writes no adjustment, but still credits."""
    setup_company(admin, channel)
    channel.stage(a_return("ZZ-1", reason="7"))
    sim.sync_now("acme")
    state = company(sim)
    levels = {(lv["StockID"], lv["SiteID"]): lv["Available"] for lv in state["stock_levels"]}
    assert levels[("112", 1)] == 10
    assert state["adjustments"] == []
    assert state["customer_returns"][0]["items"][0]["ProcessingType"] == "StockMissing"
    assert len(state["credit_notes"]) == 1


def test_credit_note_pushed_as_order_status_with_totals(sim, admin, channel):
    """The credit note reaches the channel as a Complete SalesOrderStatus with Totals (K-9)."""
    setup_company(admin, channel)
    channel.stage(a_return("ZZ-1", "MUG1", 2))
    sim.sync_now("acme")
    wait_for(lambda: channel.received("/khaos/order-status"))
    [status] = all_statuses(channel, "/khaos/order-status")
    note = company(sim)["credit_notes"][0]
    assert status["OrderCode"] == note["code"] == "CN00001"
    assert status["OrderID"] == note["OrderID"]
    assert status["Status"] == "Complete"
    assert status["AssociatedRef"] == "ZZ-1"
    assert status["ChannelID"] == "21"
    assert status["Shipments"] == []
    assert status["OrderType"] == {"ID": "2", "Name": "Credit Note"}
    assert status["Totals"] == {
        "Net": Decimal("10.00"),
        "Tax": Decimal("2.00"),
        "Gross": Decimal("12.00"),
        "Currency": "GBP",
    }
    assert status["Lines"][0]["SKU"] == "MUG1"
    assert status["Lines"][0]["ExtendedDescription"] == ["ZZ-1-1"]


def test_vat_one_then_two_units_sum_to_the_line(sim, admin, channel):
    """A 3-unit line (16.67 net, 3.334 tax) credited 1 then 2 units sums exactly to the line."""
    setup_company(admin, channel)
    channel.stage(a_return("ZZ-1", quantity=1))
    sim.sync_now("acme")
    channel.stage(a_return("ZZ-2", quantity=2))
    sim.sync_now("acme")
    notes = company(sim)["credit_notes"]
    assert [(n["net"], n["tax"], n["gross"]) for n in notes] == [
        (16.67, 3.33, 20.0),
        (33.34, 6.67, 40.01),
    ]
    line = company(sim)["sales_orders"][0]["Items"][0]
    assert (line["Net"], line["Tax"]) == (50.01, 10.0)
    total_net = sum(Decimal(str(n["net"])) for n in notes)
    total_tax = sum(Decimal(str(n["tax"])) for n in notes)
    assert (total_net, total_tax) == (Decimal("50.01"), Decimal("10.00"))


@given(
    quantity=st.integers(min_value=1, max_value=12),
    unit_net=st.decimals(min_value=0, max_value=500, places=2),
    unit_tax=st.decimals(min_value=0, max_value=100, places=3),
    data=st.data(),
)
def test_vat_any_split_sums_to_the_line(quantity, unit_net, unit_tax, data):
    """However a line's units are credited, the credits sum to the line to the penny."""
    credited = Credited()
    left = quantity
    while left:
        part = data.draw(st.integers(min_value=1, max_value=left))
        amounts = credit_line(
            unit_net=unit_net,
            unit_tax=unit_tax,
            line_quantity=Decimal(quantity),
            quantity=Decimal(part),
            credited=credited,
        )
        assert amounts.net >= 0
        assert amounts.tax >= 0
        credited = credited.plus(Decimal(part), amounts)
        left -= part
    line = line_amounts(unit_net, unit_tax, Decimal(quantity))
    assert (credited.net, credited.tax) == (line.net, line.tax)


def test_process_return_false_waits_for_operator(sim, admin, channel):
    """With ProcessReturn false the return stays New until the operator processes it."""
    setup_company(admin, channel)
    channel.stage(a_return("ZZ-1", ProcessReturn=False))
    sim.sync_now("acme")
    [waiting] = company(sim)["customer_returns"]
    assert (waiting["State"], company(sim)["credit_notes"]) == ("New", [])
    done = ok(
        admin.post(
            "/_sim/companies/acme/process_return",
            json={"CustomerReturnCode": waiting["CustomerReturnCode"]},
        )
    )
    assert done["return"]["State"] == "Issued"
    again = admin.post(
        "/_sim/companies/acme/process_return",
        json={"CustomerReturnCode": waiting["CustomerReturnCode"]},
    )
    assert again.status_code == 409
    assert again.json()["error"] == "Return has already been processed."


def test_push_answered_500_is_resent_and_arrives(sim, admin, channel):
    """A push answered 500 is retried with backoff until it is answered 200 (K-13)."""
    setup_company(admin, channel)
    wait_for(lambda: channel.received("/khaos/stock-status"))
    channel.fail_next["/khaos/stock-status"] = 2
    ok(
        admin.post(
            "/_sim/companies/acme/adjust_stock",
            json={"StockID": "505", "SiteID": 1, "AdjustBy": -1, "ReasonCode": "DAMAGED"},
        )
    )
    wait_for(lambda: len(channel.received("/khaos/stock-status")) == 2)
    [status] = channel.received("/khaos/stock-status")[-1]["Statuses"]
    assert (status["StockID"], status["Levels"]["Available"]) == ("505", Decimal(3))
    attempts = [
        (p["attempt"], p["status"])
        for p in company(sim)["pushes"]
        if p["kind"] == "StockStatuses" and p["id"] == company(sim)["pushes"][-1]["id"]
    ]
    assert attempts == [(1, 500), (2, 500), (3, 200)]


def test_push_duplicate_fault_sends_a_push_twice(admin, channel):
    """With push_duplicate=1 every push answered 200 is sent once more."""
    ok(admin.post("/_sim/faults", json={"push_duplicate": 1.0}))
    setup_company(admin, channel)
    wait_for(lambda: len(channel.received("/khaos/stock")) == 2)
    first, second = channel.received("/khaos/stock")
    assert first == second


def test_push_timeout_is_retried_so_the_push_arrives_twice(sim, admin, channel):
    """A push slower than push_timeout_seconds counts as failed and is re-sent: it lands twice."""
    ok(admin.post("/_sim/faults", json={"push_timeout_seconds": 0.2}))
    channel.slow_next["/khaos/stock"] = 0.6
    setup_company(admin, channel)
    wait_for(lambda: len(channel.received("/khaos/stock")) == 2)
    first, second = channel.received("/khaos/stock")
    assert first == second
    statuses = [
        (p["attempt"], p["status"]) for p in company(sim)["pushes"] if p["kind"] == "StockItems"
    ]
    assert statuses == [(1, "timeout"), (2, 200)]


def test_stock_code_rename_fault_renames_under_same_stock_id(sim, admin, channel):
    """With stock_code_rename=1 a pull cycle renames a random item and pushes StockItems."""
    setup_company(admin, channel)
    wait_for(lambda: channel.received("/khaos/stock"))
    ok(admin.post("/_sim/faults", json={"channel": {"stock_code_rename": 1.0}}))
    sim.sync_now("acme")
    wait_for(lambda: len(channel.received("/khaos/stock")) == 2)
    [item] = channel.received("/khaos/stock")[-1]["Items"]
    codes = {i["StockID"]: i["StockCode"] for i in company(sim)["stock_items"]}
    assert codes[item["StockID"]] == item["StockCode"]
    assert item["StockCode"].endswith("-R1")


def test_more_than_100_stock_statuses_split_into_several_posts(admin, channel):
    """150 affected levels go out as StockStatuses POSTs of 100 and 50 (StockItems alike)."""
    items = [{"StockID": str(1000 + n), "StockCode": f"SKU-{n}"} for n in range(150)]
    levels = [{"StockID": str(1000 + n), "SiteID": 1, "Available": n} for n in range(150)]
    setup_company(admin, channel, items=items, levels=levels, orders=[])
    wait_for(lambda: len(channel.received("/khaos/stock-status")) == 2)
    wait_for(lambda: len(channel.received("/khaos/stock")) == 2)
    sizes = [len(push["Statuses"]) for push in channel.received("/khaos/stock-status")]
    assert sizes == [100, 50]
    assert [len(push["Items"]) for push in channel.received("/khaos/stock")] == [100, 50]
    assert all(push["Deleted"] == [] for push in channel.received("/khaos/stock"))


def test_stock_code_rename_pushes_stock_items_with_same_stock_id(sim, admin, channel):
    """Renaming a Stock Code pushes StockItems with the same StockID and the new code."""
    setup_company(admin, channel)
    wait_for(lambda: channel.received("/khaos/stock"))
    ok(
        admin.post(
            "/_sim/companies/acme/rename_stock_code",
            json={"StockID": "112", "NewCode": "  TSHIRT-BLACK-L "},
        )
    )
    wait_for(lambda: len(channel.received("/khaos/stock")) == 2)
    [item] = channel.received("/khaos/stock")[-1]["Items"]
    assert (item["StockID"], item["StockCode"]) == ("112", "TSHIRT-BLACK-L")
    channel.stage(a_return("ZZ-OLD"), a_return("ZZ-NEW", "tshirt-black-l"))
    sim.sync_now("acme")
    assert set(returns_by_ref(sim)) == {"ZZ-NEW"}
    bad = admin.post(
        "/_sim/companies/acme/rename_stock_code", json={"StockID": "112", "NewCode": "A#B"}
    )
    assert bad.status_code == 409


def test_manual_credit_note_and_reset(sim, admin, channel):
    """A manual credit note is raised and pushed without a return; reset forgets everything."""
    setup_company(admin, channel)
    note = ok(
        admin.post(
            "/_sim/companies/acme/manual_credit_note",
            json={
                "AssociatedRef": "ORD-1",
                "URN": "ADA01",
                "lines": [{"SKU": "MUG1", "Net": 4.17, "Tax": 0.83}],
            },
        )
    )
    assert (note["manual"], note["gross"], note["return_code"]) == (True, Decimal("5.00"), "")
    wait_for(lambda: channel.received("/khaos/order-status"))
    ok(admin.post("/_sim/reset"))
    assert sim.state_snapshot()["companies"] == {}
