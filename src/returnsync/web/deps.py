"""Request-scoped helpers shared by the routers."""

from __future__ import annotations

import base64
import hmac
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request

if TYPE_CHECKING:
    from returnsync.config import Tenant
    from returnsync.services.context import Context


def context(request: Request) -> Context:
    """The app's Context."""
    ctx: Context = request.app.state.ctx
    return ctx


def khaos_tenant(request: Request, tenant_id: str) -> Tenant:
    """The tenant whose KCC channel credentials are in the Basic auth header, else 401.

    An unknown tenant answers exactly like wrong credentials: nothing is revealed or stored.
    """
    ctx = context(request)
    tenant = ctx.tenants.get(tenant_id)
    header = request.headers.get("authorization", "")
    if tenant is not None and header.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            user, password = "", ""
        expected = tenant.khaos.channel_password.get_secret_value()
        # bytes: compare_digest refuses str holding non-ASCII characters (a TypeError, a 500)
        if hmac.compare_digest(
            user.encode(), tenant.khaos.channel_username.encode()
        ) & hmac.compare_digest(password.encode(), expected.encode()):
            return tenant
    raise HTTPException(
        status_code=401,
        detail="Basic authentication required",
        headers={"WWW-Authenticate": 'Basic realm="returnsync"'},
    )
