"""Real `falsework serve` processes for the tests that talk HTTP (api, cli, security).

``start_server`` runs one as a subprocess on a free loopback port, with a fresh data dir,
a YAML config written from a dict, and the API test templates; ``auth_config`` gives it
three tokens (alice and bob, plain users in different groups, and an admin).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.paths import TESTS
from support.postgres import fresh_database
from support.serve import clean_env, free_port, loopback_client, stop_process, wait_healthy
from support.sqlite import copy_database

TEMPLATES = TESTS / "support" / "api_templates"
FALSEWORK = Path(sys.executable).with_name("falsework")
# A fixed Fernet key: every node of a cluster must share it to read the secrets.
SECRET_KEY = "q0WZ3v0n1Fv7d9b5Qm1mKc5V4r6Hn3bJ8yq2tF3pG0E="

TOKENS = {
    "alice": {"user": "user:default/alice", "groups": ["group:default/team-a"], "admin": False},
    "bob": {"user": "user:default/bob", "groups": ["group:default/team-b"], "admin": False},
    "admin": {"user": "user:default/root", "groups": [], "admin": True},
}


def token_of(name: str) -> str:
    return f"{name}-token-0123456789"


def auth_config() -> dict[str, Any]:
    return {
        "auth": {
            "tokens": [
                {"sha256": hashlib.sha256(token_of(name).encode()).hexdigest(), **identity}
                for name, identity in TOKENS.items()
            ]
        }
    }


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    clients: list[httpx.Client] = field(default_factory=list)
    token: str | None = None  # the clients' bearer token when no `who` is named
    extra_templates: Path | None = None  # a template folder tests may write to

    def client(self, who: str | None = None, **kwargs: Any) -> httpx.Client:
        token = token_of(who) if who else self.token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = loopback_client(base_url=self.url, headers=headers, timeout=30.0, **kwargs)
        self.clients.append(client)
        return client

    def stop(self) -> int:
        for client in self.clients:
            client.close()
        return stop_process(self.process, 60)


# The API tests' server: a fixed key, short long polls and keep-alives.
API_ENV = {
    "FALSEWORK_SECRET_KEY": SECRET_KEY,
    "FALSEWORK_LONG_POLL_TIMEOUT": "1.5",
    "FALSEWORK_SSE_KEEPALIVE": "0.5",
    "FALSEWORK_HEARTBEAT_INTERVAL": "0.5",
    "FALSEWORK_SHUTDOWN_GRACE": "5",
}


def start_server(
    database_url: str | None,
    workdir: Path,
    *,
    config: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    concurrency: int | None = 20,
    port: int | None = None,
    templates: str | Path = TEMPLATES,
    base_env: dict[str, str] = API_ENV,
    log_level: str | None = "warning",
) -> Server:
    """`falsework serve` on a free loopback port (or ``port``), healthy: its
    database ``database_url`` (None: SQLite in ``workdir/data``), its config file
    ``workdir/falsework.yaml`` of ``config``, the template folders ``templates``,
    the variables of ``base_env`` then ``env``; ``concurrency`` and ``log_level``
    None leave serve's defaults."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    config_file = workdir / "falsework.yaml"
    config_file.write_text(yaml.safe_dump(config or {}), encoding="utf-8")
    environment = clean_env(keep=("_TEST_DATABASE_URL",))
    if database_url is not None:
        environment["FALSEWORK_DATABASE_URL"] = database_url
    environment.update(
        {
            "FALSEWORK_TEMPLATES": str(templates),
            "FALSEWORK_DATA_DIR": str(workdir / "data"),
            "FALSEWORK_CONFIG": str(config_file),
            **base_env,
            **(env or {}),
        }
    )
    args = [str(FALSEWORK), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if concurrency is not None:
        args += ["--concurrency", str(concurrency)]
    if log_level is not None:
        args += ["--log-level", log_level]
    log = workdir / f"server-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, env=environment, cwd=workdir, stdout=out, stderr=subprocess.STDOUT
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    wait_healthy(server.url, process, log, stop=server.stop)
    return server


@pytest.fixture(scope="module")
def pg_database(postgres_template: str) -> Iterator[str]:
    """A fresh Postgres database for one test module, already migrated (a copy of
    the session's template: the servers find nothing to migrate)."""
    with fresh_database("fw_api", template=postgres_template) as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def module_database(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
) -> str:
    """A fresh database of each dialect for one test module, already migrated
    (copies of the session's templates; `falsework serve` migrating a new database
    is tests/acceptance/engine/test_lazy_migrations.py's and the CLI tests' part)."""
    if request.param == "sqlite":
        return copy_database(sqlite_template, tmp_path_factory.mktemp("db") / "falsework.db")
    return str(request.getfixturevalue("pg_database"))


ServerFactory = Callable[..., Server]


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[ServerFactory]:
    """Start servers for a module; all stop at its end, and each must exit 0. One
    given no database URL has SQLite in its data folder, already migrated (a copy
    of the session's template)."""
    started: list[Server] = []

    def start(database_url: str | None, **kwargs: Any) -> Server:
        workdir = tmp_path_factory.mktemp("server")
        if database_url is None:
            copy_database(sqlite_template, workdir / "data" / "falsework.db")
        server = start_server(database_url, workdir, **kwargs)
        started.append(server)
        return server

    yield start
    codes = {s.url: s.stop() for s in started}
    bad = {url: code for url, code in codes.items() if code != 0}
    logs = "\n".join(s.log.read_text() for s in started if s.url in bad)
    assert not bad, f"servers did not exit 0 on SIGTERM: {bad}\n{logs}"


@pytest.fixture(scope="module")
def server(module_database: str, servers: ServerFactory) -> Server:
    """One authenticated server (tokens alice, bob, admin) per module and dialect."""
    return servers(module_database, config=auth_config())


def wait_for_status(
    client: httpx.Client, task_id: str, statuses: tuple[str, ...], timeout: float = 30.0
) -> dict[str, Any]:
    """Poll a task until it reaches one of ``statuses`` (a test helper, not a timing check)."""
    deadline = time.monotonic() + timeout
    while True:
        task = client.get(f"/api/scaffolder/v2/tasks/{task_id}").json()
        if task.get("status") in statuses:
            return dict(task)
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} stayed {task.get('status')}: {task}")
        time.sleep(0.05)


def sse_messages(text: str) -> list[dict[str, str]]:
    """Parse an SSE body into messages ({event, data, id}); comments kept as {comment}."""
    messages = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        message: dict[str, str] = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                message["comment"] = line[1:].strip()
            else:
                key, _, value = line.partition(":")
                message[key] = value[1:] if value.startswith(" ") else value
        messages.append(message)
    return messages
