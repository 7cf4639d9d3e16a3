"""Starting and stopping the benchmark's own child processes (workers, servers)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT


class Child:
    """A child process whose stdout JSON lines are collected as they arrive."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name
        self.lines: list[dict[str, Any]] = []
        self.ready = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                break
            line = raw.decode(errors="replace").strip()
            if line.startswith("{"):
                with contextlib.suppress(json.JSONDecodeError):
                    row = json.loads(line)
                    self.lines.append(row)
                    if row.get("ready"):
                        self.ready.set()

    def summary(self) -> dict[str, Any]:
        for row in reversed(self.lines):
            if "executed" in row:
                return dict(row)
        return {}

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)

    async def stop(self, grace: float = 60.0) -> int:
        """SIGTERM, wait (graceful drain), SIGKILL when it overruns; the exit code."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout=grace)
            except TimeoutError:
                self.kill()
                await self.proc.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._reader, timeout=5)
        return int(self.proc.returncode or 0)


async def start_worker(
    url: str,
    concurrency: int,
    *,
    env: dict[str, str],
    extra: list[str] | None = None,
    name: str = "worker",
) -> Child:
    cmd = [sys.executable, "-m", "bench.worker_proc", "--url", url]
    cmd += ["--concurrency", str(concurrency), *(extra or [])]
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE, env=env
    )
    return Child(proc, name)


def falsework_bin() -> str:
    """The ``falsework`` console script of the running interpreter's environment."""
    candidate = Path(sys.executable).parent / "falsework"
    return str(candidate) if candidate.exists() else "falsework"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_server(
    args: list[str], *, env: dict[str, str], log_path: Path, name: str = "serve"
) -> Child:
    """``falsework ARGS...`` with its stderr in ``log_path``."""
    log_fh = log_path.open("ab")
    try:
        proc = await asyncio.create_subprocess_exec(
            falsework_bin(),
            *args,
            cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_fh,
            env=env,
        )
    finally:
        log_fh.close()
    return Child(proc, name)
