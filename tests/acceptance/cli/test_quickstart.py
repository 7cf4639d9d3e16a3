"""docs/quickstart.md walked as written: python-service through a real `falsework serve`
with the values the page sends, then through `falsework run`; each repository lands
in .falsework/remotes/ and clones with the files the quickstart lists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from support.paths import DOCS
from support.serve import clean_env, free_port, stop_process, wait_healthy
from support.servers import wait_for_status

FALSEWORK = str(Path(sys.executable).with_name("falsework"))
QUICKSTART = DOCS / "quickstart.md"
FILES = [
    ".git",
    ".github",
    "Dockerfile",
    "README.md",
    "catalog-info.yaml",
    "pyproject.toml",
    "service.yaml",
    "src",
    "tests",
]
pytestmark = pytest.mark.slow


def cloned(remote: Path, into: Path) -> list[str]:
    subprocess.run(["git", "clone", "-q", str(remote), str(into)], check=True)
    return sorted(p.name for p in into.iterdir())


def test_the_page_walk_publishes_a_repository(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [FALSEWORK, "serve", "--port", str(port)],
            cwd=tmp_path,
            env=clean_env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log, stop=lambda: stop_process(process, 10))
        with httpx.Client(base_url=url, timeout=30) as client:
            # what the page sends for the quickstart's table (defaults filled in)
            values = {
                "name": "billing",
                "owner": "group:default/platform",
                "repoUrl": "github.com?owner=acme&repo=billing",
                "branch": "main",
            }
            body = {"templateRef": "template:default/python-service", "values": values}
            made = client.post("/api/scaffolder/v2/tasks", json=body)
            assert made.status_code == 201, made.text
            task = wait_for_status(client, made.json()["id"], ("completed", "failed"))
            assert task["status"] == "completed", task
    finally:
        assert stop_process(process, 30) == 0
    assert cloned(tmp_path / ".falsework" / "remotes" / "billing.git", tmp_path / "b") == FILES
    # the quickstart names that folder and those files
    text = QUICKSTART.read_text(encoding="utf-8")
    assert "git clone .falsework/remotes/billing.git billing" in text
    assert "ls -A billing    # " + "  ".join(FILES[1:]) in text


def test_the_command_line_walk_publishes_a_repository(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            FALSEWORK,
            "run",
            "python-service",
            "--defaults",
            "--set",
            "name=invoices",
            "--set",
            "owner=group:default/platform",
            "--set",
            "repoUrl=github.com?owner=acme&repo=invoices",
            "--output",
            "invoices",
        ],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert (tmp_path / "invoices" / "src" / "invoices" / "app.py").is_file()
    remote = tmp_path / ".falsework" / "remotes" / "invoices.git"
    assert cloned(remote, tmp_path / "clone") == FILES
    assert f"git clone {remote} invoices" in proc.stdout
