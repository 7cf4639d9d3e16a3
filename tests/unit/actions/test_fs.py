"""fs:rename, fs:delete, fs:readdir, debug:log, debug:wait and catalog:write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml


def tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


BAD = ["../../../etc/passwd", "../outside", "/etc/passwd"]


@pytest.fixture
def files(harness: Any) -> Path:
    ws: Path = harness.workspace
    (ws / "a.txt").write_text("a")
    (ws / "b.log").write_text("b")
    (ws / "sub/deep").mkdir(parents=True)
    (ws / "sub/c.log").write_text("c")
    (ws / "sub/deep/d.txt").write_text("d")
    return ws


async def test_rename(harness: Any, files: Path, one_step: Any) -> None:
    result = await harness.run(
        [
            one_step(
                "fs:rename",
                files=[{"from": "a.txt", "to": "new/a2.txt"}, {"from": "sub", "to": "s2"}],
            )
        ]
    )
    assert result.error is None
    assert (files / "new/a2.txt").read_text() == "a" and (files / "s2/deep/d.txt").exists()


async def test_rename_refuses_overwrite_unless_asked(
    harness: Any, files: Path, one_step: Any
) -> None:
    refused = await harness.run([one_step("fs:rename", files=[{"from": "a.txt", "to": "b.log"}])])
    assert refused.error is not None and "already exists" in refused.error.message
    done = await harness.run(
        [one_step("fs:rename", files=[{"from": "a.txt", "to": "b.log", "overwrite": True}])]
    )
    assert done.error is None and (files / "b.log").read_text() == "a"
    missing = await harness.run([one_step("fs:rename", files=[{"from": "nope", "to": "x"}])])
    assert missing.error is not None and "does not exist" in missing.error.message


@pytest.mark.parametrize("bad", BAD)
async def test_rename_traversal(harness: Any, files: Path, one_step: Any, bad: str) -> None:
    for pair in ({"from": bad, "to": "x"}, {"from": "a.txt", "to": bad}):
        result = await harness.run([one_step("fs:rename", files=[pair])])
        assert result.error is not None and result.error.name == "UnsafePathError"
    assert (files / "a.txt").exists()


async def test_delete_literal_and_glob(harness: Any, files: Path, one_step: Any) -> None:
    result = await harness.run([one_step("fs:delete", files=["a.txt", "**/*.log", "missing"])])
    assert result.error is None
    assert tree(files) == [
        "sub",
        "sub/deep",
        "sub/deep/d.txt",
    ]
    assert any("File sub/c.log deleted successfully" in m for m in result.logs("s"))


@pytest.mark.parametrize("bad", [*BAD, "../*"])
async def test_delete_traversal(harness: Any, files: Path, one_step: Any, bad: str) -> None:
    result = await harness.run([one_step("fs:delete", files=[bad])])
    assert result.error is not None and result.error.name == "UnsafePathError"


async def test_readdir(harness: Any, files: Path, one_step: Any) -> None:
    result = await harness.run(
        [one_step("fs:readdir", paths=["sub"], recursive=True)],
        output={"text": [{"title": "files", "content": "${{ steps.s.output.files | dump }}"}]},
    )
    assert result.error is None
    output = result.steps["s"]["output"]
    assert [f["path"] for f in output["files"]] == ["sub/c.log", "sub/deep/d.txt"]
    assert output["folders"] == [
        {"name": "deep", "path": "sub/deep", "fullPath": str((files / "sub/deep").resolve())}
    ]


@pytest.mark.parametrize("bad", BAD)
async def test_readdir_traversal(harness: Any, files: Path, one_step: Any, bad: str) -> None:
    result = await harness.run([one_step("fs:readdir", paths=[bad])])
    assert result.error is not None and result.error.name == "UnsafePathError"


async def test_debug_log_lists_workspace(harness: Any, files: Path, one_step: Any) -> None:
    names = await harness.run([one_step("debug:log", listWorkspace=True)])
    assert names.logs("s")[-2].endswith(
        "Workspace:\n  - a.txt\n  - b.log\n  - sub/c.log\n  - sub/deep/d.txt"
    )
    contents = await harness.run(
        [one_step("debug:log", message="hi", listWorkspace="with-contents")]
    )
    logs = contents.logs("s")
    assert (
        logs[1]
        == '\u001b[32minfo\u001b[39m: {\n  "message": "hi",\n  "listWorkspace": "with-contents"\n}'
    )
    assert logs[2] == "\u001b[32minfo\u001b[39m: hi"
    assert " - sub/deep/d.txt:\n\n  d" in logs[3]


async def test_debug_wait_limit(harness: Any, one_step: Any) -> None:
    result = await harness.run([one_step("debug:wait", minutes=11)])
    assert result.error is not None and "10 minutes" in result.error.message
    fine = await harness.run([one_step("debug:wait", milliseconds=1)])
    assert fine.error is None


async def test_catalog_write(harness: Any, one_step: Any) -> None:
    entity = {"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "x"}}
    result = await harness.run(
        [one_step("catalog:write", entity=entity, filePath="svc/catalog-info.yaml")]
    )
    assert result.error is None
    # as Backstage's: the task's template in an annotation (the byte-level YAML is
    # compared with the real Backstage's in tests/support/compat/cases/catalog-write.yaml)
    assert (harness.workspace / "svc/catalog-info.yaml").read_text() == (
        "apiVersion: backstage.io/v1alpha1\n"
        "kind: Component\n"
        "metadata:\n"
        "  name: x\n"
        "  annotations:\n"
        "    backstage.io/source-template: template:default/test\n"
    )
    default = await harness.run([one_step("catalog:write", entity=entity)])
    assert default.error is None and (harness.workspace / "catalog-info.yaml").exists()
    assert yaml.safe_load((harness.workspace / "catalog-info.yaml").read_text())["kind"] == (
        "Component"
    )


@pytest.mark.parametrize("bad", BAD)
async def test_catalog_write_traversal(harness: Any, one_step: Any, bad: str) -> None:
    result = await harness.run([one_step("catalog:write", entity={}, filePath=bad)])
    assert result.error is not None and result.error.name == "UnsafePathError"
