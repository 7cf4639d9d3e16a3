"""A template that lives in a real git repository with tags v1, v2 and v3, and
helpers to run git and the falsework command as subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

FALSEWORK = str(Path(sys.executable).parent / "falsework")

APP = "".join(f"line {i}\n" for i in range(1, 21))


def template(extra_required: bool = False) -> dict[str, object]:
    properties: dict[str, object] = {
        "name": {"type": "string"},
        "remote": {"type": "string"},
        "owner": {"type": "string", "default": "team-a"},
    }
    required = ["name", "remote"]
    if extra_required:
        properties["tier"] = {"type": "string"}
        required.append("tier")
    return {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {"name": "service", "title": "Service"},
        "spec": {
            "owner": "group:default/platform",
            "type": "service",
            "parameters": [{"required": required, "properties": properties}],
            "steps": [
                {
                    "id": "fetch",
                    "action": "fetch:template",
                    "input": {
                        "url": "./skeleton",
                        "values": {
                            "name": "${{ parameters.name }}",
                            "owner": "${{ parameters.owner }}",
                        },
                    },
                },
                {
                    "id": "publish",
                    "action": "publish:git",
                    "input": {"remoteUrl": "${{ parameters.remote }}", "scaffold": True},
                },
            ],
        },
    }


# Each version's skeleton: path -> text (a tuple: (text, executable)).
V1: dict[str, str | tuple[str, bool]] = {
    "README.md": "# ${{ values.name }}\n\nOwned by ${{ values.owner }}.\n",
    "app.py": APP,
    "ci.yml": "steps:\n  - run: make test\n",
    "docs/guide.md": "A guide.\n",
    "run.sh": "#!/bin/sh\nexec python app.py\n",
}
V2 = {
    **V1,
    "app.py": APP.replace("line 18\n", "line 18 from v2\n"),
    "ci.yml": "steps:\n  - run: make lint\n  - run: make test\n",
    "Dockerfile": "FROM python:3.12\n",
    "run.sh": ("#!/bin/sh\nexec python app.py\n", True),
}
V3 = {
    **V2,
    "README.md": "# ${{ values.name }} service\n\nOwned by ${{ values.owner }}.\n",
}


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    env |= {"GIT_AUTHOR_NAME": "Team", "GIT_AUTHOR_EMAIL": "team@example.com"}
    env |= {"GIT_COMMITTER_NAME": "Team", "GIT_COMMITTER_EMAIL": "team@example.com"}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


def falsework(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FALSEWORK_DATA_DIR": str(cwd / ".fw"), "COLUMNS": "200"}
    env |= {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    env.pop("FALSEWORK_CONFIG", None)
    return subprocess.run(
        [FALSEWORK, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


Files = Mapping[str, str | bytes | tuple[str | bytes, bool]]  # path -> data, or (data, exec)


def write_files(folder: Path, files: Files) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for path, value in files.items():
        data, executable = value if isinstance(value, tuple) else (value, False)
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode() if isinstance(data, str) else data)
        target.chmod(0o755 if executable else 0o644)


def write_skeleton(folder: Path, files: Files) -> None:
    if (folder / "skeleton").exists():
        git("rm", "-rq", "skeleton", cwd=folder)
    write_files(folder / "skeleton", files)


@dataclass
class TemplateRepo:
    root: Path  # the template's git repository
    folder: Path  # the template's folder in it

    def release(self, tag: str, files: Files, *, extra: bool = False) -> None:
        write_skeleton(self.folder, files)
        (self.folder / "template.yaml").write_text(yaml.safe_dump(template(extra)))
        git("add", "-A", cwd=self.root)
        git("commit", "-qm", f"release {tag}", "--date=@1700000000 +0000", cwd=self.root)
        git("tag", tag, cwd=self.root)

    def checkout(self, tag: str) -> None:
        git("checkout", "-q", tag, cwd=self.root)


@pytest.fixture
def template_repo(tmp_path: Path) -> TemplateRepo:
    """Tags v1, v2 and v3 of the service template; v1 checked out."""
    return build_template_repo(tmp_path / "templates")


def build_template_repo(root: Path) -> TemplateRepo:
    root.mkdir()
    git("init", "-q", "-b", "main", cwd=root)
    repo = TemplateRepo(root, root / "service")
    repo.folder.mkdir()
    repo.release("v1", V1)
    repo.release("v2", V2)
    repo.release("v3", V3)
    repo.checkout("v1")
    return repo
