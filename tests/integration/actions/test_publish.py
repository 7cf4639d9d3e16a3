"""publish:git with local remotes: only inside the remotes folder or a publish
root, relative paths taken from the remotes folder, clear failures. Real git,
real folders; every pushed result is read back with git."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def exists(path: Path) -> bool:
    return path.exists()


def make_dirs(*paths: Path) -> tuple[Path, ...]:
    for path in paths:
        path.mkdir(parents=True)
    return paths


@pytest.fixture
def remotes(tmp_path: Path) -> Path:
    return tmp_path / "remotes"  # the harness runner's remotes folder


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The process's working folder: relative remotes must never land here."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


async def test_relative_remote_is_created_in_the_remotes_folder(
    harness: Any, remotes: Path, cwd: Path, one_step: Any
) -> None:
    (harness.workspace / "README.md").write_text("# svc\n")
    result = await harness.run([one_step("publish:git", remoteUrl="team/svc.git")])
    assert result.error is None, result.error
    repo = remotes / "team" / "svc.git"
    assert git("rev-parse", "--is-bare-repository", cwd=repo).strip() == "true"
    out = result.steps["s"]["output"]
    assert git("rev-parse", "main", cwd=repo).strip() == out["commitHash"]
    assert git("show", "main:README.md", cwd=repo) == "# svc\n"
    # Reported as the folder it became, so `git clone` works from anywhere.
    assert out["remoteUrl"] == str(repo)
    assert out["repoContentsUrl"] == f"{repo}#main"
    assert listing(cwd) == []
    git("clone", "-q", out["remoteUrl"], "clone", cwd=cwd)
    assert (cwd / "clone" / "README.md").read_text() == "# svc\n"


async def test_absolute_path_and_file_url_inside_the_remotes_folder(
    harness: Any, remotes: Path, one_step: Any
) -> None:
    (harness.workspace / "a.txt").write_text("a")
    first, second = remotes / "abs.git", remotes / "nested" / "url.git"
    result = await harness.run(
        [
            {**one_step("publish:git", remoteUrl=str(first)), "id": "one"},
            {**one_step("publish:git", remoteUrl=second.as_uri()), "id": "two"},
        ]
    )
    assert result.error is None, result.error
    for repo in (first, second):
        assert git("show", "main:a.txt", cwd=repo) == "a"
    # Absolute forms are reported as given.
    assert result.steps["one"]["output"]["remoteUrl"] == str(first)
    assert result.steps["two"]["output"]["remoteUrl"] == second.as_uri()


async def test_publish_root_accepts_a_new_repository(
    harness: Any, tmp_path: Path, one_step: Any
) -> None:
    (harness.workspace / "a.txt").write_text("a")
    repo = tmp_path / "allowed" / "team.git"  # the harness's publish root
    result = await harness.run([one_step("publish:git", remoteUrl=str(repo))])
    assert result.error is None, result.error
    assert git("show", "main:a.txt", cwd=repo) == "a"


async def test_a_fetch_root_is_not_a_publish_root(
    harness: Any, tmp_path: Path, one_step: Any
) -> None:
    # fetch:* may read the allowed roots (on a server: the template folders);
    # publish:git writes only to the remotes folder and the publish roots
    from falsework.actions.policies import PublishPolicy, SourcePolicy

    publish = harness.policy(PublishPolicy)
    harness.configure(PublishPolicy(remotes_dir=publish.remotes_dir, git=publish.git))
    assert harness.policy(SourcePolicy).roots == (tmp_path / "allowed",)
    (harness.workspace / "a.txt").write_text("a")
    url = str(tmp_path / "allowed" / "sneaky.git")
    result = await harness.run([one_step("publish:git", remoteUrl=url)])
    assert result.error is not None and result.error.name == "UnsafePathError"
    assert "outside the folders publish:git may write to" in result.error.message
    assert not (tmp_path / "allowed" / "sneaky.git").exists()


def outside_remotes(tmp_path: Path) -> list[str]:
    elsewhere = tmp_path / "elsewhere" / "evil.git"
    return [
        "../escape.git",
        "team/../../escape.git",
        "./../escape.git",
        str(elsewhere),
        elsewhere.as_uri(),
        "file://" + str(tmp_path / "remotes" / ".." / "escape.git"),
        "file:../escape.git",
        str(tmp_path / "workspace" / "inner.git"),
    ]


@pytest.mark.parametrize("index", range(8))
async def test_local_remote_outside_the_allowed_folders_is_refused(
    harness: Any, tmp_path: Path, cwd: Path, index: int, one_step: Any
) -> None:
    url = outside_remotes(tmp_path)[index]
    (harness.workspace / "a.txt").write_text("a")
    before = listing(tmp_path)
    result = await harness.run([one_step("publish:git", remoteUrl=url)])
    assert result.error is not None
    assert result.error.name == "UnsafePathError"
    message = result.error.message
    assert "remoteUrl" in message and repr(url) in message
    assert "outside the folders publish:git may write to" in message
    # The step's failure event says the same, on the failing step.
    assert f"UnsafePathError: {message}" in result.logs("s")
    # Nothing was created anywhere: not the target, not the remotes folder.
    assert listing(tmp_path) == before
    assert listing(cwd) == []
    assert not (tmp_path / "elsewhere").exists()
    assert not (harness.workspace / "inner.git").exists()


async def test_absolute_system_path_is_refused(harness: Any, one_step: Any) -> None:
    (harness.workspace / "a.txt").write_text("a")
    for url in ("/etc/falsework-test.git", "file:///etc/falsework-test.git"):
        result = await harness.run([one_step("publish:git", remoteUrl=url)])
        assert result.error is not None and result.error.name == "UnsafePathError"
        assert "/etc/falsework-test.git" in result.error.message
    assert not exists(Path("/etc/falsework-test.git"))


async def test_symlink_out_of_the_remotes_folder_is_refused(
    harness: Any, tmp_path: Path, remotes: Path, one_step: Any
) -> None:
    outside = make_dirs(tmp_path / "outside", remotes)[0]
    (remotes / "link").symlink_to(outside)
    (harness.workspace / "a.txt").write_text("a")
    result = await harness.run([one_step("publish:git", remoteUrl="link/svc.git")])
    assert result.error is not None and result.error.name == "UnsafePathError"
    assert listing(outside) == []


@pytest.mark.parametrize("scaffold", [False, True])
async def test_a_link_to_nothing_is_refused_and_never_followed(
    harness: Any, tmp_path: Path, remotes: Path, one_step: Any, scaffold: bool
) -> None:
    # A link to nothing where the new repository would be, or on the way to it:
    # git init would make the repository at the link's target. Refused, naming the
    # link; nothing is made, neither outside the remotes folder nor inside it.
    outside = make_dirs(tmp_path / "outside", remotes)[0]
    (remotes / "out.git").symlink_to(outside / "new.git")
    (remotes / "in.git").symlink_to("elsewhere.git")
    (remotes / "team").symlink_to(outside / "team")
    (harness.workspace / "a.txt").write_text("a")
    for url, link in (
        ("out.git", "out.git"),
        ("in.git", "in.git"),
        ("team/svc.git", "team"),
        (str(remotes / "out.git"), "out.git"),
    ):
        result = await harness.run([one_step("publish:git", remoteUrl=url, scaffold=scaffold)])
        assert result.error is not None and result.error.name == "UnsafePathError", url
        assert result.error.message == (
            f"remoteUrl {url!r}: {remotes / link} is a symbolic link to nothing; publish:git "
            "never makes a repository through a link: remove the link or give another path"
        )
    assert listing(outside) == []
    assert listing(remotes) == ["in.git", "out.git", "team"]


async def test_a_link_to_nothing_put_there_after_the_check_is_refused(
    harness: Any, tmp_path: Path, remotes: Path, one_step: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The link appears between the check of remoteUrl and the making of the
    # repository (another process): the repository is not made through it.
    from falsework.actions.builtin import publish

    outside = make_dirs(tmp_path / "outside", remotes)[0]
    real = publish.allowed_local_remote

    def then_link(policy: Any, url: str) -> Path | None:
        path = real(policy, url)
        (remotes / "svc.git").symlink_to(outside / "svc.git")
        return path

    monkeypatch.setattr(publish, "allowed_local_remote", then_link)
    (harness.workspace / "a.txt").write_text("a")
    result = await harness.run([one_step("publish:git", remoteUrl="svc.git")])
    assert result.error is not None and result.error.name == "UnsafePathError"
    assert f"{remotes / 'svc.git'} is a symbolic link to nothing" in result.error.message
    assert listing(outside) == []


@pytest.mark.parametrize(
    ("url", "link"),
    [("team/svc.git", "team"), ("team/sub/svc.git", "team"), ("svc.git", "svc.git")],
)
async def test_a_link_put_on_the_way_after_the_check_is_refused(
    harness: Any,
    tmp_path: Path,
    remotes: Path,
    one_step: Any,
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    link: str,
) -> None:
    # Between the last check of remoteUrl and the making of the repository another
    # process swaps a folder on the way (or the repository's own name) for a link
    # to a real folder elsewhere, here one holding a repository: neither a folder
    # nor a repository is made or pushed to through it; the error names the link.
    from falsework.actions.builtin import publish

    outside = make_dirs(tmp_path / "outside", remotes / "team")[0]
    for repo in ("svc.git", "sub/svc.git"):
        git("init", "-q", "--bare", "-b", "main", str(outside / repo), cwd=tmp_path)
    real = publish.below_root

    def then_link(policy: Any, url: str, path: Path) -> Any:
        found = real(policy, url, path)
        (remotes / "team").rmdir()
        (remotes / link).symlink_to(outside)
        return found

    monkeypatch.setattr(publish, "below_root", then_link)
    (harness.workspace / "a.txt").write_text("a")
    result = await harness.run([one_step("publish:git", remoteUrl=url)])
    assert result.error is not None and result.error.name == "UnsafePathError"
    assert result.error.message == (
        f"remoteUrl {str(remotes / url)!r}: {remotes / link} is a symbolic link; publish:git "
        "never makes or pushes to a repository on this machine through a link (it may have "
        f"been put there after the path was checked): give a path with no link below {remotes}"
    )
    assert listing(outside) == ["sub", "svc.git"]
    for repo in ("svc.git", "sub/svc.git"):
        assert git("for-each-ref", cwd=outside / repo) == ""


async def test_a_path_into_the_remotes_folder_through_a_link_is_taken_as_its_real_path(
    harness: Any, tmp_path: Path, remotes: Path, one_step: Any
) -> None:
    # remoteUrl names a folder inside the remotes folder through a link that is
    # there when the step starts (a linked home or temporary folder): the link is
    # followed once, and the repository made at its real path, inside
    make_dirs(remotes)
    (tmp_path / "door").symlink_to(remotes)
    (harness.workspace / "a.txt").write_text("a")
    url = str(tmp_path / "door" / "svc.git")
    result = await harness.run([one_step("publish:git", remoteUrl=url)])
    assert result.error is None
    assert listing(remotes) == ["svc.git"]
    assert git("ls-tree", "--name-only", "main", cwd=remotes / "svc.git").strip() == "a.txt"
    # one that leads outside every allowed folder stays refused
    outside = make_dirs(tmp_path / "outside")[0]
    (remotes / "away").symlink_to(outside)
    result = await harness.run([one_step("publish:git", remoteUrl="away/svc.git")])
    assert result.error is not None and result.error.name == "UnsafePathError"
    assert listing(outside) == []


@pytest.mark.parametrize("scaffold", [False, True])
async def test_a_new_repository_is_removed_when_the_commit_fails(
    harness: Any, remotes: Path, one_step: Any, scaffold: bool
) -> None:
    # git refuses an author name made only of '<' and '>': the commit fails after
    # the new repository was made, and the empty repository goes with it.
    (harness.workspace / "a.txt").write_text("a")
    step = one_step("publish:git", remoteUrl="team/svc.git", gitAuthorName="<>", scaffold=scaffold)
    result = await harness.run([step])
    assert result.error is not None and result.error.name == "ActionError"
    assert "git commit failed" in result.error.message
    # and so do the folders it made for it (not the remotes folder, the server's)
    assert listing(remotes) == []
    # only those: a folder that was there stays
    make_dirs(remotes / "team")
    deeper = {**step["input"], "remoteUrl": "team/sub/deeper/svc.git"}
    result = await harness.run([{**step, "input": deeper}])
    assert result.error is not None and "git commit failed" in result.error.message
    assert listing(remotes) == ["team"] and listing(remotes / "team") == []
    # an existing repository is never removed
    git("init", "-q", "--bare", "-b", "main", str(remotes / "kept.git"), cwd=harness.workspace)
    result = await harness.run([{**step, "input": {**step["input"], "remoteUrl": "kept.git"}}])
    assert result.error is not None and "git commit failed" in result.error.message
    assert git("rev-parse", "--is-bare-repository", cwd=remotes / "kept.git") == "true\n"


async def test_the_remotes_folder_itself_is_not_a_repository(
    harness: Any, remotes: Path, one_step: Any
) -> None:
    (harness.workspace / "a.txt").write_text("a")
    for url in (".", str(remotes), "team/.."):
        result = await harness.run([one_step("publish:git", remoteUrl=url)])
        assert result.error is not None and result.error.name == "UnsafePathError"
        assert "names an allowed folder itself" in result.error.message
    # an empty string is left out of the input, as in Backstage: then it is missing
    empty = await harness.run([one_step("publish:git", remoteUrl="")])
    assert empty.error is not None and "input.remoteUrl: Field required" in empty.error.message
    assert not exists(remotes)


async def test_second_push_of_unrelated_history_fails_clearly(
    harness: Any, remotes: Path, one_step: Any
) -> None:
    (harness.workspace / "a.txt").write_text("first run")
    first = await harness.run([one_step("publish:git", remoteUrl="svc.git")])
    assert first.error is None, first.error
    repo = remotes / "svc.git"
    pushed = first.steps["s"]["output"]["commitHash"]

    (harness.workspace / "a.txt").write_text("second run")
    second = await harness.run([one_step("publish:git", remoteUrl="svc.git")])
    assert second.error is not None and second.error.name == "ActionError"
    message = second.error.message
    assert message.startswith(f"Branch 'main' of {repo} already has commits")
    assert "nothing was pushed" in message and "force: true" in message
    assert "hint:" not in message and "error:" not in message and "[rejected]" not in message
    # The remote is untouched.
    assert git("rev-parse", "main", cwd=repo).strip() == pushed
    assert git("show", "main:a.txt", cwd=repo) == "first run"

    forced = await harness.run([one_step("publish:git", remoteUrl="svc.git", force=True)])
    assert forced.error is None, forced.error
    assert git("show", "main:a.txt", cwd=repo) == "second run"
    assert git("rev-list", "--count", "main", cwd=repo).strip() == "1"


def repository_shape(repo: Path) -> dict[str, Any]:
    """What a pushed repository holds, but for the commit's dates: its files, refs,
    HEAD, the tree and message of its branch, its objects, and git's own check."""
    subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=repo, check=True)
    return {
        "files": sorted(
            str(p.relative_to(repo)) for p in repo.rglob("*") if "objects" not in p.parts
        ),
        "refs": git("for-each-ref", "--format=%(refname)", cwd=repo),
        "head": git("symbolic-ref", "HEAD", cwd=repo),
        "tree": git("rev-parse", "main^{tree}", cwd=repo),
        "commit": git("log", "-1", "--format=%an <%ae>|%cn <%ce>|%P|%s", "main", cwd=repo),
        # the commit's id differs (its dates, the step's key): its objects do not
        "objects": sorted(
            line
            for line in git("cat-file", "--batch-all-objects", "--batch-check", cwd=repo).split(
                "\n"
            )
            if " commit " not in line
        ),
        "loose": git("count-objects", cwd=repo).split(",")[0],
    }


async def test_a_new_repository_holds_what_a_push_into_an_empty_one_leaves(
    harness: Any, remotes: Path, one_step: Any
) -> None:
    # A new local remote gets the commit written into it (no push); an existing
    # empty one is pushed to. Both end the same, but for the commit's dates.
    (harness.workspace / "src").mkdir()
    (harness.workspace / "src" / "app.py").write_text("print('hi')\n")
    (harness.workspace / "run.sh").write_text("#!/bin/sh\n")
    (harness.workspace / "run.sh").chmod(0o755)
    (harness.workspace / "link").symlink_to("src/app.py")
    (harness.workspace / ".gitignore").write_text("*.log\n")
    (harness.workspace / "debug.log").write_text("not published")
    pushed_to = remotes / "pushed.git"
    git("init", "-q", "--bare", "-b", "main", str(pushed_to), cwd=harness.workspace)
    author = {"gitAuthorName": "Ada", "gitAuthorEmail": "ada@example.com"}
    for url in ("made.git", "pushed.git"):
        result = await harness.run([one_step("publish:git", remoteUrl=url, **author)])
        assert result.error is None, result.error
        repo = remotes / url
        assert (
            git("rev-parse", "main", cwd=repo).strip() == result.steps["s"]["output"]["commitHash"]
        )
    made = repository_shape(remotes / "made.git")
    assert made == repository_shape(pushed_to)
    assert made["head"] == "refs/heads/main\n" and made["refs"] == "refs/heads/main\n"
    assert git("ls-tree", "-r", "--name-only", "main", cwd=remotes / "made.git").split() == [
        ".gitignore",
        "link",
        "run.sh",
        "src/app.py",
    ]
    assert made["commit"].startswith("Ada <ada@example.com>|Ada <ada@example.com>||initial commit")


async def test_a_branch_made_meanwhile_in_a_new_repository_is_not_overwritten(
    harness: Any, remotes: Path, one_step: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another task creates the same new repository and its branch while this one
    # commits: this one's branch is not set over it; the push says what happened.
    from falsework.actions.builtin import gitpush

    other = harness.workspace.parent / "other"
    other.mkdir()
    (other / "a.txt").write_text("the other task's")
    real = gitpush.commit_folder

    async def racing(policy: Any, git_dir: Path, source: Path, **kw: Any) -> str:
        git("init", "-q", "-b", "main", cwd=other)
        git("add", "-A", cwd=other)
        git("-c", "user.name=o", "-c", "user.email=o@x", "commit", "-qm", "other", cwd=other)
        git("push", "-q", str(remotes / "svc.git"), "main", cwd=other)
        return await real(policy, git_dir, source, **kw)

    monkeypatch.setattr(gitpush, "commit_folder", racing)
    (harness.workspace / "a.txt").write_text("this task's")
    result = await harness.run([one_step("publish:git", remoteUrl="svc.git")])
    assert result.error is not None and result.error.name == "ActionError"
    assert result.error.message.startswith(f"Branch 'main' of {remotes / 'svc.git'} already has")
    assert git("show", "main:a.txt", cwd=remotes / "svc.git") == "the other task's"


async def test_another_branch_of_an_existing_repository(
    harness: Any, remotes: Path, one_step: Any
) -> None:
    (harness.workspace / "a.txt").write_text("a")
    first = await harness.run([one_step("publish:git", remoteUrl="svc.git")])
    assert first.error is None, first.error
    second = await harness.run([one_step("publish:git", remoteUrl="svc.git", branch="dev")])
    assert second.error is None, second.error
    repo = remotes / "svc.git"
    assert git("branch", "--format=%(refname:short)", cwd=repo).split() == ["dev", "main"]


async def test_remote_hook_refusal_is_explained(harness: Any, remotes: Path, one_step: Any) -> None:
    repo = remotes / "guarded.git"
    git("init", "-q", "--bare", str(repo), cwd=harness.workspace)
    hook = repo / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'pushes are frozen' >&2\nexit 1\n")
    hook.chmod(0o755)
    (harness.workspace / "a.txt").write_text("a")
    result = await harness.run([one_step("publish:git", remoteUrl="guarded.git")])
    assert result.error is not None and result.error.name == "ActionError"
    assert result.error.message.startswith(f"{repo} refused the push to branch 'main'")
    assert "Nothing was pushed" in result.error.message
    assert git("branch", cwd=repo) == ""


async def test_failed_push_hides_credentials_in_the_url(harness: Any, one_step: Any) -> None:
    (harness.workspace / "a.txt").write_text("a")
    url = "http://bob:hunter2@127.0.0.1:9/team/svc.git"
    result = await harness.run([one_step("publish:git", remoteUrl=url)])
    # nothing listens on port 9: the one "could not reach" error (no port scan)
    assert result.error is not None and result.error.name == "UnreachableError"
    assert "http://***@127.0.0.1:9/team/svc.git" in result.error.message
    everything = repr(result.io.events) + repr(result.io.steps) + result.error.message
    assert "hunter2" not in everything


async def test_a_git_folder_in_the_workspace_configures_nothing(
    harness: Any, tmp_path: Path, remotes: Path, one_step: Any
) -> None:
    """A `.git` left in the workspace (a skeleton folder named `${{ '.git' }}`,
    an fs:rename) must not run commands: git reads its own temp repository."""
    marker = tmp_path / "ran"
    planted = harness.workspace / ".git"
    (planted / "hooks").mkdir(parents=True)
    (planted / "config").write_text(
        f'[core]\n\tfsmonitor = "touch {marker}; false"\n\thooksPath = hooks\n'
    )
    hook = planted / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    (harness.workspace / "a.txt").write_text("a")
    result = await harness.run([one_step("publish:git", remoteUrl="svc.git")])
    assert result.error is None, result.error
    assert not marker.exists()
    repo = remotes / "svc.git"
    assert git("ls-tree", "-r", "--name-only", "main", cwd=repo).split() == ["a.txt"]
    # The workspace's files are left as they were.
    assert (planted / "config").read_text().startswith("[core]")


async def test_ext_transport_is_never_used(harness: Any, tmp_path: Path, one_step: Any) -> None:
    marker = tmp_path / "ran"
    (harness.workspace / "a.txt").write_text("a")
    result = await harness.run([one_step("publish:git", remoteUrl=f"ext::sh -c touch% {marker}")])
    assert result.error is not None and result.error.name == "ActionError"
    assert not marker.exists()


async def test_existing_folder_that_is_not_a_repository(
    harness: Any, remotes: Path, one_step: Any
) -> None:
    make_dirs(remotes / "notes")
    (remotes / "notes" / "keep.txt").write_text("mine")
    (harness.workspace / "a.txt").write_text("a")
    result = await harness.run([one_step("publish:git", remoteUrl="notes")])
    assert result.error is not None and result.error.name == "ActionError"
    assert result.error.message.startswith(
        f"remoteUrl {remotes / 'notes'} is an existing folder that is not a git repository"
    )
    assert listing(remotes / "notes") == ["keep.txt"]


async def test_scaffold_recording_needs_the_service_from_the_edge(
    harness: Any, remotes: Path, one_step: Any
) -> None:
    # The scaffold service lives above the actions (falsework.updates renders
    # through the runner): a registry built without it, as here, refuses
    # `scaffold: true` before pushing anything, and says where it comes from.
    (harness.workspace / "README.md").write_text("# svc\n")
    result = await harness.run([one_step("publish:git", remoteUrl="svc.git", scaffold=True)])
    assert result.error is not None
    assert "no scaffold service" in str(result.error)
    assert "wiring.action_policies" in str(result.error)
    assert not exists(remotes / "svc.git")
    update = await harness.run([one_step("scaffold:update", remoteUrl=str(remotes / "svc.git"))])
    assert update.error is not None
    assert "scaffold:update: this runner has no scaffold service" in str(update.error)
