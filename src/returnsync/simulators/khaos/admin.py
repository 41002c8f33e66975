"""The simulator's admin API under `/_sim/` (clearly not Khaos's own).

Set-up (companies, catalogue, the web orders KCC imported earlier), the operator
actions Khaos has no public API for, fault settings, and `GET /_sim/state`, the
ground truth tests believe. Bodies are JSON; unknown fields are refused (422).
Money and quantities are JSON numbers; answers write Decimals as numbers too.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from returnsync.simulators.khaos import operations
from returnsync.simulators.khaos.catalogue import STANDARD_TAX_RATE, Barcode, Site, StockItem
from returnsync.simulators.khaos.company import ChannelSettings
from returnsync.simulators.khaos.errors import OperationError
from returnsync.simulators.khaos.processing import process_return
from returnsync.simulators.khaos.returns import ReturnReason
from returnsync.simulators.khaos.wire import WireJSONResponse

if TYPE_CHECKING:
    from starlette.requests import Request

    from returnsync.simulators.khaos.simulator import KhaosSimulator


def _as_text(value: Any) -> Any:
    """IDs may arrive as JSON numbers; Khaos IDs are strings."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Text = Annotated[str, BeforeValidator(_as_text)]
Money = Annotated[Decimal, Field(allow_inf_nan=False)]
Positive = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SiteIn(_Body):
    """A site."""

    SiteID: int
    Name: str


class ReasonIn(_Body):
    """A customer return reason."""

    ID: Text
    Description: str
    ProcessingType: str


class CompanyIn(_Body):
    """`POST /_sim/companies`."""

    name: str = Field(min_length=1)
    config_url: str
    username: str = ""
    password: str = ""
    channel_id: Text = "1"
    sites: list[SiteIn] = Field(default_factory=lambda: [SiteIn(SiteID=1, Name="Main Site")])
    default_site_id: int | None = None
    customers: list[str] = Field(default_factory=list)
    return_reasons: list[ReasonIn] = Field(default_factory=list)
    currency: str = "GBP"
    initial_continuation: str | None = None
    page_size: int = Field(default=100, ge=1)


class BarcodeIn(_Body):
    """A barcode and its type DataItem."""

    Barcode: str
    Type: dict[str, Text] = Field(default_factory=dict)


class StockItemIn(_Body):
    """A stock item to load."""

    StockID: Text
    StockCode: str
    StockDescription: str = ""
    OtherRef: str = ""
    WebCode: str = ""
    Barcodes: list[BarcodeIn] = Field(default_factory=list)
    TaxRate: dict[str, Text] | None = None
    BuyPrice: NonNegative = Decimal(0)
    SellPrice: NonNegative = Decimal(0)
    StockControlled: bool = True


class LevelIn(_Body):
    """A level to set."""

    StockID: Text
    SiteID: int
    Available: Money
    OnOrder: Money = Decimal(0)


class CatalogueIn(_Body):
    """`POST /_sim/companies/{c}/stock_items`."""

    items: list[StockItemIn] = Field(default_factory=list)
    levels: list[LevelIn] = Field(default_factory=list)


class OrderLineIn(_Body):
    """A web order line (SKU = Stock Code; unit figures unrounded)."""

    SKU: str
    Quantity: Positive
    UnitNet: NonNegative
    UnitTax: NonNegative


class OrderIn(_Body):
    """A web order KCC imported."""

    AssociatedRef: str = Field(min_length=1)
    URN: str = Field(min_length=1)
    items: list[OrderLineIn] = Field(min_length=1)
    SiteID: int | None = None


class OrdersIn(_Body):
    """`POST /_sim/companies/{c}/sales_orders`."""

    orders: list[OrderIn]


class AdjustIn(_Body):
    """`POST /_sim/companies/{c}/adjust_stock`."""

    StockID: Text
    SiteID: int
    AdjustBy: Money
    ReasonCode: str = ""
    Note: str = ""
    User: str = operations.OPERATOR


class RenameIn(_Body):
    """`POST /_sim/companies/{c}/rename_stock_code`."""

    StockID: Text
    NewCode: str


class CreditLineIn(_Body):
    """A manual credit note line."""

    Net: Money
    Tax: Money
    Quantity: Positive = Decimal(1)
    StockID: Text = ""
    SKU: str = ""
    ExtendedDescription: list[str] = Field(default_factory=list)


class ManualCreditIn(_Body):
    """`POST /_sim/companies/{c}/manual_credit_note`."""

    AssociatedRef: str = ""
    URN: str
    lines: list[CreditLineIn] = Field(min_length=1)


class ReturnCodeIn(_Body):
    """`process_return` and `delete_return`."""

    CustomerReturnCode: str


class ReasonTypeIn(_Body):
    """`POST /_sim/companies/{c}/set_reason_type`."""

    ID: Text
    ProcessingType: str


class RetryIn(_Body):
    """`POST /_sim/companies/{c}/retry_returns`."""

    associatedRefs: list[str] = Field(min_length=1)


class RefreshIn(_Body):
    """`POST /_sim/companies/{c}/refresh_config`: optionally change the channel settings."""

    config_url: str | None = None
    username: str | None = None
    password: str | None = None


def _answer(content: Any, status: int = 200) -> WireJSONResponse:
    return WireJSONResponse(content, status_code=status)


def build_admin_app(sim: KhaosSimulator) -> FastAPI:  # noqa: C901, PLR0915 - one route table
    """The admin ASGI app of a simulator."""
    app = FastAPI(title="Khaos Control Cloud simulator (admin)", docs_url="/_sim/docs")

    @app.exception_handler(OperationError)
    async def refused(_request: Request, exc: OperationError) -> WireJSONResponse:
        return _answer({"error": exc.message}, exc.status)

    @app.get("/_sim/state")
    def state() -> WireJSONResponse:
        return _answer(sim.state())

    @app.post("/_sim/faults")
    def faults(body: dict[str, Any]) -> WireJSONResponse:
        try:
            sim.update_faults(body)
        except (ValueError, TypeError) as exc:
            raise OperationError(str(exc)) from None
        return _answer(sim.state()["faults"])

    @app.post("/_sim/reset")
    def reset() -> WireJSONResponse:
        sim.reset()
        return _answer({"ok": True})

    @app.post("/_sim/companies", status_code=201)
    def create_company(body: CompanyIn) -> WireJSONResponse:
        if not body.sites:
            raise OperationError("a company needs at least one site")
        default_site = body.default_site_id or body.sites[0].SiteID
        if default_site not in {site.SiteID for site in body.sites}:
            raise OperationError(f"default_site_id {default_site} is not one of the sites")
        settings = ChannelSettings(
            config_url=body.config_url,
            username=body.username,
            password=body.password,
            channel_id=body.channel_id,
            initial_continuation=body.initial_continuation or sim.first_contact(),
            page_size=body.page_size,
        )
        company = sim.create_company(
            name=body.name,
            settings=settings,
            sites=[Site(site.SiteID, site.Name) for site in body.sites],
            default_site_id=default_site,
            customers=body.customers,
            return_reasons=[
                ReturnReason(r.ID, r.Description, r.ProcessingType) for r in body.return_reasons
            ],
            currency=body.currency,
        )
        with sim.locked():
            return _answer(company.snapshot(), 201)

    @app.get("/_sim/companies/{name}")
    def company_state(name: str) -> WireJSONResponse:
        company = sim.company(name)
        with sim.locked():
            return _answer(company.snapshot())

    @app.post("/_sim/companies/{name}/stock_items")
    def stock_items(name: str, body: CatalogueIn) -> WireJSONResponse:
        company = sim.company(name)
        items = [_stock_item(item) for item in body.items]
        levels = [
            operations.LevelSpec(level.StockID, level.SiteID, level.Available, level.OnOrder)
            for level in body.levels
        ]
        with sim.locked():
            operations.load_catalogue(company, items, levels)
            return _answer({"items": len(items), "levels": len(levels)})

    @app.post("/_sim/companies/{name}/sales_orders", status_code=201)
    def sales_orders(name: str, body: OrdersIn) -> WireJSONResponse:
        company = sim.company(name)
        specs = [
            operations.OrderSpec(
                AssociatedRef=order.AssociatedRef,
                URN=order.URN,
                SiteID=order.SiteID,
                items=[
                    operations.OrderLineSpec(i.SKU, i.Quantity, i.UnitNet, i.UnitTax)
                    for i in order.items
                ],
            )
            for order in body.orders
        ]
        with sim.locked():
            created = operations.add_sales_orders(company, specs)
            return _answer({"orders": [o.wire(company.rounding) for o in created]}, 201)

    @app.post("/_sim/companies/{name}/adjust_stock")
    def adjust_stock(name: str, body: AdjustIn) -> WireJSONResponse:
        company = sim.company(name)
        with sim.locked():
            adjustment = operations.adjust_stock(
                company,
                stock_id=body.StockID,
                site_id=body.SiteID,
                adjust_by=body.AdjustBy,
                reason_code=body.ReasonCode,
                note=body.Note,
                user=body.User,
            )
            return _answer(adjustment.wire())

    @app.post("/_sim/companies/{name}/rename_stock_code")
    def rename_stock_code(name: str, body: RenameIn) -> WireJSONResponse:
        company = sim.company(name)
        with sim.locked():
            item = operations.rename_stock_code(
                company, stock_id=body.StockID, new_code=body.NewCode
            )
            return _answer(item.wire())

    @app.post("/_sim/companies/{name}/manual_credit_note", status_code=201)
    def manual_credit_note(name: str, body: ManualCreditIn) -> WireJSONResponse:
        company = sim.company(name)
        lines = [
            operations.CreditLineSpec(
                Net=line.Net,
                Tax=line.Tax,
                Quantity=line.Quantity,
                StockID=line.StockID,
                SKU=line.SKU,
                ExtendedDescription=line.ExtendedDescription,
            )
            for line in body.lines
        ]
        with sim.locked():
            note = operations.manual_credit_note(
                company, associated_ref=body.AssociatedRef, urn=body.URN, lines=lines
            )
            return _answer(note.wire(), 201)

    @app.post("/_sim/companies/{name}/process_return")
    def process(name: str, body: ReturnCodeIn) -> WireJSONResponse:
        company = sim.company(name)
        with sim.locked():
            customer_return = operations.find_return(company, body.CustomerReturnCode)
            note = process_return(company, customer_return)
            credit = note.wire() if note is not None else None
            return _answer({"return": customer_return.wire(), "credit_note": credit})

    @app.post("/_sim/companies/{name}/delete_return")
    def delete(name: str, body: ReturnCodeIn) -> WireJSONResponse:
        company = sim.company(name)
        with sim.locked():
            customer_return = operations.delete_return(company, body.CustomerReturnCode)
            return _answer(customer_return.wire())

    @app.post("/_sim/companies/{name}/set_reason_type")
    def set_reason_type(name: str, body: ReasonTypeIn) -> WireJSONResponse:
        company = sim.company(name)
        with sim.locked():
            operations.set_reason_type(
                company, reason_id=body.ID, processing_type=body.ProcessingType
            )
            return _answer({"return_reasons": [r.wire() for r in company.return_reasons.values()]})

    @app.post("/_sim/companies/{name}/retry_returns")
    def retry_returns(name: str, body: RetryIn) -> WireJSONResponse:
        outcome = sim.session(name).retry_returns(body.associatedRefs)
        if outcome is None:
            raise OperationError("no usable EndpointConfig with a CReturnDownload", status=409)
        return _answer(outcome.wire())

    @app.post("/_sim/companies/{name}/refresh_config")
    def refresh_config(name: str, body: RefreshIn | None = None) -> WireJSONResponse:
        company = sim.company(name)
        if body is not None:
            with sim.locked():
                settings = company.settings
                settings.config_url = body.config_url or settings.config_url
                if body.username is not None:
                    settings.username = body.username
                if body.password is not None:
                    settings.password = body.password
        fresh = sim.session(name).refresh_config()
        with sim.locked():
            config = company.config.wire() if company.config else None
        return _answer({"refreshed": fresh, "config": config})

    @app.post("/_sim/companies/{name}/sync")
    def sync(name: str) -> WireJSONResponse:
        sim.sync_now(name)
        return _answer({"ok": True})

    @app.post("/_sim/sync")
    def sync_all() -> WireJSONResponse:
        sim.sync_now()
        return _answer({"ok": True})

    return app


def _stock_item(body: StockItemIn) -> StockItem:
    return StockItem(
        StockID=body.StockID,
        StockCode=body.StockCode,
        StockDescription=body.StockDescription or body.StockCode,
        OtherRef=body.OtherRef,
        WebCode=body.WebCode,
        Barcodes=[
            Barcode(b.Barcode, b.Type.get("ID", ""), b.Type.get("Name", "")) for b in body.Barcodes
        ],
        TaxRate=dict(body.TaxRate) if body.TaxRate else dict(STANDARD_TAX_RATE),
        BuyPrice=body.BuyPrice,
        SellPrice=body.SellPrice,
        StockControlled=body.StockControlled,
    )
