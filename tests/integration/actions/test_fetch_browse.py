"""fetch:* from a git host's folder and file pages (…/tree/<ref>/<path> and the
GitLab, Gitea and Bitbucket shapes), against a real git repository served over
HTTP on loopback by git's own smart-HTTP server program (support.githttp)."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from falsework.actions.policies import GitCredential, GitPolicy, SourcePolicy
from falsework.actions.sources import browse_url
from support.githttp import git, serve_git

VALUES = {"name": "svc"}
TOKEN = "tok-3f9a-private"
PRIVATE_AUTH = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A web server whose /team/tools.git is a repository with the branches main and
    feature/x and the tag v1; yields its base URL and the commit ids."""
    root = tmp_path_factory.mktemp("githost")
    work = root / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    (work / "skel").mkdir()
    (work / "skel" / "${{ values.name }}.txt").write_text("main ${{ values.name }}\n")
    (work / "README.md").write_text("top\n")
    git("add", "-A", cwd=work)
    git("commit", "-qm", "one", cwd=work)
    first = git("rev-parse", "HEAD", cwd=work)
    git("tag", "v1", cwd=work)
    git("checkout", "-q", "-b", "feature/x", cwd=work)
    (work / "skel" / "${{ values.name }}.txt").write_text("feature ${{ values.name }}\n")
    git("commit", "-qam", "two", cwd=work)
    git("checkout", "-q", "main", cwd=work)
    (work / "skel" / "${{ values.name }}.txt").write_text("main2 ${{ values.name }}\n")
    git("commit", "-qam", "three", cwd=work)
    bare = root / "site" / "team" / "tools.git"
    bare.parent.mkdir(parents=True)
    git("clone", "-q", "--bare", str(work), str(bare), cwd=root)
    private = root / "site" / "private" / "tools.git"
    private.parent.mkdir(parents=True)
    git("clone", "-q", "--bare", str(work), str(private), cwd=root)
    site = serve_git(
        root / "site", lambda path, auth: not path.startswith("/private/") or auth == PRIVATE_AUTH
    )
    try:
        yield site.url, {"first": first}
    finally:
        site.close()


def test_browse_urls_are_recognised() -> None:
    gh = browse_url("https://github.com/o/r/tree/main/templates/svc")
    assert gh == ("https://github.com/o/r.git", ["main", "templates", "svc"])
    gl = browse_url("https://gitlab.example.com/g/sub/r/-/blob/v1.2/a%20b.txt")
    assert gl == ("https://gitlab.example.com/g/sub/r.git", ["v1.2", "a b.txt"])
    assert browse_url("https://gitea.example.com/o/r/src/branch/dev/x") == (
        "https://gitea.example.com/o/r.git",
        ["dev", "x"],
    )
    assert browse_url("https://bitbucket.org/ws/r/src/main/x/") == (
        "https://bitbucket.org/ws/r.git",
        ["main", "x"],
    )
    assert browse_url("https://example.com/just/a/page") is None
    assert browse_url("file:///o/r/tree/main/x") is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/team/tools/tree/main/skel", "main2 svc\n"),
        ("/team/tools/tree/feature/x/skel", "feature svc\n"),  # a branch with a slash
        ("/team/tools/tree/v1/skel", "main svc\n"),  # a tag
        ("/team/tools/-/tree/feature/x/skel", "feature svc\n"),  # GitLab
        ("/team/tools/src/branch/main/skel", "main2 svc\n"),  # Gitea
        ("/team/tools/src/v1/skel/", "main svc\n"),  # Bitbucket
    ],
)
async def test_fetch_template_from_a_folder_page(
    harness: Any, one_step: Any, host: tuple[str, dict[str, str]], path: str, expected: str
) -> None:
    base, _ = host
    result = await harness.run([one_step("fetch:template", url=base + path, values=VALUES)])
    assert result.error is None, result.error
    assert (harness.workspace / "svc.txt").read_text() == expected
    assert not (harness.workspace / ".git").exists()


async def test_a_commit_id_and_a_file_page(
    harness: Any, one_step: Any, host: tuple[str, dict[str, str]]
) -> None:
    base, commits = host
    url = f"{base}/team/tools/tree/{commits['first']}/skel"
    result = await harness.run([one_step("fetch:template", url=url, values=VALUES)])
    assert result.error is None, result.error
    assert (harness.workspace / "svc.txt").read_text() == "main svc\n"
    file_url = f"{base}/team/tools/blob/main/README.md"
    result = await harness.run(
        [one_step("fetch:plain:file", url=file_url, targetPath="copied/README.md")]
    )
    assert result.error is None, result.error
    assert (harness.workspace / "copied" / "README.md").read_text() == "top\n"


async def test_an_unknown_ref_and_an_escaping_path_are_refused(
    harness: Any, one_step: Any, host: tuple[str, dict[str, str]]
) -> None:
    base, _ = host
    result = await harness.run(
        [one_step("fetch:plain", url=f"{base}/team/tools/tree/nope/skel", targetPath="x")]
    )
    assert result.error is not None
    assert "no branch or tag of" in result.error.message and "'nope/skel'" in result.error.message
    result = await harness.run(
        [one_step("fetch:plain", url=f"{base}/team/tools/tree/main/..%2F..%2Fetc", targetPath="x")]
    )
    assert result.error is not None and result.error.name == "UnsafePathError"


async def test_a_private_repository_takes_the_token_input(
    harness: Any, one_step: Any, host: tuple[str, dict[str, str]]
) -> None:
    base, _ = host
    url = f"{base}/private/tools/tree/main/skel"
    refused = await harness.run([one_step("fetch:template", url=url, values=VALUES)])
    assert refused.error is not None and "git ls-remote" in refused.error.message
    result = await harness.run([one_step("fetch:template", url=url, values=VALUES, token=TOKEN)])
    assert result.error is None, result.error
    assert (harness.workspace / "svc.txt").read_text() == "main2 svc\n"
    # a .git URL too, and the token is in no event
    result = await harness.run(
        [
            one_step(
                "fetch:plain",
                url=f"{base}/private/tools.git?path=skel#v1",
                targetPath="plain",
                token=TOKEN,
            )
        ]
    )
    assert result.error is None, result.error
    assert (harness.workspace / "plain" / "${{ values.name }}.txt").read_text() == (
        "main ${{ values.name }}\n"
    )
    assert TOKEN not in repr(result.io.events) and TOKEN not in repr(refused.io.events)


async def test_a_configured_host_credential_is_used_without_a_token_input(
    harness: Any, one_step: Any, host: tuple[str, dict[str, str]]
) -> None:
    base, _ = host
    netloc = base.removeprefix("http://")
    git = harness.policy(GitPolicy)

    def credential(token: str) -> None:
        item = GitCredential(host=netloc, token=token, owners=("private",))
        with_credential = dataclasses.replace(git, credentials=(item,))
        harness.configure(
            with_credential,
            dataclasses.replace(harness.policy(SourcePolicy), git=with_credential),
        )

    credential(TOKEN)
    url = f"{base}/private/tools/tree/feature/x/skel"
    result = await harness.run([one_step("fetch:template", url=url, values=VALUES)])
    assert result.error is None, result.error
    assert (harness.workspace / "svc.txt").read_text() == "feature svc\n"
    credential("wrong")
    refused = await harness.run([one_step("fetch:template", url=url, values=VALUES)])
    assert refused.error is not None
    # the step's own token wins over the configured one
    result = await harness.run([one_step("fetch:template", url=url, values=VALUES, token=TOKEN)])
    assert result.error is None, result.error
