"""Starting a real ``falsework serve`` process: a free port, and waiting for health."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def loopback_client(**kwargs: Any) -> httpx.Client:
    """An HTTP client for our servers on loopback (plain http): no TLS context, whose
    certificate store costs tens of milliseconds of CPU per client (hundreds on a
    busy machine), and the tests make hundreds of clients."""
    return httpx.Client(verify=False, **kwargs)


def wait_healthy(
    url: str,
    process: subprocess.Popen[bytes],
    log: Path,
    *,
    stop: Callable[[], object],
    timeout: float = 60.0,
) -> None:
    """Return once ``url``/healthz answers 200; raise with the server's log otherwise."""
    deadline = time.monotonic() + timeout
    with loopback_client(timeout=1.0) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"falsework serve exited:\n{log.read_text()}")
            try:
                if client.get(f"{url}/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                stop()
                raise RuntimeError(f"falsework serve did not start:\n{log.read_text()}")
            time.sleep(0.02)  # a refused connection costs next to nothing


def clean_env(*, keep: tuple[str, ...] = ()) -> dict[str, str]:
    """This process's environment without ``FALSEWORK_*`` settings (but those
    ending with one of ``keep``), so a child reads only what a test gives it."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FALSEWORK_") or (keep and k.endswith(keep))
    }


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> int:
    """SIGTERM, wait up to ``timeout``, then SIGKILL; the exit code (-9 if killed)."""
    if process.poll() is not None:
        return int(process.returncode)
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return -9
