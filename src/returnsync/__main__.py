"""`python -m returnsync` runs the CLI."""

from __future__ import annotations

from returnsync.cli import main

main()
