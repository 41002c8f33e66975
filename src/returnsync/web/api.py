"""Health and read-only JSON views (the dashboard's data, when it comes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.encoders import jsonable_encoder

from returnsync.services import queries
from returnsync.web.deps import context

router = APIRouter(tags=["views"])


@router.get("/health")
def health(request: Request) -> dict[str, Any]:
    """Liveness plus the database's reachability."""
    return queries.health(context(request))


@router.get("/summary.json")
def summary(request: Request) -> Any:
    """Counts of returns by state, jobs by status, open exceptions by kind."""
    return jsonable_encoder(queries.summary(context(request)))


@router.get("/returns.json")
def returns_list(request: Request, tenant: str | None = None, state: str | None = None) -> Any:
    """Returns, most recently updated first."""
    return jsonable_encoder(queries.returns(context(request), tenant=tenant, state=state))


@router.get("/returns/{tenant}/{return_ref}.json")
def return_detail(tenant: str, return_ref: str, request: Request) -> Any:
    """One return with its lines, credit notes and full timeline (for CX)."""
    found = queries.return_detail(context(request), tenant, return_ref)
    if found is None:
        raise HTTPException(404, f"no return {return_ref} for tenant {tenant}")
    return jsonable_encoder(found)


@router.get("/exceptions.json")
def exception_queue(request: Request, tenant: str | None = None, status: str = "open") -> Any:
    """The exception queue."""
    return jsonable_encoder(queries.exceptions(context(request), tenant=tenant, status=status))


@router.get("/findings.json")
def finding_list(request: Request, tenant: str | None = None, status: str = "open") -> Any:
    """Reconciliation findings (kind, owner, severity, amount, evidence), most severe first."""
    return jsonable_encoder(queries.findings(context(request), tenant=tenant, status=status))


@router.get("/jobs.json")
def job_list(request: Request, status: str | None = None) -> Any:
    """Jobs, newest first."""
    return jsonable_encoder(queries.jobs(context(request), status=status))
