"""fetch:* on Backstage-shaped skeletons, local and git sources, and refusals."""

from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

SKELETON: dict[str, str] = {
    "README.md": "# ${{ values.name }}\n\n${{ values.description }}\n\n",
    "catalog-info.yaml": (
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n"
        "  name: ${{ values.name | dump }}\n  tags: ${{ values.tags | dump }}\n"
        "spec:\n  owner: ${{ values.owner }}\n"
    ),
    "src/${{ values.name }}/main.py": (
        "{%- if values.http %}\nimport http\n{%- endif %}\nNAME = ${{ values.name | dump }}\n"
    ),
    "${{ 'docs' if values.docs else '' }}/index.md": "docs for ${{ values.name }}\n",
    ".github/workflows/ci.yaml": (
        "on: push\njobs:\n  b:\n    runs-on: ${{ github.event.inputs.os }}\n"
        "    steps:\n      - run: echo ${{ secrets.X }}\n"
    ),
}


def write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


VALUES = {"name": "svc", "description": "A service", "tags": ["a", "b"], "owner": "team-a"}


@pytest.fixture
def skeleton(harness: Any) -> Path:
    root = harness.template_dir / "skeleton"
    write_tree(root, SKELETON)
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00${{ values.name }}")
    (root / "run.sh").write_text("#!/bin/sh\necho ${{ values.name }}\n")
    (root / "run.sh").chmod(0o755)
    (root / "link-to-readme").symlink_to("README.md")
    return root


async def test_backstage_shaped_skeleton(harness: Any, skeleton: Path, one_step: Any) -> None:
    result = await harness.run(
        [
            one_step(
                "fetch:template",
                url="./skeleton",
                targetPath="out",
                values={**VALUES, "http": True, "docs": False},
                copyWithoutTemplating=[".github/workflows/*"],
            )
        ]
    )
    assert result.error is None, result.error
    out = harness.workspace / "out"
    assert (out / "README.md").read_text() == "# svc\n\nA service\n\n"  # trailing newlines kept
    catalog = yaml.safe_load((out / "catalog-info.yaml").read_text())
    assert catalog["metadata"] == {"name": "svc", "tags": ["a", "b"]}
    # `{%- endif %}` eats the newline before it, as in Nunjucks.
    assert (out / "src/svc/main.py").read_text() == '\nimport http\nNAME = "svc"\n'
    assert not (out / "docs").exists() and not list(out.glob("*index.md"))
    assert (out / ".github/workflows/ci.yaml").read_text() == SKELETON[".github/workflows/ci.yaml"]
    assert (out / "logo.png").read_bytes() == (skeleton / "logo.png").read_bytes()
    assert os.readlink(out / "link-to-readme") == "README.md"
    assert stat.S_IMODE((out / "run.sh").stat().st_mode) == 0o755
    assert (out / "run.sh").read_text() == "#!/bin/sh\necho svc\n"
    logs = result.logs("s")
    assert any("Writing file README.md to template output path with mode" in m for m in logs)
    assert any("Copying file binary or symbolic link at logo.png" in m for m in logs)


async def test_conditional_folder_is_created_when_truthy(
    harness: Any, skeleton: Path, one_step: Any
) -> None:
    result = await harness.run(
        [one_step("fetch:template", url="./skeleton", values={**VALUES, "docs": True})]
    )
    assert result.error is None
    assert (harness.workspace / "docs/index.md").read_text() == "docs for svc\n"
    assert (harness.workspace / "src/svc/main.py").read_text() == '\nNAME = "svc"\n'


async def test_copy_without_render_keeps_names(harness: Any, skeleton: Path, one_step: Any) -> None:
    result = await harness.run(
        [one_step("fetch:template", url="./skeleton", values=VALUES, copyWithoutRender=["src/**"])]
    )
    assert result.error is None
    kept = harness.workspace / "src/${{ values.name }}/main.py"
    assert kept.read_text() == SKELETON["src/${{ values.name }}/main.py"]


async def test_template_file_extension(harness: Any, one_step: Any) -> None:
    write_tree(
        harness.template_dir / "sk",
        {
            "a.txt.njk": "${{ values.name }}",
            "b.txt": "${{ values.name }}",
            "${{ values.name }}.md": "x",
        },
    )
    result = await harness.run(
        [one_step("fetch:template", url="./sk", values=VALUES, templateFileExtension=True)]
    )
    assert result.error is None
    assert (harness.workspace / "a.txt").read_text() == "svc"
    assert (harness.workspace / "b.txt").read_text() == "${{ values.name }}"
    assert (harness.workspace / "svc.md").read_text() == "x"


async def test_skeleton_files_use_regex_literals(harness: Any, one_step: Any) -> None:
    # the shape of published data-product skeletons: Nunjucks regex literals in
    # file contents and in {% set %}
    write_tree(
        harness.template_dir / "rx",
        {
            "catalog-info.yaml": (
                '{%- set slug = values.name | replace(r/[^a-z0-9]/gi, "") %}\n'
                "name: ${{ slug }}\n"
                "upper: ${{ values.name | replace(r/^(\\w)/, (values.name[0] | upper)) }}\n"
                "{% if r/^s/.test(values.name) %}starts: s{% endif %}\n"
            ),
        },
    )
    result = await harness.run([one_step("fetch:template", url="./rx", values={"name": "s-v.c"})])
    assert result.error is None, result.error
    # (the newline after `%}` stays, as in Nunjucks without trimBlocks)
    assert (harness.workspace / "catalog-info.yaml").read_text() == (
        "\nname: svc\nupper: S-v.c\nstarts: s\n"
    )


async def test_cookiecutter_compat(harness: Any, one_step: Any) -> None:
    write_tree(
        harness.template_dir / "cc",
        {
            "{{ cookiecutter.name }}/README.md": (
                "# {{ cookiecutter.name }} {{ cookiecutter.tags | jsonify }}\n"
            )
        },
    )
    result = await harness.run(
        [one_step("fetch:template", url="./cc", values=VALUES, cookiecutterCompat=True)]
    )
    assert result.error is None, result.error
    assert (harness.workspace / "svc/README.md").read_text() == '# svc ["a","b"]\n'


async def test_replace_and_trim_blocks(harness: Any, one_step: Any) -> None:
    write_tree(harness.template_dir / "sk", {"f.txt": "{% if true %}\n  yes\n{% endif %}\n"})
    (harness.workspace / "f.txt").write_text("old")
    kept = await harness.run([one_step("fetch:template", url="./sk")])
    assert kept.error is None and (harness.workspace / "f.txt").read_text() == "old"
    replaced = await harness.run(
        [one_step("fetch:template", url="./sk", replace=True, trimBlocks=True, lstripBlocks=True)]
    )
    assert replaced.error is None
    assert (harness.workspace / "f.txt").read_text() == "  yes\n"


async def test_fetch_plain_and_plain_file(harness: Any, skeleton: Path, one_step: Any) -> None:
    result = await harness.run(
        [
            {**one_step("fetch:plain", url="./skeleton", targetPath="plain"), "id": "a"},
            {
                **one_step("fetch:plain:file", url="./skeleton/README.md", targetPath="x/R.md"),
                "id": "b",
            },
        ]
    )
    assert result.error is None
    assert (harness.workspace / "plain/README.md").read_text() == SKELETON["README.md"]
    assert (harness.workspace / "plain/link-to-readme").is_symlink()
    assert (harness.workspace / "x/R.md").read_text() == SKELETON["README.md"]


async def test_fetch_template_file(harness: Any, skeleton: Path, one_step: Any) -> None:
    result = await harness.run(
        [
            one_step(
                "fetch:template:file", url="./skeleton/README.md", targetPath="R.md", values=VALUES
            )
        ]
    )
    assert result.error is None
    assert (harness.workspace / "R.md").read_text() == "# svc\n\nA service\n\n"


@pytest.fixture
def git_source(tmp_path: Path) -> Path:
    src = tmp_path / "allowed" / "src-repo"
    write_tree(src, {"skel/${{ values.name }}.txt": "hello ${{ values.name }}\n", "top.txt": "t"})
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    for cmd in (
        ["git", "init", "-q", "-b", "dev"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "x"],
    ):
        subprocess.run(cmd, cwd=src, check=True, env=env)
    return src


async def test_git_source_with_ref_and_path(harness: Any, git_source: Path, one_step: Any) -> None:
    src = git_source
    url = f"{src.as_uri()}?path=skel#dev"
    result = await harness.run([one_step("fetch:template", url=url, values=VALUES)])
    assert result.error is None, result.error
    assert (harness.workspace / "svc.txt").read_text() == "hello svc\n"
    assert not (harness.workspace / ".git").exists()


@pytest.fixture
def outside_repo(git_source: Path, tmp_path: Path) -> Path:
    return git_source.rename(tmp_path / "elsewhere-repo")


async def test_git_repo_outside_allowed_roots_refused(
    harness: Any, outside_repo: Path, one_step: Any
) -> None:
    moved = outside_repo
    result = await harness.run([one_step("fetch:template", url=moved.as_uri() + "#dev")])
    assert result.error is not None and result.error.name == "UnsafePathError"


async def test_local_folder_under_allowed_root(harness: Any, tmp_path: Path, one_step: Any) -> None:
    write_tree(tmp_path / "allowed/sk", {"a.txt": "${{ values.name }}"})
    write_tree(tmp_path / "elsewhere/sk", {"a.txt": "x"})
    ok = await harness.run(
        [one_step("fetch:template", url=str(tmp_path / "allowed/sk"), values=VALUES)]
    )
    assert ok.error is None and (harness.workspace / "a.txt").read_text() == "svc"
    refused = await harness.run([one_step("fetch:plain", url=(tmp_path / "elsewhere/sk").as_uri())])
    assert refused.error is not None and refused.error.name == "UnsafePathError"


TRAVERSALS = ["../../../etc", "../elsewhere", "/etc"]


@pytest.mark.parametrize("action", ["fetch:plain", "fetch:template"])
@pytest.mark.parametrize("bad", TRAVERSALS)
async def test_target_path_traversal_refused(
    harness: Any, skeleton: Path, one_step: Any, action: str, bad: str
) -> None:
    result = await harness.run([one_step(action, url="./skeleton", targetPath=bad)])
    assert result.error is not None and result.error.name == "UnsafePathError"
    assert repr(bad) in result.error.message


@pytest.mark.parametrize("action", ["fetch:plain:file", "fetch:template:file"])
@pytest.mark.parametrize("bad", TRAVERSALS)
async def test_file_paths_traversal_refused(
    harness: Any, skeleton: Path, one_step: Any, action: str, bad: str
) -> None:
    result = await harness.run([one_step(action, url="./skeleton/README.md", targetPath=bad)])
    assert result.error is not None and result.error.name == "UnsafePathError"
    result = await harness.run([one_step(action, url=bad + "/passwd", targetPath="x")])
    assert result.error is not None and result.error.name == "UnsafePathError"


async def test_url_leaving_template_folder_refused(harness: Any, one_step: Any) -> None:
    result = await harness.run([one_step("fetch:template", url="../../../")])
    assert result.error is not None and result.error.name == "UnsafePathError"


async def test_rendered_name_cannot_escape(harness: Any, one_step: Any) -> None:
    write_tree(harness.template_dir / "sk", {"${{ values.p }}.txt": "x"})
    result = await harness.run(
        [one_step("fetch:template", url="./sk", values={"p": "../../escaped"})]
    )
    assert result.error is not None and result.error.name == "UnsafePathError"
    assert not (harness.workspace.parent.parent / "escaped.txt").exists()


@pytest.fixture
def limited(harness: Any, tmp_path: Path) -> Any:
    """The harness with a runner whose renderer has small, configured limits."""
    from falsework.actions import ActionRegistry
    from falsework.runner import WorkflowRunner
    from falsework.templating import Renderer

    runner = WorkflowRunner(
        ActionRegistry.builtin(),
        Renderer(timeout=0.1, max_output=1_000),
        work_dir=tmp_path / "work",
    )
    return dataclasses.replace(harness, runner=runner)


@pytest.mark.parametrize("cookiecutter", [False, True])
async def test_skeleton_rendering_uses_the_configured_limits(
    limited: Any, one_step: Any, cookiecutter: bool
) -> None:
    """Both the `${{ }}` and the cookiecutter-mode renderer use the runner's
    render_timeout / render_max_output, not the defaults (2 s, 10 MB)."""
    write_tree(
        limited.template_dir / "big",
        {"big.txt": "{% for i in range(300) %}0123456789{% endfor %}\n"},
    )
    write_tree(
        limited.template_dir / "slow",
        {
            "slow.txt": "{% for i in range(100000) %}{% for j in range(100000) %}"
            "{% endfor %}{% endfor %}\n"
        },
    )
    write_tree(limited.template_dir / "small", {"ok.txt": "{% for i in range(3) %}x{% endfor %}"})
    for folder, expected in (
        ("big", "more than the limit of 1,000 characters"),
        ("slow", "longer than the limit of 0.1s"),
    ):
        result = await limited.run(
            [one_step("fetch:template", url=f"./{folder}", cookiecutterCompat=cookiecutter)]
        )
        assert result.error is not None, folder
        assert result.error.name == "TemplateSecurityError"
        assert expected in result.error.message
    fine = await limited.run(
        [one_step("fetch:template", url="./small", cookiecutterCompat=cookiecutter)]
    )
    assert fine.error is None, fine.error
    assert (limited.workspace / "ok.txt").read_text() == "xxx"
