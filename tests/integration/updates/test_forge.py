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

from falsework.actions import ActionRegistry
from falsework.actions.integrations import ForgeHost, Integrations
from falsework.actions.policies import PublishPolicy, SourcePolicy, UpdatePolicy
from falsework.runner import LocalTask, MemoryTaskIO, TaskFailedError, WorkflowRunner
from falsework.templating import Renderer
from support.forge import ForgeServer, GitHub
from support.forge.harness import GIT, LOOPBACK, clone
from support.forge.harness import git as bare_git
from support.updates import TemplateRepo, git

TOKEN = "ghs_update_bot"


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[ForgeServer]:
    host = GitHub(tmp_path / "forge", tokens={TOKEN: "robot"}, owners={"acme": "Organization"})
    server = ForgeServer(host).start()
    yield server
    server.stop()
    assert server.take_violations() == []


def make_runner(tmp_path: Path, forge: ForgeServer) -> WorkflowRunner:
    """A server's runner: the forge as a configured GitHub, loopback allowed for
    it, template repositories read only under the test's folder."""
    api = forge.url + forge.host.api_prefix
    github = ForgeHost("github", forge.netloc, api, TOKEN, None, (), ("*",))
    integrations = Integrations(hosts=(github,), egress=LOOPBACK, git=GIT)
    publish = PublishPolicy(remotes_dir=tmp_path / "remotes", roots=(tmp_path,), git=GIT)
    policies = (integrations, LOOPBACK, GIT, SourcePolicy(git=GIT), publish)
    update = UpdatePolicy(publish, integrations, (tmp_path / "templates",), policies)
    registry = ActionRegistry.builtin(settings=[*policies, update])
    return WorkflowRunner(registry, Renderer(), work_dir=tmp_path / "work", step_timeout=120)


async def run(runner: WorkflowRunner, steps: list[dict[str, Any]], **kw: Any) -> MemoryTaskIO:
    spec = {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "steps": steps,
        "output": {},
        "parameters": kw.pop("parameters", {}),
        "user": {"ref": "user:default/guest"},
        "templateInfo": kw.pop("template_info", {"entityRef": "template:default/update"}),
    }
    io = MemoryTaskIO()
    try:
        await runner.run(LocalTask(spec=spec, secrets={}), io)
    except TaskFailedError as exc:
        raise AssertionError(f"{exc}: {[b.get('message') for _, b in io.events]}") from exc
    return io


def update_step(forge: ForgeServer, **extra: Any) -> dict[str, Any]:
    repo_url = f"{forge.netloc}?owner=acme&repo=payments"
    return {"id": "update", "action": "scaffold:update", "input": {"repoUrl": repo_url, **extra}}


def output(io: MemoryTaskIO) -> dict[str, Any]:
    return dict(io.steps["update"]["output"])


async def test_updates_as_pull_requests(
    tmp_path: Path, forge: ForgeServer, template_repo: TemplateRepo
) -> None:
    github = forge.host
    assert isinstance(github, GitHub)
    payments = github.add_repo("acme", "payments")
    runner = make_runner(tmp_path, forge)
    # created by a real task from v1: publish:git with scaffold recording, to the forge
    document = yaml.safe_load((template_repo.folder / "template.yaml").read_text())
    steps = document["spec"]["steps"]
    steps[1]["input"]["token"] = TOKEN
    await run(
        runner,
        steps,
        parameters={
            "name": "payments",
            "owner": "team-a",
            "remote": f"{forge.url}/acme/payments.git",
        },
        template_info={
            "entityRef": "template:default/service",
            "baseUrl": (template_repo.folder / "template.yaml").as_uri(),
        },
    )
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
