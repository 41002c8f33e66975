"""Our service as separate OS processes (web, workers) beside in-process simulators.

Used by the chaos runs (which SIGKILL them) and the pipeline benchmark (workers as
processes, the way PostgreSQL deployments scale out, with no shared GIL).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import IO, TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from returnsync.config import Settings


def service_env(settings: Settings) -> dict[str, str]:
    """This process's environment with `settings` as RETURNSYNC_* variables (and no others)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNSYNC_")}
    values: dict[str, object] = {
        "RETURNSYNC_DATABASE_URL": settings.database_url,
        "RETURNSYNC_TENANTS_FILE": str(settings.tenants_file),
        "RETURNSYNC_PUBLIC_URL": settings.public_url,
        "RETURNSYNC_ZIGZAG_BASE_URL": settings.zigzag_base_url,
        "RETURNSYNC_GATEWAY_BASE_URL": settings.gateway_base_url,
        "RETURNSYNC_WORKER_THREADS": str(settings.worker_threads),
        "RETURNSYNC_JOB_LEASE_SECONDS": str(settings.job_lease_seconds),
        "RETURNSYNC_POLL_INTERVAL_SECONDS": str(settings.poll_interval_seconds),
        "RETURNSYNC_SETTLED_SYNC_DELAY_SECONDS": str(settings.settled_sync_delay_seconds),
    }
    env.update({k: str(v) for k, v in values.items() if v is not None})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def worker_argv(threads: int) -> Callable[[str], list[str]]:
    """`python -m returnsync worker` named after the process incarnation."""
    return lambda name: [
        sys.executable,
        "-m",
        "returnsync",
        "worker",
        "--name",
        name,
        "--threads",
        str(threads),
    ]


def webonly_argv(port: int) -> Callable[[str], list[str]]:
    """Our web app and polling sweep, no job workers (`returnsync.simulators.demo.webonly`)."""
    return lambda _name: [
        sys.executable,
        "-m",
        "returnsync.simulators.demo.webonly",
        "--port",
        str(port),
    ]


def wait_healthy(url: str, proc: ServiceProcess, timeout: float = 60.0) -> None:
    """Wait until `url`/health answers 200; raise (with the log's tail) if `proc` exits or
    `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.exited() is not None:
            raise RuntimeError(f"{proc.name} exited before answering:\n{proc.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not answer in {timeout:.0f}s:\n{proc.tail()}")


class ServiceProcess:
    """One returnsync OS process we start, SIGKILL and restart.

    `argv(incarnation)` builds the command line; each start is a new incarnation
    (`w1.1`, `w1.2` ...), so a job lease names the very process that holds it.
    """

    def __init__(
        self, name: str, argv: Callable[[str], list[str]], env: dict[str, str], logdir: Path
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.logdir = logdir
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.started_at = 0.0
        self._log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.logdir / f"{self.name}.log"

    @property
    def incarnation(self) -> str:
        return f"{self.name}.{self.starts}"

    @property
    def uptime(self) -> float:
        return time.monotonic() - self.started_at

    def start(self) -> None:
        self.starts += 1
        if self._log is None:
            self.logdir.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        self._log.write(f"--- start {self.incarnation} at {time.time():.3f}\n".encode())
        self._log.flush()
        self.started_at = time.monotonic()
        self.popen = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            self.argv(self.incarnation),
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def exited(self) -> int | None:
        """The exit code if the process ended by itself (or was killed), else None."""
        return None if self.popen is None else self.popen.poll()

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.popen is None or self.popen.poll() is not None:
            return
        os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
