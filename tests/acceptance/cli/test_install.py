"""Installed as a tool (what `pipx install` / `uv tool install` do): a wheel built from
this tree, installed into a fresh virtual environment, serves the page and runs the
example templates it carries, from a folder that is not the clone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import httpx
import pytest

from support.paths import REPO
from support.serve import clean_env, free_port, stop_process, wait_healthy

ROOT = REPO
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload,no-any-return]


@pytest.fixture(scope="module")
def tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `falsework` command of a fresh environment holding only the built wheel."""
    dist = tmp_path_factory.mktemp("dist")
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("falsework-*.whl")
    env_dir = tmp_path_factory.mktemp("tool") / "venv"
    # no pip of its own (ensurepip costs seconds): this pip installs into it, as pipx's
    # shared pip does; no byte-compiling of every dependency (uv's default): a module
    # is compiled when the command first imports it
    venv.create(env_dir, with_pip=False)
    installed = _run(
        [sys.executable, "-m", "pip", "--python", str(env_dir / "bin" / "python"),
         "install", "-q", "--no-compile", str(wheel)],
        timeout=800,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    return env_dir / "bin" / "falsework"


def test_the_wheel_carries_the_examples_and_runs_one(tool: Path, tmp_path: Path) -> None:
    # only the wheel: a PYTHONPATH naming a source tree would be imported first
    env = {k: v for k, v in clean_env().items() if k != "PYTHONPATH"} | {"COLUMNS": "200"}
    listed = _run([str(tool), "templates", "ls", "--json"], cwd=tmp_path, env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr
    found = {t["name"]: t["path"] for t in json.loads(listed.stdout)}
    assert {"hello-world", "python-service"} <= set(found)
    # read from the installed package, not from this clone
    assert str(tool.parents[1]) in found["python-service"]
    assert str(ROOT) not in found["python-service"]

    ran = _run(
        [str(tool), "run", "template:default/hello-world", "--set", "name=wheel"],
        cwd=tmp_path,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert ran.returncode == 0, ran.stderr + ran.stdout
    assert "Hello, wheel!" in ran.stdout

    out = tmp_path / "svc"
    service = _run(
        [
            str(tool),
            "run",
            "python-service",
            "--defaults",
            "--set",
            "name=billing",
            "--set",
            "owner=group:default/team-a",
            "--set",
            "repoUrl=github.com?owner=acme&repo=billing",
            "--output",
            str(out),
        ],
        cwd=tmp_path,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert service.returncode == 0, service.stderr + service.stdout
    assert (out / "src" / "billing" / "app.py").is_file()
    assert (out / ".github" / "workflows" / "ci.yaml").is_file()
    # publish:git pushed to a bare repository in DATA_DIR/remotes
    assert (tmp_path / ".falsework" / "remotes" / "billing.git").is_dir()


def test_the_wheel_serves_the_page(tool: Path, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(tool), "serve", "--port", str(port)],
            cwd=tmp_path,
            env=clean_env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log, stop=lambda: stop_process(process, 10))
        page = httpx.get(f"{url}/", timeout=10, follow_redirects=True)
        assert page.status_code == 200 and "<html" in page.text.lower()
        script = httpx.get(f"{url}/static/js/app.js", timeout=10)
        assert script.status_code == 200
        templates = httpx.get(f"{url}/api/scaffolder/v2/templates", timeout=10)
        assert templates.status_code == 200, templates.text
        assert "python-service" in {t["name"] for t in templates.json()}, templates.text
    finally:
        assert stop_process(process, 30) == 0, log.read_text()
    assert os.path.exists(tmp_path / ".falsework" / "falsework.db")
