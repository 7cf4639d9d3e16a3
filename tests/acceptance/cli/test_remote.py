"""`falsework run` of a template in a git repository (``gh:org/repo/path@ref``, any git
URL), cloned through the hardened git helper: real repositories on this machine."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from falsework.cli.remote import Source, parse

FALSEWORK = str(Path(sys.executable).with_name("falsework"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "gh:acme/templates/service@v2",
            Source("https://github.com/acme/templates.git", "v2", "service"),
        ),
        ("gh:acme/templates", Source("https://github.com/acme/templates.git")),
        ("gl:grp/repo.git/a/b", Source("https://gitlab.com/grp/repo.git", None, "a/b")),
        ("bb:team/repo@main", Source("https://bitbucket.org/team/repo.git", "main")),
        ("git@github.com:acme/t.git", Source("git@github.com:acme/t.git")),
        ("git@github.com:acme/t.git@v1", Source("git@github.com:acme/t.git", "v1")),
        (
            "https://git.example.com/acme/t.git/svc@release/1",
            Source("https://git.example.com/acme/t.git", "release/1", "svc"),
        ),
        ("https://me@h.example/o/r@v1", Source("https://me@h.example/o/r", "v1")),
        ("gh:acme/t/svc@feature/x", Source("https://github.com/acme/t.git", "feature/x", "svc")),
        ("git+https://h/o/r.git?path=x/y#dev", Source("https://h/o/r.git", "dev", "x/y")),
        (
            "https://github.com/acme/t/tree/feature/x/svc",
            Source("https://github.com/acme/t.git", None, "", ("feature", "x", "svc")),
        ),
        ("ssh://git@h:2222/o/r.git", Source("ssh://git@h:2222/o/r.git")),
        ("/srv/t.git/svc@v1", Source("/srv/t.git", "v1", "svc")),
        ("/srv/.github/x", None),
        ("hello-world", None),
        ("template:default/hello-world", None),
        ("ext::sh -c touch% /tmp/x", None),
    ],
)
def test_parse(text: str, expected: Source | None) -> None:
    assert parse(text) == expected


def test_parse_refuses_a_short_form_without_a_repository() -> None:
    from falsework.errors import FalseworkError

    with pytest.raises(FalseworkError, match="gh:OWNER/REPO"):
        parse("gh:acme")


def git(*args: str, cwd: Path) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def template(greeting: str) -> str:
    doc = {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {"name": "remote"},
        "spec": {
            "type": "service",
            "parameters": [{"properties": {"name": {"type": "string", "default": "x"}}}],
            "steps": [
                {
                    "id": "fetch",
                    "action": "fetch:template",
                    "input": {"url": "./skeleton", "values": {"name": "${{ parameters.name }}"}},
                }
            ],
        },
    }
    return yaml.safe_dump(doc) + f"# {greeting}\n"


@pytest.fixture
def repository(tmp_path: Path) -> tuple[Path, str]:
    """A bare repository tpl.git: templates/svc at tag v1 says "old", main says "new";
    the commit id of v1."""
    work = tmp_path / "work"
    folder = work / "templates" / "svc"
    (folder / "skeleton").mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=work)
    for word in ("old", "new"):
        (folder / "template.yaml").write_text(template(word))
        (folder / "skeleton" / "hello.txt").write_text(f"{word} ${{{{ values.name }}}}\n")
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", word, cwd=work)
        if word == "old":
            git("tag", "v1", cwd=work)
            first = git("rev-parse", "HEAD", cwd=work)
    bare = tmp_path / "tpl.git"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=tmp_path)
    return bare, first


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FALSEWORK_DATA_DIR": str(cwd / ".fw"), "TMPDIR": str(cwd / "tmp")}
    (cwd / "tmp").mkdir(exist_ok=True)
    env.pop("FALSEWORK_CONFIG", None)
    return subprocess.run(
        [FALSEWORK, "run", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("suffix", "word"),
    [("/templates/svc@v1", "old"), ("/templates/svc", "new"), ("?path=templates/svc#v1", "old")],
)
def test_run_a_template_from_a_git_url(
    repository: tuple[Path, str], tmp_path: Path, suffix: str, word: str
) -> None:
    bare, _ = repository
    out = tmp_path / "out"
    proc = run(f"file://{bare}{suffix}", "--set", "name=you", "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert (out / "hello.txt").read_text() == f"{word} you\n"
    assert "Cloning" in proc.stderr
    # the clone was a temporary folder, gone with the run
    assert list((tmp_path / "tmp").iterdir()) == []


def test_run_at_a_commit(repository: tuple[Path, str], tmp_path: Path) -> None:
    bare, first = repository
    out = tmp_path / "out"
    proc = run(f"{bare}/templates/svc@{first[:12]}", "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert (out / "hello.txt").read_text() == "old x\n"


def test_a_missing_folder_or_ref_is_one_clear_error(
    repository: tuple[Path, str], tmp_path: Path
) -> None:
    bare, _ = repository
    missing = run(f"file://{bare}/templates/nope", cwd=tmp_path)
    assert missing.returncode == 2
    assert "has no 'templates/nope'" in missing.stderr
    no_ref = run(f"file://{bare}/templates/svc@v9", cwd=tmp_path)
    assert no_ref.returncode == 2
    assert "Error:" in no_ref.stderr and "v9" in no_ref.stderr
    assert "Traceback" not in missing.stderr + no_ref.stderr


def test_a_remote_helper_never_reaches_git(tmp_path: Path) -> None:
    marker = Path(tempfile.gettempdir()) / f"falsework-ext-{os.getpid()}"
    proc = run(f"ext::sh -c touch% {marker}", cwd=tmp_path)
    assert proc.returncode == 2
    assert not marker.exists()
