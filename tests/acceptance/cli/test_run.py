"""`falsework run` and `falsework actions ls`, end to end, as subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

TEMPLATE = {
    "apiVersion": "scaffolder.backstage.io/v1beta3",
    "kind": "Template",
    "metadata": {"name": "svc", "title": "Service"},
    "spec": {
        "owner": "group:default/team",
        "type": "service",
        "parameters": [
            {
                "title": "Service",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "ui:autofocus": True},
                    "port": {"type": "integer", "default": 8080},
                },
            },
            {
                "title": "Extras",
                "properties": {
                    "tags": {"type": "array", "items": {"type": "string"}, "default": []},
                    "docs": {"type": "boolean", "default": False},
                },
            },
        ],
        "steps": [
            {
                "id": "fetch",
                "name": "Fetch",
                "action": "fetch:template",
                "input": {
                    "url": "./skeleton",
                    "copyWithoutTemplating": [".github/workflows/*"],
                    "values": {
                        "name": "${{ parameters.name }}",
                        "port": "${{ parameters.port }}",
                        "tags": "${{ parameters.tags }}",
                        "docs": "${{ parameters.docs }}",
                    },
                },
            },
            {
                "id": "log",
                "name": "Log",
                "action": "debug:log",
                "input": {"message": "token is ${{ secrets.TOKEN }}"},
            },
            {
                "id": "publish",
                "name": "Publish",
                "action": "publish:git",
                "input": {"remoteUrl": "${{ parameters.remote }}"},
                "if": "${{ parameters.remote }}",
            },
        ],
        "output": {
            "links": [
                {
                    "title": "Repo",
                    "url": "${{ steps.publish.output.repoContentsUrl }}",
                    "if": "${{ parameters.remote }}",
                }
            ],
            "text": [{"title": "Made", "content": "service ${{ parameters.name }}"}],
        },
    },
}

SKELETON = {
    "${{ values.name }}.yaml": "name: ${{ values.name | dump }}\nport: ${{ values.port }}\n"
    "tags: ${{ values.tags | dump }}\n",
    "README.md": "# ${{ values.name }}\n{%- if values.docs %}\nSee docs/.\n{%- endif %}\n",
    ".github/workflows/ci.yaml": "on: push\nenv:\n  REF: ${{ github.ref }}\n",
}


@pytest.fixture
def template_dir(tmp_path: Path) -> Path:
    root = tmp_path / "svc"
    (root / "skeleton").mkdir(parents=True)
    (root / "template.yaml").write_text(yaml.safe_dump(TEMPLATE, sort_keys=False))
    for rel, text in SKELETON.items():
        path = root / "skeleton" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def falsework(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FALSEWORK_DATA_DIR": str(cwd / ".fw"), "COLUMNS": "200"}
    env.pop("FALSEWORK_CONFIG", None)
    exe = Path(sys.executable).parent / "falsework"
    return subprocess.run(
        [str(exe), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_run_writes_the_workspace(template_dir: Path, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("name: api\ntags: [a, b]\n")
    out = tmp_path / "out"
    remote = tmp_path / "remote.git"
    proc = falsework(
        "run",
        str(template_dir),
        "--values",
        str(values),
        "--set",
        "docs=true",
        "--set",
        f"remote={remote}",
        "--secret",
        "TOKEN=tok-123456",
        "--output",
        str(out),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert yaml.safe_load((out / "api.yaml").read_text()) == {
        "name": "api",
        "port": 8080,
        "tags": ["a", "b"],
    }
    assert (out / "README.md").read_text() == "# api\nSee docs/.\n"
    assert (out / ".github/workflows/ci.yaml").read_text() == SKELETON[".github/workflows/ci.yaml"]
    assert "service api" in proc.stdout and f"{remote}#main" in proc.stdout
    assert "token is ***" in proc.stdout and "tok-123456" not in proc.stdout + proc.stderr
    log = subprocess.run(
        ["git", "-C", str(remote), "show", "main:api.yaml"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert 'name: "api"' in log.stdout


def test_missing_required_value_is_a_clear_error(template_dir: Path, tmp_path: Path) -> None:
    proc = falsework("run", str(template_dir), cwd=tmp_path)
    assert proc.returncode == 2
    assert "Invalid values" in proc.stderr and '"name"' in proc.stderr


def test_failed_step_exits_non_zero(template_dir: Path, tmp_path: Path) -> None:
    (template_dir / "skeleton").rename(template_dir / "elsewhere")
    proc = falsework("run", str(template_dir), "--set", "name=x", cwd=tmp_path)
    assert proc.returncode == 1
    assert "Failed:" in proc.stderr and "skeleton" in proc.stderr


def test_dry_run_lists_files_and_fakes_publish(template_dir: Path, tmp_path: Path) -> None:
    proc = falsework(
        "run",
        str(template_dir),
        "--set",
        "name=dry",
        "--set",
        "remote=/nowhere.git",
        "--dry-run",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "dry.yaml" in proc.stdout
    assert "does not support dry-run" in proc.stdout
    assert not Path("/nowhere.git").exists()


def test_unknown_template_ref(tmp_path: Path) -> None:
    proc = falsework("run", "template:default/nope", cwd=tmp_path)
    assert proc.returncode == 2 and "not found" in proc.stderr


def test_actions_ls(tmp_path: Path) -> None:
    table = falsework("actions", "ls", cwd=tmp_path)
    assert table.returncode == 0
    assert "fetch:template" in table.stdout and "http:request" in table.stdout
    listed = falsework("actions", "ls", "--json", cwd=tmp_path)
    ids = {a["id"] for a in json.loads(listed.stdout)}
    assert {"publish:git", "debug:log"} <= ids


def test_prompts_for_missing_required_values_on_a_terminal(
    template_dir: Path, tmp_path: Path
) -> None:
    import pexpect

    env = {**os.environ, "FALSEWORK_DATA_DIR": str(tmp_path / ".fw"), "TERM": "dumb"}
    exe = Path(sys.executable).parent / "falsework"
    out = tmp_path / "out"
    child = pexpect.spawn(
        str(exe),
        ["run", str(template_dir), "--output", str(out), "--defaults"],
        cwd=str(tmp_path),
        env=env,
        encoding="utf-8",
        timeout=30,
    )
    # --defaults: only the required value without a default is asked
    child.expect_exact("name: ")
    child.sendline("typed")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert (out / "typed.yaml").exists()
