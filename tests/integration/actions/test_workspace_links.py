"""Symbolic links and the workspace, action by action: real git repositories with
links fetched through file:// under an allowed root, local folders, skeletons,
links planted in a workspace. A canary folder outside must never be read
(its text never appears in a log or an output) nor written.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from support.gitrepos import make_repo, write_tree

CANARY = "CANARY-7f3c0a"


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    folder = tmp_path / "canary"
    folder.mkdir()
    (folder / "secret.txt").write_text(CANARY)
    return folder


def untouched(canary: Path) -> bool:
    return sorted(os.listdir(canary)) == ["secret.txt"] and (
        (canary / "secret.txt").read_text() == CANARY
    )


def leaked(result: Any) -> bool:
    return CANARY in json.dumps(result.io.events) + json.dumps(result.steps)


def climbing(canary: Path, name: str = "secret.txt") -> str:
    """A relative link target that climbs to / from any folder, then down to the canary."""
    return "../" * 40 + str(canary / name).lstrip("/")


def escaping_links(canary: Path) -> dict[str, dict[str, str]]:
    return {
        "absolute": {"leak": str(canary / "secret.txt")},
        "relative": {"leak": climbing(canary)},
        "folder": {"leak": str(canary)},
        "chain": {"leak": "hop", "hop": str(canary)},
        "chain-relative": {"leak": "sub/hop/secret.txt", "sub/hop": climbing(canary, "")},
    }


KINDS = ["absolute", "relative", "folder", "chain", "chain-relative"]


def allowed(tmp_path: Path) -> Path:
    return tmp_path / "allowed"  # the harness runner's allowed root


@pytest.mark.parametrize("action", ["fetch:plain", "fetch:template"])
@pytest.mark.parametrize("kind", KINDS)
async def test_a_repository_link_pointing_outside_is_refused(
    harness: Any, tmp_path: Path, canary: Path, one_step: Any, action: str, kind: str
) -> None:
    links = escaping_links(canary)[kind]
    url = make_repo(
        allowed(tmp_path) / f"{kind}.git",
        {"README.md": "hi", "sub/keep.txt": "k"},
        links,
        work=tmp_path / "src" / kind,
    )
    result = await harness.run(
        [one_step(action, url=url), {**one_step("debug:log", listWorkspace="with-contents")}]
    )
    assert result.error is not None and result.error.name == "UnsafePathError"
    assert any(
        f"{name} -> {target}: a symbolic link may not point outside the fetched folder"
        in result.error.message
        for name, target in links.items()
    ), result.error.message
    assert os.listdir(harness.workspace) == []  # refused before anything is written
    assert not leaked(result) and untouched(canary)


@pytest.mark.parametrize("action", ["fetch:plain", "fetch:template"])
async def test_links_inside_a_repository_are_kept(
    harness: Any, tmp_path: Path, one_step: Any, action: str
) -> None:
    links = {"readme": "README.md", "guide": "docs", "docs/up": "../README.md"}
    url = make_repo(
        allowed(tmp_path) / "inside.git",
        {"README.md": "hi", "docs/index.md": "d"},
        links,
        work=tmp_path / "src" / "inside",
    )
    result = await harness.run([one_step(action, url=url, targetPath="out")])
    assert result.error is None, result.error
    out = harness.workspace / "out"
    assert {name: os.readlink(out / name) for name in links} == links
    assert (out / "guide/index.md").read_text() == "d"


@pytest.mark.parametrize("action", ["fetch:plain", "fetch:template"])
async def test_local_folders_and_skeletons_with_a_link_outside_are_refused(
    harness: Any, tmp_path: Path, canary: Path, one_step: Any, action: str
) -> None:
    write_tree(allowed(tmp_path) / "folder", {"a.txt": "a"}, {"etc": str(canary)})
    write_tree(harness.template_dir / "skeleton", {"a.txt": "a"}, {"foo": str(canary)})
    write_tree(harness.template_dir / "up", {"a.txt": "a"}, {"t": "../template.yaml"})
    cases = [
        (str(allowed(tmp_path) / "folder"), f"etc -> {canary}"),
        ("./skeleton", f"skeleton/foo -> {canary}: a symbolic link may not point outside"),
        # inside the template folder, but not inside what is fetched: it would
        # point outside the workspace once copied
        ("./up", "up/t -> ../template.yaml: a symbolic link may not point outside"),
    ]
    for url, message in cases:
        result = await harness.run([one_step(action, url=url)])
        assert result.error is not None and result.error.name == "UnsafePathError", url
        assert message in result.error.message
    assert os.listdir(harness.workspace) == [] and untouched(canary)


@pytest.mark.parametrize(
    "step",
    [
        {"action": "fetch:plain", "input": {"url": "./files"}},
        {"action": "fetch:template", "input": {"url": "./files"}},
        {"action": "fetch:plain:file", "input": {"url": "./files/a.txt", "targetPath": "out/a"}},
        {
            "action": "fetch:template:file",
            "input": {"url": "./files/a.txt", "targetPath": "out/a"},
        },
        {"action": "catalog:write", "input": {"filePath": "out/c.yaml", "entity": {"a": 1}}},
        {"action": "fs:rename", "input": {"files": [{"from": "mine.txt", "to": "out/m"}]}},
        {"action": "fs:readdir", "input": {"paths": ["out"]}},
        {"action": "fs:delete", "input": {"files": ["out/secret.txt"]}},
    ],
    ids=lambda s: s["action"],
)
async def test_no_action_writes_or_reads_through_a_planted_folder_link(
    harness: Any, canary: Path, step: dict[str, Any]
) -> None:
    """A link to a folder outside, already in the workspace (planted by a custom
    action, a checkout, another process): every action refuses to go through it."""
    write_tree(harness.template_dir / "files", {"a.txt": "a", "out/planted.txt": "p"})
    (harness.workspace / "mine.txt").write_text("m")
    (harness.workspace / "out").symlink_to(canary)
    result = await harness.run([{"id": "s", "name": "s", **step}])
    assert result.error is not None and result.error.name == "UnsafePathError", result.logs()
    assert "outside the workspace" in result.error.message
    assert untouched(canary) and not leaked(result)


async def test_writing_onto_a_link_replaces_the_link(
    harness: Any, canary: Path, one_step: Any
) -> None:
    write_tree(harness.template_dir / "files", {"a.txt": "a"})
    for action, extra in (
        ("fetch:plain:file", {"url": "./files/a.txt"}),
        ("fetch:template:file", {"url": "./files/a.txt", "replace": True}),
        ("catalog:write", {"entity": {"a": 1}}),
    ):
        (harness.workspace / "leak").symlink_to(canary / "secret.txt")
        result = (
            await harness.run([one_step(action, targetPath="leak", **extra)])
            if (action != "catalog:write")
            else await harness.run([one_step(action, filePath="leak", **extra)])
        )
        assert result.error is None, result.error
        assert not (harness.workspace / "leak").is_symlink()
        (harness.workspace / "leak").unlink()
    assert untouched(canary)


async def test_debug_log_never_reads_through_a_link(
    harness: Any, canary: Path, one_step: Any
) -> None:
    (harness.workspace / "README.md").write_text("readme")
    (harness.workspace / "inside").symlink_to("README.md")
    listed = await harness.run([one_step("debug:log", listWorkspace="with-contents")])
    assert listed.error is None
    assert " - inside -> README.md (a symbolic link)" in listed.logs()[-2]
    assert listed.logs()[-2].count("readme") == 1  # the file, not again through the link
    (harness.workspace / "leak").symlink_to(canary / "secret.txt")
    for mode in ("with-contents", True):
        result = await harness.run([one_step("debug:log", listWorkspace=mode)])
        assert result.error is not None and result.error.name == "UnsafePathError"
        assert f"leak -> {canary / 'secret.txt'}: a symbolic link may not point outside" in (
            result.error.message
        )
        assert not leaked(result)


async def test_fs_rename_cannot_carry_a_link_outside(
    harness: Any, canary: Path, one_step: Any
) -> None:
    """``deep/…/l -> ../…/<canary>`` stays inside where it is (it climbs exactly to
    the workspace); moved to the top it would climb out."""
    depth = 40
    folder = harness.workspace.joinpath(*["d"] * depth)
    folder.mkdir(parents=True)
    (folder / "l").symlink_to("../" * depth + str(canary / "secret.txt").lstrip("/"))
    result = await harness.run(
        [
            one_step("fs:rename", files=[{"from": "/".join(["d"] * depth + ["l"]), "to": "l"}]),
            {**one_step("debug:log", listWorkspace="with-contents"), "id": "list"},
        ]
    )
    assert result.error is not None and result.error.name == "UnsafePathError"
    assert "a symbolic link may not point outside the workspace" in result.error.message
    assert (folder / "l").is_symlink() and not (harness.workspace / "l").exists()
    assert not leaked(result)


async def test_fs_delete_removes_links_never_their_targets(
    harness: Any, canary: Path, one_step: Any
) -> None:
    (harness.workspace / "out").symlink_to(canary)
    (harness.workspace / "x.txt").symlink_to(canary / "secret.txt")
    (harness.workspace / "a.txt").write_text("a")
    result = await harness.run([one_step("fs:delete", files=["**/*.txt", "out"])])
    assert result.error is None, result.error
    assert os.listdir(harness.workspace) == [] and untouched(canary)


async def test_fs_readdir_lists_links_without_following_them(
    harness: Any, canary: Path, one_step: Any
) -> None:
    (harness.workspace / "sub/real").mkdir(parents=True)
    (harness.workspace / "sub/real/x").write_text("x")
    (harness.workspace / "sub/in").symlink_to("real")
    result = await harness.run([one_step("fs:readdir", paths=["."], recursive=True)])
    assert result.error is None, result.error
    output = result.steps["s"]["output"]
    assert [f["path"] for f in output["files"]] == ["sub/in", "sub/real/x"]
    assert [f["path"] for f in output["folders"]] == ["sub", "sub/real"]
    (harness.workspace / "sub/out").symlink_to(canary)
    refused = await harness.run([one_step("fs:readdir", paths=["sub"])])
    assert refused.error is not None and refused.error.name == "UnsafePathError"
    assert f"sub/out -> {canary}: a symbolic link may not point outside" in refused.error.message


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


async def test_publish_refuses_a_link_pointing_outside_the_published_folder(
    harness: Any, tmp_path: Path, one_step: Any
) -> None:
    ws = harness.workspace
    write_tree(ws / "service", {"a.txt": "a"}, {"inside": "a.txt"})
    (ws / "secret.txt").write_text("s")
    for name, target in (("passwd", "/etc/passwd"), ("up", "../secret.txt")):
        (ws / "service" / name).symlink_to(target)
        result = await harness.run(
            [one_step("publish:git", remoteUrl="svc.git", sourcePath="service")]
        )
        assert result.error is not None and result.error.name == "UnsafePathError"
        assert f"service/{name} -> {target}: a symbolic link may not point outside" in (
            result.error.message
        )
        assert not (tmp_path / "remotes").exists()
        (ws / "service" / name).unlink()
    published = await harness.run(
        [one_step("publish:git", remoteUrl="svc.git", sourcePath="service")]
    )
    assert published.error is None, published.error
    repo = tmp_path / "remotes/svc.git"
    assert git("ls-tree", "main", "inside", cwd=repo).startswith("120000 blob")
