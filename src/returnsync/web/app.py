"""The web application factory: webhooks, the KCC channel endpoints, health and JSON views."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from returnsync import __version__
from returnsync.services.groupcommit import GroupCommitter
from returnsync.web import api, channel, webhooks

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from returnsync.services.context import Context


def create_app(ctx: Context) -> FastAPI:
    """Build the app around an already bootstrapped Context (nothing happens at import).

    The webhook group committer's thread starts with the first webhook and is stopped (after
    storing what is queued) when the server shuts down (the lifespan).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.group_committer.closed:  # the app is served again
            app.state.group_committer = group_committer(ctx)
        try:
            yield
        finally:
            await run_in_threadpool(app.state.group_committer.close)

    app = FastAPI(title="returnsync", version=__version__, lifespan=lifespan)
    app.state.ctx = ctx
    app.state.group_committer = group_committer(ctx)
    app.include_router(webhooks.router)
    app.include_router(channel.router)
    app.include_router(api.router)
    return app


def group_committer(ctx: Context) -> GroupCommitter:
    """The webhook group committer, sized by the settings (`ingest_batch_*`)."""
    return GroupCommitter(
        ctx,
        max_batch=ctx.settings.ingest_batch_max,
        wait_ms=ctx.settings.ingest_batch_wait_ms,
    )
