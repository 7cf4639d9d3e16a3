"""Bitbucket Server (Data Center), as the forge server plays it: projects with the users
that may create repositories in them, repositories backed by bare git repositories
(cloned from ``/scm/PROJECT/repo.git``), branches, pull requests and Git LFS.
Request and response shapes are checked against ``specs/bitbucket-server.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.forge.bare import HostedRepo, RepoHost
from support.forge.contract import contract_for
from support.forge.server import Call, Handler, HttpError, Reply


class BitbucketServer(RepoHost):
    """``tokens`` maps a token or password to a user name; ``projects`` maps a project
    key to the users that may create repositories in it."""

    api_prefix = "/rest/api/1.0"

    def __init__(
        self, root: Path, *, tokens: dict[str, str], projects: dict[str, list[str]]
    ) -> None:
        super().__init__(contract_for("bitbucketServer"), root, tokens)
        self.projects = projects

    def taken(self, name: str) -> str:
        return f"This repository URL is already taken by '{name}'"

    def repo_dir(self, owner: str, repo: str) -> Path | None:
        # clone URLs are /scm/PROJECT/repo.git: the server's parse gives ("scm", "P/r")
        if owner != "scm":
            return None
        project, _, slug = repo.partition("/")
        return super().repo_dir(project, slug)

    def error_body(self, status: int, message: str) -> Any:
        return {"errors": [{"context": None, "message": message, "exceptionName": None}]}

    def repo(self, project: str, slug: str) -> HostedRepo:
        found = self.repos.get(f"{project}/{slug}".lower())
        if found is None:
            raise HttpError(404, f"Repository {project}/{slug} does not exist.")
        return found

    def add_repo(self, project: str, slug: str) -> HostedRepo:
        return self._create(project, slug, {})

    def _create(self, project: str, slug: str, body: dict[str, Any]) -> HostedRepo:
        return self.new_repo(project, slug, body, body.get("defaultBranch") or "master")

    def _repo_json(self, repo: HostedRepo) -> dict[str, Any]:
        browse = f"{self.url}/projects/{repo.owner}/repos/{repo.name}/browse"
        return {
            "id": repo.id,
            "slug": repo.name,
            "name": repo.name,
            "description": repo.settings.get("description", ""),
            "scmId": "git",
            "state": "AVAILABLE",
            "statusMessage": "Available",
            "forkable": True,
            "public": bool(repo.settings.get("public", False)),
            "defaultBranch": repo.settings.get("defaultBranch", "master"),
            "project": {"key": repo.owner, "id": 1, "name": repo.owner.title()},
            "links": {
                "clone": [
                    {"href": f"{self.url}/scm/{repo.owner}/{repo.name}.git", "name": "http"},
                    {"href": f"ssh://git@127.0.0.1/{repo.owner}/{repo.name}.git", "name": "ssh"},
                ],
                "self": [{"href": browse}],
            },
        }

    def _branch_json(self, repo: HostedRepo, name: str, sha: str) -> dict[str, Any]:
        return {
            "id": f"refs/heads/{name}",
            "displayId": name,
            "type": "BRANCH",
            "latestCommit": sha,
            "latestChangeset": sha,
            "isDefault": name == repo.default_branch(),
        }

    def handlers(self) -> dict[str, Handler]:
        return {
            "createRepository": self.create_repo,
            "getRepository": self.get_repo,
            "getDefaultBranch": self.default_branch,
            "getBranches": self.list_branches,
            "createBranch": self.create_branch,
            "createPullRequest": self.create_pull,
            "getPage": self.list_pulls,
            "enableLfs": self.enable_lfs,
        }

    def create_repo(self, call: Call, p: dict[str, str]) -> Reply:
        project = p["projectKey"]
        if project not in self.projects:
            raise HttpError(404, f"Project {project} does not exist.")
        if call.user not in self.projects[project]:
            raise HttpError(401, "You are not permitted to create repositories in this project.")
        body = dict(call.body)
        slug = body.pop("name").lower().replace(" ", "-")
        return Reply(201, self._repo_json(self._create(project, slug, body)))

    def get_repo(self, call: Call, p: dict[str, str]) -> Reply:
        return Reply(200, self._repo_json(self.repo(p["projectKey"], p["repositorySlug"])))

    def default_branch(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["projectKey"], p["repositorySlug"])
        name = repo.default_branch()
        sha = repo.branches().get(name)
        if sha is None:
            raise HttpError(404, "The repository has no default branch yet.")
        return Reply(200, self._branch_json(repo, name, sha))

    def list_branches(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["projectKey"], p["repositorySlug"])
        text = str(call.query.get("filterText") or "")
        found = [
            self._branch_json(repo, name, sha)
            for name, sha in repo.branches().items()
            if text in name
        ]
        page = {"values": found, "size": len(found), "limit": 25, "start": 0, "isLastPage": True}
        return Reply(200, page)

    def create_branch(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["projectKey"], p["repositorySlug"])
        name, start = call.body["name"], call.body["startPoint"]
        branches = repo.branches()
        if name in branches:
            raise HttpError(409, f"Branch '{name}' already exists in repository")
        sha = branches.get(start.removeprefix("refs/heads/"), start)
        repo.git("update-ref", f"refs/heads/{name}", sha)
        return Reply(200, self._branch_json(repo, name, sha))

    def create_pull(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["projectKey"], p["repositorySlug"])
        body = call.body
        branches = repo.branches()
        source = body["fromRef"]["id"].removeprefix("refs/heads/")
        target = body["toRef"]["id"].removeprefix("refs/heads/")
        for name in (source, target):
            if name not in branches:
                raise HttpError(409, f"Repository ref '{name}' does not exist")
        if any(
            (x["source"], x["target"], x["state"]) == (source, target, "OPEN") for x in repo.pulls
        ):
            raise HttpError(409, "Only one pull request may be open for a given source and target")
        with self._lock:
            number = len(repo.pulls) + 1
            pull = {
                "id": number,
                "title": body["title"],
                "description": body.get("description"),
                "source": source,
                "target": target,
                "reviewers": [r["user"]["name"] for r in body.get("reviewers") or []],
                "author": call.user,
                "draft": bool(body.get("draft", False)),
                "state": "OPEN",
            }
            repo.pulls.append(pull)
        return Reply(201, self._pull_json(repo, pull))

    def _pull_json(self, repo: HostedRepo, pull: dict[str, Any]) -> dict[str, Any]:
        number, source, target = pull["id"], pull["source"], pull["target"]
        url = f"{self.url}/projects/{repo.owner}/repos/{repo.name}/pull-requests/{number}"
        answer = {
            "id": number,
            "version": 0,
            "title": pull["title"],
            "state": pull["state"],
            "open": pull["state"] == "OPEN",
            "closed": pull["state"] != "OPEN",
            "locked": False,
            "draft": pull["draft"],
            "fromRef": {"id": f"refs/heads/{source}", "displayId": source},
            "toRef": {"id": f"refs/heads/{target}", "displayId": target},
            "author": {"user": {"name": pull["author"]}, "role": "AUTHOR"},
            "reviewers": [{"user": {"name": n}, "role": "REVIEWER"} for n in pull["reviewers"]],
            "links": {"self": [{"href": url}]},
        }
        if pull["description"] is not None:
            answer["description"] = pull["description"]
        return answer

    def list_pulls(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["projectKey"], p["repositorySlug"])
        at = call.query.get("at")
        side = "target" if call.query.get("direction", "INCOMING") == "INCOMING" else "source"
        state = call.query.get("state", "OPEN")
        found = [
            self._pull_json(repo, x)
            for x in repo.pulls
            if (at is None or f"refs/heads/{x[side]}" == at)
            and (state == "ALL" or x["state"] == state)
        ]
        page = {"values": found, "size": len(found), "limit": 25, "start": 0, "isLastPage": True}
        return Reply(200, page)

    def enable_lfs(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["projectKey"], p["repositorySlug"])
        repo.settings["lfs"] = True
        return Reply(204)
