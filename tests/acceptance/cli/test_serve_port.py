"""Which port `falsework serve` and `make run` listen on, and what a person sees when
it is taken: one line that says what to do, a non-zero exit, no traceback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from support.paths import REPO
from support.serve import clean_env, free_port, wait_healthy

ROOT = REPO
BIN = Path(sys.executable).parent


def test_a_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**clean_env(), "FALSEWORK_DATA_DIR": str(tmp_path)}
        proc = subprocess.run(
            [str(BIN / "falsework"), "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        f"error: 127.0.0.1:{port} is already in use (another Falsework?). Stop what listens "
        f"there, or serve on another port: falsework serve --port {port + 1} "
        f"(make run PORT={port + 1}, or FALSEWORK_PORT={port + 1})"
    ]
    # nothing started: no database was made
    assert not (tmp_path / "falsework.db").exists()


def test_an_address_not_of_this_machine(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(BIN / "falsework"), "serve", "--host", "192.0.2.1", "--port", str(free_port())],
        capture_output=True,
        text=True,
        env={**clean_env(), "FALSEWORK_DATA_DIR": str(tmp_path)},
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "not an address of this machine" in proc.stderr


def _serve_until_healthy(args: list[str], env: dict[str, str], port: int, log: Path) -> int:
    """Start ``args`` in its own process group, wait for /healthz on ``port``, then
    SIGTERM the group; the exit code of the process."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            args, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )

    def stop() -> int:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        return process.wait(timeout=60)

    try:
        wait_healthy(f"http://127.0.0.1:{port}", process, log, stop=stop)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    finally:
        code = stop()
    return code


def test_falsework_port_is_honoured(tmp_path: Path) -> None:
    port = free_port()
    env = {**clean_env(), "FALSEWORK_DATA_DIR": str(tmp_path), "FALSEWORK_PORT": str(port)}
    log = tmp_path / "serve.log"
    code = _serve_until_healthy([str(BIN / "falsework"), "serve"], env, port, log)
    assert code == 0, log.read_text()
    assert f"Falsework on http://127.0.0.1:{port}" in log.read_text()


def test_make_run_port(tmp_path: Path) -> None:
    port = free_port()
    env = {**clean_env(), "FALSEWORK_DATA_DIR": str(tmp_path)}
    env.pop("MAKEFLAGS", None)
    log = tmp_path / "make.log"
    # -o: the install stamp counts as up to date (this test's environment is installed)
    args = ["make", "-s", "-C", str(ROOT), "-o", ".venv/.installed-run", "run"]
    _serve_until_healthy([*args, f"PORT={port}", f"BIN={BIN}"], env, port, log)
    assert f"Falsework on http://127.0.0.1:{port}" in log.read_text()
    # FALSEWORK_PORT works through make too
    other = free_port()
    env["FALSEWORK_PORT"] = str(other)
    _serve_until_healthy([*args, f"BIN={BIN}"], env, other, log)
    assert f"Falsework on http://127.0.0.1:{other}" in log.read_text()
