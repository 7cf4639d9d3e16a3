"""A real Backstage catalog backend (npm ``@backstage/plugin-catalog-backend``, pinned in
tests/support/backstage/package.json, installed into the test cache by
scripts/ensure-forges.sh) started on a free loopback port with a static access token.

It reads catalog files from a forge through its GitHub integration (the forge's host and
API URL), exactly as a Backstage instance reads from GitHub Enterprise.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from support.forge.contract import CACHE, ensure_installed
from support.serve import free_port, loopback_client

HERE = Path(__file__).resolve().parent / "backstage"
INSTALL = CACHE / "backstage-catalog"
TOKEN = "backstage-static-token-for-tests-0001"


@dataclass
class Catalog:
    url: str
    token: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def wait_for_entity(self, ref: str, timeout: float = 60.0) -> dict[str, object]:
        kind, _, rest = ref.partition(":")
        namespace, _, name = rest.partition("/")
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while time.monotonic() < deadline:
                answer = client.get(f"/api/catalog/entities/by-name/{kind}/{namespace}/{name}")
                if answer.status_code == 200:
                    return dict(answer.json())
                time.sleep(0.3)
        raise AssertionError(f"{ref} did not appear in the catalog; log: {self.log}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_catalog(workdir: Path, github_hosts: list[dict[str, str]]) -> Catalog:
    """Start the catalog; ``github_hosts`` is its ``integrations.github`` list."""
    ensure_installed()
    shutil.copy(HERE / "index.js", INSTALL / "index.js")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = {
        "backend": {
            "baseUrl": url,
            "listen": {"host": "127.0.0.1", "port": port},
            "auth": {
                "externalAccess": [
                    {"type": "static", "options": {"token": TOKEN, "subject": "falsework"}}
                ]
            },
            "database": {"client": "better-sqlite3", "connection": ":memory:"},
            "reading": {"allow": [{"host": h["host"]} for h in github_hosts]},
        },
        "integrations": {"github": github_hosts},
        "catalog": {
            "rules": [{"allow": ["Component", "System", "API", "Resource", "Location", "Group"]}],
            "processingInterval": {"seconds": 2},
        },
    }
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "app-config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    log = workdir / "backstage.log"
    process = subprocess.Popen(
        ["node", str(INSTALL / "index.js"), "--config", str(config_file)],
        cwd=INSTALL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "NODE_ENV": "production",
            "HOME": str(workdir),
        },
    )
    catalog = Catalog(url, TOKEN, process, log)
    # within the test timeout (120 s), so the test says why rather than its worker dying
    deadline = time.monotonic() + 90
    with loopback_client(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"Backstage exited: {log.read_text()[-3000:]}")
            if b"Backend startup failed" in log.read_bytes():
                # it stays up, answering 503 for ever
                catalog.stop()
                raise RuntimeError(f"Backstage did not start: {log.read_text()[:3000]}")
            try:
                if client.get(f"{url}/.backstage/health/v1/readiness").status_code == 200:
                    return catalog
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    catalog.stop()
    raise RuntimeError(f"Backstage did not become ready: {json.dumps(log.read_text()[-3000:])}")
