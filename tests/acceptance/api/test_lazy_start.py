"""A server starts without the HTTP client stack: httpx (whose package imports rich
for its command line) and standardwebhooks are imported by the first call that needs
them (a catalog query, a webhook delivery), not by every `falsework serve` start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.serve import clean_env
from support.servers import SECRET_KEY
from support.sqlite import copy_database

PROBE = """
import asyncio, json, sys
from falsework.api.app import create_app
from falsework.cli import serve
from falsework.config import load_settings

async def main():
    app = create_app(load_settings())
    async with app.router.lifespan_context(app):  # what uvicorn runs before serving
        pass
    print(json.dumps(sorted(sys.modules)))

asyncio.run(main())
"""


def test_the_app_starts_without_the_http_client(tmp_path: Path, sqlite_template: Path) -> None:
    copy_database(sqlite_template, tmp_path / "data" / "falsework.db")  # nothing to migrate
    env = clean_env()
    env.update(FALSEWORK_DATA_DIR=str(tmp_path / "data"), FALSEWORK_SECRET_KEY=SECRET_KEY)
    # its stderr, on a failure, is in the test's captured output
    out = subprocess.check_output(
        [sys.executable, "-c", PROBE], text=True, timeout=120, cwd=tmp_path, env=env
    )
    modules = json.loads(out.rstrip().rpartition("\n")[2])
    assert "falsework.webhooks" in modules and "falsework.api.entities" in modules
    tops = {m.split(".")[0] for m in modules}
    assert not tops & {"httpx", "httpcore", "rich", "standardwebhooks"}
