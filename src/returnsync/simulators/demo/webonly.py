"""Run only returnsync's web app and its polling scheduler, no job workers (chaos harness).

`returnsync serve` runs web, workers and scheduler in one process. The chaos harness wants
the web process and the worker processes separate, so it can SIGKILL either kind alone:

    python -m returnsync.simulators.demo.webonly --port 8000

Settings come from the environment (`RETURNSYNC_*`) as for every entry point; the tenants
file from `RETURNSYNC_TENANTS_FILE` or `--tenants`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import uvicorn

from returnsync.bootstrap import build
from returnsync.config import Settings
from returnsync.engine.scheduler import Scheduler
from returnsync.web.app import create_app


def main(argv: list[str] | None = None) -> None:
    """Serve the web app (webhooks, KCC channel endpoints, JSON API) plus the polling sweep."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--tenants", type=Path, default=None, help="tenants TOML file")
    parser.add_argument(
        "--no-scheduler", action="store_true", help="do not run the polling sweep here"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings()
    if args.tenants is not None:
        settings = settings.model_copy(update={"tenants_file": args.tenants})
    ctx = build(settings)
    scheduler = Scheduler(ctx, interval=settings.poll_interval_seconds)
    if not args.no_scheduler:
        scheduler.start()
    try:
        uvicorn.run(
            create_app(ctx),
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
        )
    finally:
        if not args.no_scheduler:
            scheduler.stop()
        ctx.db.dispose()


if __name__ == "__main__":
    main()
