"""Schemathesis against our OpenAPI document (`app.openapi()`): no operation answers 5xx.

Every operation is fuzzed (positive and negative data; examples, coverage and fuzzing phases)
against the running app, with our tenant's credentials: X-ZigZag-Api-Key on the webhook, HTTP
Basic on /khaos. The document does not describe the raw bodies the webhook and push endpoints
read (they take `Request.body()` so that nothing is refused before it is stored), so this module
adds them, from the wire models, before loading it: schemathesis then generates near-valid
envelopes and pushes, and negative mutations of them.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from returnsync.adapters.khaos import schemas as kcc_schemas
from returnsync.adapters.zigzag import schemas as zz_schemas
from returnsync.config import Settings
from returnsync.web.app import create_app

if TYPE_CHECKING:
    from pydantic import BaseModel

BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("/webhooks/zigzag/{tenant_id}", "post"): zz_schemas.WebhookEnvelope,
    ("/khaos/{tenant_id}/stock", "post"): kcc_schemas.StockItems,
    ("/khaos/{tenant_id}/stock-status", "post"): kcc_schemas.StockStatuses,
    ("/khaos/{tenant_id}/order-status", "post"): kcc_schemas.OrderStatuses,
}
REF = "#/components/schemas/{model}"


def documented(document: dict[str, Any]) -> dict[str, Any]:
    """Our OpenAPI document plus the JSON request bodies of the webhook and the pushes."""
    doc = copy.deepcopy(document)
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    for (path, method), model in BODIES.items():
        schema = model.model_json_schema(ref_template=REF)
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
        doc["paths"][path][method]["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}},
        }
    return doc


# The document does not depend on the Context: build it from an app around settings alone
# (the app reads them for its webhook group committer, whose thread starts only on use).
schema = schemathesis.openapi.from_dict(
    documented(create_app(SimpleNamespace(settings=Settings())).openapi())  # type: ignore[arg-type]
)

SETTINGS = {
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
}


def _call(harness, case) -> None:
    """Send the case to the running app as our tenant, and check it is no server error."""
    path = case.operation.path
    if "tenant_id" in (case.path_parameters or {}):
        case.path_parameters["tenant_id"] = harness.tenant
    headers: dict[str, str] = {}
    if path.startswith("/webhooks/"):
        headers["X-ZigZag-Api-Key"] = harness.webhook_headers()["X-ZigZag-Api-Key"]
    elif path.startswith("/khaos/"):
        headers["Authorization"] = harness.kcc_headers()["Authorization"]
    harness.count(f"schemathesis {case.operation.method.upper()} {path}")
    response = case.call(base_url=harness.server.url, headers=headers)
    assert response.status_code < 500, (response.status_code, harness.recorder.errors[-1:])
    case.validate_response(response, checks=[not_a_server_error])


@schema.parametrize()
@settings(max_examples=10, derandomize=True, database=None, **SETTINGS)
def test_no_server_errors(case, harness):
    _call(harness, case)


@pytest.mark.chaos
@pytest.mark.timeout(3600)
@schema.parametrize()
@settings(max_examples=250, database=None, **SETTINGS)
def test_no_server_errors_chaos(case, harness):
    _call(harness, case)
