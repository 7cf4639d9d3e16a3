"""fetch:template across tasks: the compile cache keyed by each file's content
(a worker's second task of a skeleton compiles nothing; a changed file compiles
anew), and text without our template syntax written byte for byte."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from falsework.templating import Renderer
from support.actions import make_runner
from support.gitrepos import write_tree


@pytest.fixture
def fresh(harness: Any, tmp_path: Path) -> Any:
    """The harness with a renderer of its own: its cache counts only this test."""
    runner = make_runner(tmp_path / "work", Renderer(), harness.policies)
    return dataclasses.replace(harness, runner=runner)


def _counts(harness: Any) -> tuple[int, int]:
    info = harness.runner.renderer._main.cache_info()
    return info.hits, info.misses


async def test_a_second_task_finds_every_file_of_a_large_skeleton_compiled(
    fresh: Any, one_step: Any
) -> None:
    # 200 files of 8 KB with one tag each: weighed at 16 per character they
    # would overflow the cache (27 MB), and first-in-first-out would then miss
    # every one on the second pass
    text = "".join(f"plain line {n} of a generated source file\n" for n in range(200))
    files = {
        f"pkg/f{i}.txt": f"# file {i}\n{text}name: ${{{{ values.name }}}}\n" for i in range(200)
    }
    write_tree(fresh.template_dir / "skeleton", files)
    step = one_step("fetch:template", url="./skeleton", values={"name": "svc"}, replace=True)
    first = await fresh.run([step])
    assert first.error is None, first.error
    hits, misses = _counts(fresh)
    assert misses >= 200
    second = await fresh.run([step])
    assert second.error is None, second.error
    after_hits, after_misses = _counts(fresh)
    assert after_misses == misses
    assert after_hits - hits >= 200
    out = fresh.workspace / "pkg/f7.txt"
    assert out.read_text() == f"# file 7\n{text}name: svc\n"


async def test_a_changed_skeleton_file_is_compiled_anew(fresh: Any, one_step: Any) -> None:
    skeleton = fresh.template_dir / "skeleton"
    write_tree(
        skeleton,
        {"a.txt": "Hello, ${{ values.name }}!\n", "b.txt": "Owner ${{ values.owner }}\n"},
    )
    step = one_step(
        "fetch:template", url="./skeleton", values={"name": "x", "owner": "o"}, replace=True
    )
    assert (await fresh.run([step])).error is None
    assert (fresh.workspace / "a.txt").read_text() == "Hello, x!\n"
    hits, misses = _counts(fresh)
    # the same length and the same modification time: only the content differs
    before = (skeleton / "a.txt").stat()
    (skeleton / "a.txt").write_text("Adios, ${{ values.name }}!\n")
    os.utime(skeleton / "a.txt", ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (await fresh.run([step])).error is None
    assert (fresh.workspace / "a.txt").read_text() == "Adios, x!\n"
    assert (fresh.workspace / "b.txt").read_text() == "Owner o\n"
    after_hits, after_misses = _counts(fresh)
    assert after_misses - misses == 1  # a.txt; b.txt and the step's input were cached
    assert after_hits > hits


LOOKALIKES = {
    # GitHub Actions' and Helm's syntax are not ours: `{{` alone is plain text
    "ci.yaml": "run: echo {{ github.sha }}\r\nname: '{{ .Values.name }}'\r\n",
    "no-newline.txt": "ends without one {{",
    "braces.js": "const o = { a: { b: 1 }}; // }} and $ { and ${ {\n\n\n",
    "crlf.txt": "one\r\ntwo\r\n",
}


async def test_text_without_our_syntax_is_written_byte_for_byte(fresh: Any, one_step: Any) -> None:
    skeleton = fresh.template_dir / "skeleton"
    skeleton.mkdir()
    for name, text in LOOKALIKES.items():
        (skeleton / name).write_bytes(text.encode("utf-8"))
    (skeleton / "tool.sh").write_bytes(b"#!/bin/sh\r\necho {{ not ours }}\r\n")
    (skeleton / "tool.sh").chmod(0o750)
    (skeleton / "blob.bin").write_bytes(b"\x00\x01${{ values.name }}\xff")
    result = await fresh.run([one_step("fetch:template", url="./skeleton", values={"name": "svc"})])
    assert result.error is None, result.error
    for name, text in LOOKALIKES.items():
        assert (fresh.workspace / name).read_bytes() == text.encode("utf-8"), name
        # what the renderer gives for it: the copy is what rendering would write
        assert fresh.runner.renderer.render_string(text, {"values": {}}) == text
    assert (fresh.workspace / "tool.sh").read_bytes() == (skeleton / "tool.sh").read_bytes()
    assert stat.S_IMODE((fresh.workspace / "tool.sh").stat().st_mode) == 0o750
    assert (fresh.workspace / "blob.bin").read_bytes() == b"\x00\x01${{ values.name }}\xff"


async def test_copy_without_templating_and_render_globs_are_kept_on_a_warm_cache(
    fresh: Any, one_step: Any
) -> None:
    """A file compiled for one task is still copied as it is by a task whose
    globs exclude it: the cache holds compiled text, never decisions."""
    files = {
        "keep/a.txt": "${{ values.name }}\n",
        "render/a.txt": "${{ values.name }}\n",
        "raw/${{ values.name }}.txt": "${{ values.name }}\n",
    }
    write_tree(fresh.template_dir / "skeleton", files)
    values = {"name": "svc"}
    plain = one_step("fetch:template", url="./skeleton", values=values, targetPath="one")
    assert (await fresh.run([plain])).error is None
    assert (fresh.workspace / "one/keep/a.txt").read_text() == "svc\n"
    globbed = one_step(
        "fetch:template",
        url="./skeleton",
        values=values,
        targetPath="two",
        copyWithoutTemplating=["keep/*"],
    )
    assert (await fresh.run([globbed])).error is None
    assert (fresh.workspace / "two/keep/a.txt").read_text() == "${{ values.name }}\n"
    assert (fresh.workspace / "two/render/a.txt").read_text() == "svc\n"
    assert (fresh.workspace / "two/raw/svc.txt").read_text() == "svc\n"
    legacy = one_step(
        "fetch:template",
        url="./skeleton",
        values=values,
        targetPath="three",
        copyWithoutRender=["raw/**"],
    )
    assert (await fresh.run([legacy])).error is None
    kept = fresh.workspace / "three/raw/${{ values.name }}.txt"
    assert kept.read_text() == "${{ values.name }}\n"
    assert (fresh.workspace / "three/keep/a.txt").read_text() == "svc\n"


# A templated file's bytes are kept but where a tag is: CRLF, a lone CR, a
# missing or doubled trailing newline (Backstage renders with Nunjucks, which
# keeps them all). Two files of one shape, LF and CRLF, each keep their own.
TEMPLATED_BREAKS = {
    "win.txt": (b"one\r\nname: ${{ values.name }}\r\n", b"one\r\nname: svc\r\n"),
    "unix.txt": (b"one\nname: ${{ values.name }}\n", b"one\nname: svc\n"),
    "mixed.txt": (b"lf\ncrlf\r\ncr\r${{ values.name }}", b"lf\ncrlf\r\ncr\rsvc"),
    "doubled.txt": (b"${{ values.name }}\r\n\r\n", b"svc\r\n\r\n"),
    "value.txt": (b"m: ${{ values.multi }}\r\n", b"m: x\ny\r\n"),
    "block.txt": (
        b"{% if values.on %}\r\n  on: ${{ values.name }}\r\n{% endif %}\r\n",
        b"\r\n  on: svc\r\n\r\n",
    ),
    "plain-crlf.txt": (b"no tags\r\nhere\r\n", b"no tags\r\nhere\r\n"),
}


@pytest.mark.parametrize("warm", [False, True])
async def test_templated_files_keep_their_line_breaks(
    fresh: Any, one_step: Any, warm: bool
) -> None:
    skeleton = fresh.template_dir / "skeleton"
    skeleton.mkdir()
    for name, (source, _) in TEMPLATED_BREAKS.items():
        (skeleton / name).write_bytes(source)
    values = {"name": "svc", "multi": "x\ny", "on": True}
    step = one_step("fetch:template", url="./skeleton", values=values, replace=True)
    for _ in range(2 if warm else 1):  # the second task: every file from the cache
        result = await fresh.run([step])
        assert result.error is None, result.error
        for name, (_, expected) in TEMPLATED_BREAKS.items():
            assert (fresh.workspace / name).read_bytes() == expected, name
    trimmed = one_step(
        "fetch:template",
        url="./skeleton",
        values=values,
        targetPath="trimmed",
        trimBlocks=True,
        lstripBlocks=True,
    )
    assert (await fresh.run([trimmed])).error is None
    # trimBlocks removes a CRLF after a block tag, as Nunjucks does
    assert (fresh.workspace / "trimmed/block.txt").read_bytes() == b"  on: svc\r\n"
    one = one_step(
        "fetch:template:file", url="./skeleton/win.txt", targetPath="one.txt", values=values
    )
    assert (await fresh.run([one])).error is None
    assert (fresh.workspace / "one.txt").read_bytes() == b"one\r\nname: svc\r\n"
