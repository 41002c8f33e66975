"""The CLI entry point itself."""

from __future__ import annotations

import os
import subprocess
import sys


def test_a_native_crash_would_leave_every_threads_stack() -> None:
    """`returnsync` turns faulthandler on before running a command (in a fresh interpreter
    with no PYTHONFAULTHANDLER, where it starts off)."""
    code = (
        "import faulthandler\n"
        "from returnsync import cli\n"
        "print('before', faulthandler.is_enabled())\n"
        "cli._register_plugins = lambda: None\n"
        "cli.app = lambda: print('during', faulthandler.is_enabled())\n"
        "cli.main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONFAULTHANDLER"}
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    assert done.stdout.split("\n")[:2] == ["before False", "during True"], done.stdout
