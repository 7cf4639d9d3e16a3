"""The real Backstage scaffolder (the oracle in ``../shared/tools/backstage-oracle``),
started by the benchmarks that compare with it in the same run.

``setup.sh`` installs it from npm once into a cache folder (``ORACLE_DIR``, by
default ``~/.cache/falsework-bench/backstage-oracle``; about 3 to 10 minutes on
this machine, then seconds); ``start.sh`` starts it on a free port on SQLite or
on a fresh Postgres database and waits until its templates are in the catalog;
``stop.sh`` stops it. Where Node.js or the oracle's folder is missing, the
comparison is skipped and says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bench.common import REPO_ROOT, log

# Where the oracle's scripts are: the folder beside the checkout (../shared/...)
# or the machine's shared folder.
_CANDIDATES = (
    REPO_ROOT.parent / "shared" / "tools" / "backstage-oracle",
    REPO_ROOT.parent.parent / "shared" / "tools" / "backstage-oracle",
)
CACHE = Path.home() / ".cache" / "falsework-bench" / "backstage-oracle"
VERSION = "4.3.0"  # @backstage/plugin-scaffolder-backend, pinned in its package.json


class OracleUnavailable(Exception):
    """The Backstage oracle cannot run here (the message says why)."""


@dataclass(frozen=True)
class Oracle:
    base: str  # http://127.0.0.1:PORT
    pid: int


def scripts_dir() -> Path:
    configured = os.environ.get("BACKSTAGE_ORACLE")
    for folder in ([Path(configured)] if configured else []) + list(_CANDIDATES):
        if (folder / "start.sh").exists():
            return folder
    raise OracleUnavailable("no backstage-oracle folder (set BACKSTAGE_ORACLE to its path)")


def oracle_dir() -> Path:
    return Path(os.environ.get("ORACLE_DIR", str(CACHE)))


async def run_script(name: str, env: dict[str, str], within: float) -> str:
    # Output to a file, not a pipe: start.sh leaves the server running in the
    # background, and a pipe it inherited would never reach its end.
    with tempfile.TemporaryFile() as out:
        proc = await asyncio.create_subprocess_exec(
            "bash", str(scripts_dir() / name), env=env, stdout=out, stderr=out
        )
        try:
            code = await asyncio.wait_for(proc.wait(), within)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise OracleUnavailable(f"{name} took more than {within:.0f} s") from None
        out.seek(0)
        text = out.read().decode(errors="replace")
    if code != 0:
        raise OracleUnavailable(f"{name} failed ({code}): {text[-600:]}")
    return text


async def setup() -> float:
    """Install the oracle into its cache folder if it is not there; seconds taken."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise OracleUnavailable("Node.js 20 and npm are needed for the Backstage oracle")
    env = {**os.environ, "ORACLE_DIR": str(oracle_dir())}
    loop = asyncio.get_running_loop()
    started = loop.time()
    await run_script("setup.sh", env, within=1800)
    return loop.time() - started


@contextlib.asynccontextmanager
async def running(db: str, port: int, concurrency: int | None = None) -> AsyncIterator[Oracle]:
    """Backstage on ``port``, on a fresh SQLite file or Postgres database."""
    env = {
        **os.environ,
        "ORACLE_DIR": str(oracle_dir()),
        "PORT": str(port),
        "DB": db,
        "FRESH": "1",
    }
    if concurrency is not None:
        env["CONCURRENCY"] = str(concurrency)
    await run_script("start.sh", env, within=300)
    pid = int((oracle_dir() / "backend.pid").read_text().strip())
    log(f"backstage {VERSION} on {db}, port {port}, pid {pid}")
    try:
        yield Oracle(f"http://127.0.0.1:{port}", pid)
    finally:
        await run_script("stop.sh", env, within=60)
