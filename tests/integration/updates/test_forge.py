"""scaffold:update against the loopback GitHub (tests/support/forge): a repository
made from v1 of a template with scaffold recording, team commits on it, then
updates as pull requests: one with a conflict (a draft listing it), reruns that
reuse the branch and the pull request, a squash-merged update, a rejected
(closed) one, and the next update from what the branch really holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.forge import ForgeServer, GitHub
from support.forge.harness import clone
from support.forge.harness import git as bare_git
from support.update_runs import TOKEN, create_from_v1, make_runner, output, run
from support.updates import TemplateRepo, git


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[ForgeServer]:
    host = GitHub(tmp_path / "forge", tokens={TOKEN: "robot"}, owners={"acme": "Organization"})
    server = ForgeServer(host).start()
    yield server
    server.stop()
    assert server.take_violations() == []


def update_step(forge: ForgeServer, **extra: Any) -> dict[str, Any]:
    repo_url = f"{forge.netloc}?owner=acme&repo=payments"
    return {"id": "update", "action": "scaffold:update", "input": {"repoUrl": repo_url, **extra}}


async def test_updates_as_pull_requests(
    tmp_path: Path, forge: ForgeServer, template_repo: TemplateRepo
) -> None:
    github = forge.host
    assert isinstance(github, GitHub)
    payments = github.add_repo("acme", "payments")
    runner = make_runner(tmp_path, forge)
    await create_from_v1(runner, template_repo, f"{forge.url}/acme/payments.git")
    work = clone(payments.path, tmp_path / "team", "main")
    (work / "README.md").write_text("# payments (team)\n\nOwned by team-a.\n")
    git("commit", "-qam", "team: README", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)

    # v3 changes README's title too: a conflict, so a draft listing the file
    first = output(await run(runner, [update_step(forge)]))
    assert first["fromVersion"] == "v1" and first["version"] == "v3"
    assert first["branch"] == "falsework/update/service-v3"
    assert first["conflicts"] == ["README.md"]
    assert first["pullRequestNumber"] == 1
    assert first["scaffold"]["version"] == "v1"  # what the branch holds until merged
    assert first["scaffold"]["update"] == {
        "version": "v3",
        "branch": "falsework/update/service-v3",
        "commit": first["commit"],
        "conflicts": ["README.md"],
        "pullRequestUrl": f"{forge.url}/acme/payments/pull/1",
    }
    (pull,) = payments.pulls
    assert pull.title == "[conflicts] Update template:default/service from v1 to v3"
    assert pull.draft is True and "`README.md`" in pull.body
    assert (pull.head, pull.base) == ("falsework/update/service-v3", "main")
    pr = clone(payments.path, tmp_path / "pr", "falsework/update/service-v3")
    assert (
        (pr / "README.md")
        .read_text()
        .startswith(
            "<<<<<<< project\n# payments (team)\n=======\n# payments service\n>>>>>>> template-v3\n"
        )
    )
    assert (pr / "Dockerfile").read_text() == "FROM python:3.12\n"
    assert (
        yaml.safe_load((pr / ".falsework/scaffold.yaml").read_text())["template"]["version"] == "v3"
    )

    # a rerun (a retry, a recovery) makes the same commit and reuses branch and PR
    again = output(await run(runner, [update_step(forge)]))
    assert again["commit"] == first["commit"] and again["pullRequestNumber"] == 1
    assert len(payments.pulls) == 1
    branches = bare_git(payments.path, "branch", "--format=%(refname:short)").split()
    assert sorted(branches) == ["falsework/pristine", "falsework/update/service-v3", "main"]

    # rejected: closed and its branch deleted; v2 instead, squash-merged
    payments.pulls[0].state = "closed"
    bare_git(payments.path, "branch", "-D", "falsework/update/service-v3")
    second = output(await run(runner, [update_step(forge, to="v2")]))
    assert second["conflicts"] == [] and second["pullRequestNumber"] == 2
    assert payments.pulls[1].draft is False
    squash = clone(payments.path, tmp_path / "squash", "main")
    git("checkout", "-q", "origin/falsework/update/service-v2", "--", ".", cwd=squash)
    git("commit", "-qm", "Update to v2 (squashed)", cwd=squash)
    git("push", "-q", "origin", "main", cwd=squash)
    assert (squash / "README.md").read_text() == "# payments (team)\n\nOwned by team-a.\n"

    # the next update starts from v2, what main holds: only v3's change is merged
    third = output(await run(runner, [update_step(forge)]))
    assert third["fromVersion"] == "v2" and third["version"] == "v3"
    assert third["branch"] == "falsework/update/service-v3" and third["pullRequestNumber"] == 3
    assert third["conflicts"] == ["README.md"]
    final = clone(payments.path, tmp_path / "final", "falsework/update/service-v3")
    assert (final / "ci.yml").read_text() == "steps:\n  - run: make lint\n  - run: make test\n"

    # resolved and merged: up to date, nothing pushed, no pull request
    (final / "README.md").write_text("# payments (team) service\n\nOwned by team-a.\n")
    git("commit", "-qam", "resolve", cwd=final)
    git("push", "-q", "origin", "HEAD:main", cwd=final)
    done = output(await run(runner, [update_step(forge)]))
    scaffold = done.pop("scaffold")
    assert done == {"upToDate": True, "fromVersion": "v3", "version": "v3"}
    assert scaffold["repository"] == f"{forge.url}/acme/payments.git#main"
    assert (scaffold["templateRef"], scaffold["version"]) == ("template:default/service", "v3")
    assert "update" not in scaffold
    assert len(payments.pulls) == 3
