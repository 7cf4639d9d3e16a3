"""The API's request path alone (issue 17, target 3): CPU per create.

The app of ``falsework serve`` (no worker: concurrency 0) on a fresh SQLite file,
driven in-process over ASGI with no server and no sockets: 8 concurrent callers make
``--creates`` ``POST /api/scaffolder/v2/tasks`` of template ``bench-log`` (after
200 warm-up ones); the figure is the process's CPU time (all threads, the
database's included) per create. Standalone (imports only falsework), so it can
run against another checkout's source for an A/B:

    PYTHONPATH=OTHER/src python bench/api_request_path.py [--creates 3000] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parent / "templates"
PATH = "/api/scaffolder/v2/tasks"
CALLERS = 8


def _scope(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


async def _create(app: Any, n: int) -> None:
    body = json.dumps(
        {"templateRef": "template:default/bench-log", "values": {"name": f"world {n}"}}
    ).encode()
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(body), receive, send)
    if status != 201:
        raise RuntimeError(f"create answered {status}")


async def _round(creates: int) -> float:
    from falsework.api.app import create_app
    from falsework.config import Settings

    with tempfile.TemporaryDirectory(prefix="bench-path-") as work:
        settings = Settings(
            database_url=f"sqlite:///{work}/fw.db",
            data_dir=Path(work),
            templates=str(TEMPLATES),
            concurrency=0,
            secret_key=base64.urlsafe_b64encode(b"bench-request-path-0123456789abc").decode(),
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            counter = iter(range(10**9))

            async def caller(count: int) -> None:
                for _ in range(count):
                    await _create(app, next(counter))

            await asyncio.gather(*(caller(200 // CALLERS) for _ in range(CALLERS)))
            start = time.process_time()
            await asyncio.gather(*(caller(creates // CALLERS) for _ in range(CALLERS)))
            spent = time.process_time() - start
    return spent * 1000 / (creates // CALLERS * CALLERS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    figures = [asyncio.run(_round(args.creates)) for _ in range(args.rounds)]
    median = round(statistics.median(figures), 4)
    print(json.dumps({"cpu_ms_per_create": median, "rounds": figures}))


if __name__ == "__main__":
    main()
