"""The simulator's ASGI app: vendor routes, admin routes, and errors in ZigZag's shape."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from returnsync.simulators.zigzag import admin, api
from returnsync.simulators.zigzag.errors import FieldError, ZigZagError, error_body, field_path

if TYPE_CHECKING:
    from fastapi import Request
    from starlette.responses import Response

    from returnsync.simulators.zigzag.context import SimContext


def create_app(ctx: SimContext) -> FastAPI:
    """A FastAPI app serving `ctx` (not yet wrapped in the fault injector)."""
    app = FastAPI(
        title="ZigZag simulator (returnsync)", docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.zigzag = ctx
    app.include_router(api.router)
    app.include_router(admin.router)
    app.add_exception_handler(ZigZagError, _zigzag_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    return app


async def _zigzag_error(_request: Request, exc: Exception) -> Response:
    if not isinstance(exc, ZigZagError):  # pragma: no cover - registered for ZigZagError only
        raise exc
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    """Query and path problems: 400 (ZigZag's 4xx), not FastAPI's 422."""
    if not isinstance(exc, RequestValidationError):  # pragma: no cover
        raise exc
    errors = [
        FieldError(field=field_path([str(p) for p in error["loc"][1:]]), message=error["msg"])
        for error in exc.errors()
    ]
    return JSONResponse(error_body("invalid request", errors), status_code=400)


async def _http_error(_request: Request, exc: Exception) -> Response:
    """Unknown routes and methods, in the same error shape."""
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover
        raise exc
    return JSONResponse(
        error_body(str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )
