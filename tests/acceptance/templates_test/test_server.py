"""`falsework templates test --server`: the same cases through a real `falsework
serve`'s dry-run API (SQLite and Postgres) give byte-identical snapshots to a
local run; a working copy needs the templates:author role, --by-ref only the
right to run the server's copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from falsework.config import EXAMPLES_DIR
from support.servers import (
    ServerFactory,
    auth_config,
    module_database,
    pg_database,
    servers,
    token_of,
)
from support.template_runs import run_cli

__all__ = ["module_database", "pg_database", "servers"]

RICH = {
    "apiVersion": "scaffolder.backstage.io/v1beta3",
    "kind": "Template",
    "metadata": {"name": "rich"},
    "spec": {
        "owner": "group:default/x",
        "type": "service",
        "parameters": [
            {"title": "Service", "required": ["name"], "properties": {"name": {"type": "string"}}}
        ],
        "steps": [
            {
                "id": "fetch",
                "action": "fetch:template",
                "input": {"url": "./skeleton", "values": {"name": "${{ parameters.name }}"}},
            },
            {
                "id": "ticket",
                "action": "http:request",
                "input": {
                    "method": "POST",
                    "url": "https://tickets.example.com/api/issues",
                    "body": {"title": "New service ${{ parameters.name }}"},
                },
            },
            {
                "id": "publish",
                "action": "publish:github",
                "input": {
                    "repoUrl": "github.com?owner=acme&repo=${{ parameters.name }}",
                    "token": "${{ secrets.GH_TOKEN }}",
                },
            },
            {
                "id": "register",
                "action": "catalog:register",
                "input": {"repoContentsUrl": "${{ steps.publish.output.repoContentsUrl }}"},
            },
            {
                "id": "never",
                "if": "${{ parameters.name == 'nobody' }}",
                "action": "debug:log",
                "input": {"message": "skipped by its if"},
            },
        ],
        "output": {
            "links": [
                {"title": "Repository", "url": "${{ steps.publish.output.remoteUrl }}"},
                {"title": "Entity", "entityRef": "${{ steps.register.output.entityRef }}"},
            ],
            "text": [
                {
                    "title": "Run",
                    "content": "task ${{ context.task.id }} by ${{ user.ref }} "
                    "(${{ user.entity.spec.profile.displayName }}), "
                    "ticket ${{ steps.ticket.output.body.key }}",
                }
            ],
        },
    },
}


def rich_template(root: Path) -> None:
    folder = root / "rich"
    (folder / "skeleton").mkdir(parents=True)
    (folder / "template.yaml").write_text(yaml.safe_dump(RICH, sort_keys=False))
    (folder / "skeleton" / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n"
        "  name: ${{ values.name }}\n"
    )
    (folder / "skeleton" / "run.sh").write_text("#!/bin/sh\necho ${{ values.name }}\n")
    (folder / "skeleton" / "run.sh").chmod(0o755)
    case = folder / "tests" / "default"
    (case / "http").mkdir(parents=True)
    (case / "values.yaml").write_text("- name: payments\n")
    (case / "secrets.yaml").write_text("GH_TOKEN: ghp-not-real\n")
    (case / "http" / "ticket.yaml").write_text(
        yaml.safe_dump(
            {
                "request": {
                    "method": "POST",
                    "url": "https://tickets.example.com/api/issues",
                    "body": {"title": "New service payments"},
                },
                "response": {"status": 201, "body": {"key": "OPS-7"}},
            }
        )
    )


def suite(root: Path) -> Path:
    """The example templates and the rich one, without any snapshot."""
    shutil.copytree(EXAMPLES_DIR, root)
    rich_template(root)
    for snapshot in list(root.glob("*/tests/*/snapshot")):
        shutil.rmtree(snapshot)
    return root


def tree(root: Path) -> dict[str, tuple[bytes, bool]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), bool(p.stat().st_mode & 0o100))
        for p in sorted(root.rglob("*"))
        if p.is_file() and "/snapshot/" in str(p.relative_to(root))
    }


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return suite(tmp_path_factory.mktemp("catalog") / "templates")


@pytest.fixture(scope="module")
def url(module_database: str, servers: ServerFactory, catalog: Path) -> str:
    config = auth_config()
    config["auth"]["roles"] = {"templates:author": ["user:default/alice"]}
    server = servers(module_database, config=config, env={"FALSEWORK_TEMPLATES": str(catalog)})
    return server.url


def test_server_and_local_runs_give_byte_identical_snapshots(url: str, tmp_path: Path) -> None:
    local, remote = suite(tmp_path / "local"), suite(tmp_path / "remote")
    first = run_cli(local)
    assert first.code == 0, first.out
    assert "PASS   rich/default" in first.out
    through = run_cli(remote, "--server", url, "--token", token_of("alice"))
    assert through.code == 0, through.out
    assert tree(remote) == tree(local)
    assert len(tree(local)) > 20
    # and both are what a local run made when the examples' snapshots were taken
    committed = {k: v for k, v in tree(EXAMPLES_DIR).items()}
    assert {k: v for k, v in tree(local).items() if not k.startswith("rich/")} == committed
    # the same case again through the server: nothing differs
    again = run_cli(remote, "--server", url, "--token", token_of("alice"), "--ci")
    assert again.code == 0, again.out

    rich = local / "rich" / "tests" / "default" / "snapshot"
    assert sorted(p.name for p in rich.iterdir()) == [
        "_output.json",
        "_steps.json",
        "catalog-info.yaml",
        "run.sh",
    ]
    assert (rich / "run.sh").stat().st_mode & 0o100
    text = (rich / "_output.json").read_text()
    assert "by user:default/tester (Template Tester), ticket OPS-7" in text
    assert '"entityRef": "component:default/payments"' in text
    assert '"url": "https://github.com/acme/payments.git"' in text
    steps = (rich / "_steps.json").read_text()
    assert '"token": "***"' in steps and "ghp-not-real" not in steps
    assert '"id": "never",\n    "name": "debug:log",\n    "action": "debug:log",\n' in steps


def test_a_working_copy_needs_the_author_role_by_ref_does_not(url: str, catalog: Path) -> None:
    refused = run_cli(catalog, "--server", url, "--token", token_of("bob"), "-k", "hello-world")
    assert refused.code == 2
    assert "templates:author" in refused.out and "--by-ref" in refused.out
    # the server's own copy: run as bob, compared with the snapshots a local run wrote
    assert run_cli(catalog).code == 0
    by_ref = run_cli(catalog, "--server", url, "--token", token_of("bob"), "--by-ref", "--ci")
    assert by_ref.code == 0, by_ref.out
    assert "PASS   rich/default" in by_ref.out
