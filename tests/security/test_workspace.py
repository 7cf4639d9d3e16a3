"""Red team, workspace confinement (issue 8, finding 1): symbolic links must not
take a task outside its workspace.

A real `falsework serve` (SQLite and Postgres), attacked as alice, a plain user,
through templates of a temporary catalog that fetch a repository of her choice
(real bare git repositories with links, under the catalog folder, an allowed
root, fetched through file://), then list, move or write. A canary folder
outside every workspace must never be read (its text never appears in an event,
a task or a response) nor written; the server's HOME must never receive a
`.gitconfig` (the seen chain: write `~/.gitconfig` allowing `ext::`, then fetch
`git+ext::sh -c …`).

Each test failed before the confinement rule: the links were copied, written
through and read through.
"""

from __future__ import annotations

import base64
import json
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

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
    repos: dict[str, str]


def _catalog(root: Path, canary: Path) -> dict[str, str]:
    """The catalog folder: the templates, a skeleton holding a link outside, and
    the repositories (under the catalog: an allowed root)."""
    for name, doc in TEMPLATES.items():
        write_tree(root / name, {"template.yaml": yaml.safe_dump(doc, sort_keys=False)})
    write_tree(
        root / "skeleton-link",
        {
            "template.yaml": yaml.safe_dump(
                _template(
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
                ),
                sort_keys=False,
            ),
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
    repos = {}
    for name, (files, links) in specs.items():
        repos[name] = make_repo(
            root / "repos" / f"{name}.git", files, links, work=root.parent / "src" / name
        )
    return repos


@pytest.fixture(scope="module")
def target(
    module_database: str, servers: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> Target:
    base = tmp_path_factory.mktemp("workspace-redteam")
    secret = f"CANARY-{uuid.uuid4().hex}"
    canary = base / "canary"
    write_tree(canary, {"secret.txt": secret})
    home = base / "home"
    home.mkdir()
    repos = _catalog(base / "catalog", canary)
    server = servers(
        module_database,
        config=auth_config(),
        env={"FALSEWORK_TEMPLATES": str(base / "catalog"), "HOME": str(home)},
    )
    return Target(server, canary, secret, home, repos)


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


@pytest.mark.parametrize("kind", ["absolute", "relative", "chain"])
def test_a_repository_link_to_a_file_outside_is_never_read(target: Target, kind: str) -> None:
    link = {"absolute": "leak -> /", "relative": "leak -> ../../", "chain": "hop -> ../../"}
    for template in ("fetch-list", "fetch-render"):
        task, text = run(target, template, first=target.repos[kind])
        refused(target, task, text, link[kind])


def test_a_folder_link_is_never_written_through(target: Target) -> None:
    """The seen chain's first half: a link to the server's HOME, then a second
    repository writing `.gitconfig` into it."""
    task, text = run(
        target, "fetch-list", first=target.repos["folder"], second=target.repos["gitconfig"]
    )
    assert os.listdir(target.home) == [], "a .gitconfig was written into the server's HOME"
    refused(target, task, text, f"home -> {target.home}")
    task, text = run(
        target, "fetch-list", first=target.repos["canary-folder"], second=target.repos["planted"]
    )
    refused(target, task, text, f"out -> {target.canary}")


def test_a_link_moved_out_by_fs_rename_is_refused(target: Target) -> None:
    deep = "/".join(["d"] * DEPTH) + "/l"
    task, text = run(target, "fetch-list", first=target.repos["deep"], move=deep)
    refused(target, task, text, "moved -> ../../")


def test_a_catalog_skeleton_link_outside_is_refused(target: Target) -> None:
    task, text = run(target, "skeleton-link")
    refused(target, task, text, f"skeleton/foo -> {target.canary / 'secret.txt'}")


def test_links_inside_a_repository_are_kept_and_listed_not_read(target: Target) -> None:
    task, text = run(target, "fetch-list", first=target.repos["inside"])
    assert task["status"] == "completed", text
    for shown in ("readme-link -> README.md", "guide -> docs", "docs/up -> ../README.md"):
        assert f"{shown} (a symbolic link)" in text


def test_a_dry_run_never_returns_content_from_outside(target: Target) -> None:
    """A template author's dry run (admin) fetching a repository with a link out:
    neither its log nor its directoryContents carry the canary."""
    admin = target.server.client("admin")
    body = {
        "template": TEMPLATES["fetch-list"],
        "values": {"first": target.repos["absolute"]},
        "directoryContents": [
            {"path": "skeleton/a.txt", "base64Content": base64.b64encode(b"a").decode()}
        ],
    }
    response = admin.post(f"{API}/v2/dry-run", json=body)
    assert response.status_code == 200, response.text
    assert target.secret not in response.text, "the canary was read"
    assert "a symbolic link may not point outside" in response.text
    assert response.json()["directoryContents"] == []
    assert intact(target)
