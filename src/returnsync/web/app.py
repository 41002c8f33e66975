"""The web application factory: webhooks, the KCC channel endpoints, health and JSON views."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from returnsync import __version__
from returnsync.web import api, channel, webhooks

if TYPE_CHECKING:
    from returnsync.services.context import Context


def create_app(ctx: Context) -> FastAPI:
    """Build the app around an already bootstrapped Context (nothing happens at import)."""
    app = FastAPI(title="returnsync", version=__version__)
    app.state.ctx = ctx
    app.include_router(webhooks.router)
    app.include_router(channel.router)
    app.include_router(api.router)
    return app
