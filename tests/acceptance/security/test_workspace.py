"""Red team, workspace confinement (issue 8, finding 1): symbolic links must not
take a task outside its workspace.

A real `falsework serve` (SQLite and Postgres), attacked as alice, a plain user,
through templates that fetch a repository of her choice: real bare git
repositories holding links, fetched through file:// from the template's own
folder and over loopback HTTP from `git http-backend` (egress allowed for
127.0.0.1 in the server's config), then listed, moved or written. A canary
folder outside every workspace must never be read (its text never appears in
an event, a task or a response) nor written; the server's HOME must never
receive a `.gitconfig` (the seen chain: write `~/.gitconfig` allowing `ext::`,
then fetch `git+ext::sh -c …`).

Each test failed before the confinement rule: the links were copied, written
through and read through.
"""

from __future__ import annotations

import base64
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.githttp import GitHost, serve_git
from support.gitrepos import make_repo, write_tree
from support.servers import Server, ServerFactory, auth_config, wait_for_status

API = "/api/scaffolder"
pytestmark = pytest.mark.slow

DEPTH = 40  # folders: deeper than any path to / on this machine


def _template(name: str, steps: list[dict[str, Any]], **properties: Any) -> dict[str, Any]:
    return {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {"name": name, "title": name, "description": "red team"},
        "spec": {
            "owner": "group:default/team-a",
            "type": "service",
            "parameters": [{"title": "Input", "properties": properties}],
            "steps": steps,
        },
    }


LIST = {
    "id": "list",
    "name": "List",
    "action": "debug:log",
    "input": {"listWorkspace": "with-contents"},
}
URL = {"type": "string", "default": ""}

TEMPLATES = {
    # fetch one repository, maybe a second one, maybe move a file, then list
    # the workspace with the contents of its files
    "fetch-list": _template(
        "fetch-list",
        [
            {
                "id": "first",
                "name": "First",
                "action": "fetch:plain",
                "input": {"url": "${{ parameters.first }}"},
            },
            {
                "id": "second",
                "name": "Second",
                "if": "${{ parameters.second }}",
                "action": "fetch:plain",
                "input": {"url": "${{ parameters.second }}"},
            },
            {
                "id": "move",
                "name": "Move",
                "if": "${{ parameters.move }}",
                "action": "fs:rename",
                "input": {"files": [{"from": "${{ parameters.move }}", "to": "moved"}]},
            },
            LIST,
        ],
        first=URL,
        second=URL,
        move=URL,
    ),
    "fetch-render": _template(
        "fetch-render",
        [
            {
                "id": "render",
                "name": "Render",
                "action": "fetch:template",
                "input": {"url": "${{ parameters.first }}", "values": {"name": "x"}},
            },
            LIST,
        ],
        first=URL,
    ),
}


@dataclass
class Target:
    server: Server
    canary: Path
    secret: str
    home: Path
    repos: dict[str, str]  # name → file:// URL (in the template folder)
    git: GitHost  # the same repositories over loopback HTTP

    def repo(self, name: str, transport: str) -> str:
        return self.repos[name] if transport == "file" else f"{self.git.url}/{name}.git"


def _catalog(folder: Path, canary: Path) -> dict[str, str]:
    """One template folder (a task reads local sources only from its own): the
    templates, a skeleton holding a link outside, and the repositories."""
    for name, doc in TEMPLATES.items():
        write_tree(folder, {f"{name}.yaml": yaml.safe_dump(doc, sort_keys=False)})
    skeleton_link = _template(
        "skeleton-link",
        [
            {
                "id": "render",
                "name": "Render",
                "action": "fetch:template",
                "input": {"url": "./skeleton", "values": {"name": "x"}},
            },
            LIST,
        ],
    )
    write_tree(
        folder,
        {
            "skeleton-link.yaml": yaml.safe_dump(skeleton_link, sort_keys=False),
            "skeleton/README.md": "# ${{ values.name }}\n",
        },
        {"skeleton/foo": str(canary / "secret.txt")},
    )
    climb = "../" * DEPTH
    deep = "/".join(["d"] * DEPTH)
    specs: dict[str, tuple[dict[str, str], dict[str, str]]] = {
        "absolute": ({"README.md": "r"}, {"leak": str(canary / "secret.txt")}),
        "relative": ({"README.md": "r"}, {"leak": climb + str(canary / "secret.txt")[1:]}),
        "chain": ({"README.md": "r"}, {"leak": "hop/secret.txt", "hop": climb + str(canary)[1:]}),
        "folder": ({"README.md": "r"}, {"home": str(canary.parent / "home")}),
        "gitconfig": ({"home/.gitconfig": '[protocol "ext"]\n\tallow = always\n'}, {}),
        "planted": ({"out/planted.txt": "p"}, {}),
        "canary-folder": ({"README.md": "r"}, {"out": str(canary)}),
        # inside where it is (it climbs exactly to the top), outside once moved up
        "deep": ({"README.md": "r"}, {f"{deep}/l": climb + str(canary / "secret.txt")[1:]}),
        "inside": (
            {"README.md": "readme", "docs/index.md": "d"},
            {"readme-link": "README.md", "guide": "docs", "docs/up": "../README.md"},
        ),
    }
    return {
        name: make_repo(
            folder / "repos" / f"{name}.git", files, links, work=folder.parent.parent / "src" / name
        )
        for name, (files, links) in specs.items()
    }


@pytest.fixture(scope="module")
def target(
    module_database: str, servers: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    base = tmp_path_factory.mktemp("workspace-redteam")
    secret = f"CANARY-{uuid.uuid4().hex}"
    canary = base / "canary"
    write_tree(canary, {"secret.txt": secret})
    home = base / "home"
    home.mkdir()
    folder = base / "catalog" / "redteam"
    repos = _catalog(folder, canary)
    git = serve_git(folder / "repos")
    config = {**auth_config(), "egress": {"allow": ["127.0.0.1"]}, "git_allow_http": True}
    env = {"FALSEWORK_TEMPLATES": str(base / "catalog"), "HOME": str(home)}
    try:
        yield Target(
            servers(module_database, config=config, env=env), canary, secret, home, repos, git
        )
    finally:
        git.close()


def run(target: Target, template: str, **values: str) -> tuple[dict[str, Any], str]:
    """Create a task as alice, wait for its end; (task, every event as text)."""
    alice = target.server.client("alice")
    response = alice.post(
        f"{API}/v2/tasks", json={"templateRef": f"template:default/{template}", "values": values}
    )
    assert response.status_code == 201, response.text
    task_id = response.json()["id"]
    task = wait_for_status(alice, task_id, ("completed", "failed", "cancelled"))
    events = alice.get(f"{API}/v2/tasks/{task_id}/events").json()
    return task, json.dumps(events) + json.dumps(task)


def intact(target: Target) -> bool:
    return os.listdir(target.canary) == ["secret.txt"] and (
        (target.canary / "secret.txt").read_text() == target.secret
    )


def refused(target: Target, task: dict[str, Any], text: str, link: str) -> None:
    assert target.secret not in text, "the canary was read"
    assert intact(target), "the canary folder was written"
    assert task["status"] == "failed", text
    # the message names the link (and its target) that was refused
    pattern = re.escape(link) + r'[^"]*: a symbolic link may not point outside'
    assert re.search(pattern, text), text


TRANSPORTS = pytest.mark.parametrize("transport", ["file", "http"])


@TRANSPORTS
@pytest.mark.parametrize("kind", ["absolute", "relative", "chain"])
def test_a_repository_link_to_a_file_outside_is_never_read(
    target: Target, kind: str, transport: str
) -> None:
    link = {"absolute": "leak -> /", "relative": "leak -> ../../", "chain": "hop -> ../../"}
    for template in ("fetch-list", "fetch-render"):
        task, text = run(target, template, first=target.repo(kind, transport))
        refused(target, task, text, link[kind])


@TRANSPORTS
def test_a_folder_link_is_never_written_through(target: Target, transport: str) -> None:
    """The seen chain's first half: a link to the server's HOME, then a second
    repository writing `.gitconfig` into it."""
    task, text = run(
        target,
        "fetch-list",
        first=target.repo("folder", transport),
        second=target.repo("gitconfig", transport),
    )
    assert os.listdir(target.home) == [], "a .gitconfig was written into the server's HOME"
    refused(target, task, text, f"home -> {target.home}")
    task, text = run(
        target,
        "fetch-list",
        first=target.repo("canary-folder", transport),
        second=target.repo("planted", transport),
    )
    refused(target, task, text, f"out -> {target.canary}")


@TRANSPORTS
def test_a_link_moved_out_by_fs_rename_is_refused(target: Target, transport: str) -> None:
    deep = "/".join(["d"] * DEPTH) + "/l"
    task, text = run(target, "fetch-list", first=target.repo("deep", transport), move=deep)
    refused(target, task, text, "moved -> ../../")


def test_a_catalog_skeleton_link_outside_is_refused(target: Target) -> None:
    task, text = run(target, "skeleton-link")
    refused(target, task, text, f"skeleton/foo -> {target.canary / 'secret.txt'}")


@TRANSPORTS
def test_links_inside_a_repository_are_kept_and_listed_not_read(
    target: Target, transport: str
) -> None:
    task, text = run(target, "fetch-list", first=target.repo("inside", transport))
    assert task["status"] == "completed", text
    for shown in ("readme-link -> README.md", "guide -> docs", "docs/up -> ../README.md"):
        assert f"{shown} (a symbolic link)" in text


def test_a_dry_run_never_returns_content_from_outside(target: Target) -> None:
    """A template author's dry run (admin) fetching a repository with a link out
    (over HTTP: a dry run's template folder is its upload): neither its log nor
    its directoryContents carry the canary."""
    admin = target.server.client("admin")
    body = {
        "template": TEMPLATES["fetch-list"],
        "values": {"first": target.repo("absolute", "http")},
        "directoryContents": [
            {"path": "skeleton/a.txt", "base64Content": base64.b64encode(b"a").decode()}
        ],
    }
    response = admin.post(f"{API}/v2/dry-run", json=body)
    assert response.status_code == 400, response.text  # the step failed: UnsafePathError
    assert response.json()["error"]["name"] == "UnsafePathError"
    assert target.secret not in response.text, "the canary was read"
    assert "a symbolic link may not point outside" in response.text
    assert response.json()["directoryContents"] == []
    assert intact(target)


def test_a_dry_run_upload_leaving_its_folder_is_refused_with_400(target: Target) -> None:
    """Uploaded files stay in the dry run's template folder: `..`, absolute paths and
    names the file system refuses are the request's fault (400), naming the path."""
    admin = target.server.client("admin")
    cases = {
        "../escape.txt": "UnsafePathError",
        "/etc/escape.txt": "UnsafePathError",
        "a/../../escape.txt": "UnsafePathError",
        "n" * 300: "InputError",
    }
    for path, name in cases.items():
        body = {
            "template": TEMPLATES["fetch-list"],
            "values": {},
            "directoryContents": [{"path": path, "base64Content": ""}],
        }
        response = admin.post(f"{API}/v2/dry-run", json=body)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["name"] == name and path[:40] in error["message"], error
