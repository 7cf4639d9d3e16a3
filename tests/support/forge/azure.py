"""Azure DevOps, as the forge server plays it: organizations with their projects and
members, Git repositories backed by bare git repositories (cloned from
``/org/project/_git/repo``). Request and response shapes are checked against
``specs/azure.yaml``."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from support.forge.bare import HostedRepo, RepoHost
from support.forge.contract import contract_for
from support.forge.server import Call, Handler, HttpError, Reply


class AzureDevOps(RepoHost):
    """``tokens`` maps a personal access token to a user name; ``organizations`` maps an
    organization to its projects and its members."""

    api_prefix = ""

    def __init__(
        self,
        root: Path,
        *,
        tokens: dict[str, str],
        organizations: dict[str, tuple[list[str], list[str]]],
    ) -> None:
        super().__init__(contract_for("azure"), root, tokens)
        self.organizations = organizations

    def taken(self, name: str) -> str:
        return f"TF400948: A Git repository with the name {name} already exists."

    def git_route(self, path: str) -> tuple[str, str, str] | None:
        """``/org/project/_git/repo/info/refs`` → ``("org/project", "repo", "/info/refs")``."""
        head, sep, tail = path.partition("/_git/")
        if not sep:
            return None
        repo, _, rest = tail.partition("/")
        return head.strip("/"), repo, "/" + rest

    def error_body(self, status: int, message: str) -> Any:
        return {"$id": "1", "message": message, "typeKey": "GitRepositoryException"}

    def repo(self, organization: str, project: str, name: str) -> HostedRepo:  # for tests
        found = self.repos.get(f"{organization}/{project}/{name}".lower())
        if found is None:
            raise HttpError(404, f"TF401019: The Git repository {name} does not exist")
        return found

    def handlers(self) -> dict[str, Handler]:
        return {
            "Repositories_Create": self.create_repo,
            "Repositories_Get": self.get_repo,
            "Pull Requests_Get Pull Requests": self.list_pulls,
            "Pull Requests_Create": self.create_pull,
            "Pull Requests_Update": self.update_pull,
        }

    def _member(self, call: Call, org: str, project: str) -> None:
        if org not in self.organizations or call.user not in self.organizations[org][1]:
            raise HttpError(401, "Unauthorized")
        if project not in self.organizations[org][0]:
            raise HttpError(404, f"TF200016: The following project does not exist: {project}.")

    def _find(self, p: dict[str, str]) -> HostedRepo:
        org, project, ident = p["organization"], p["project"], p["repositoryId"]
        for repo in self.repos.values():
            if repo.owner == f"{org}/{project}" and ident in (repo.name, repo.settings["id"]):
                return repo
        raise HttpError(
            404,
            f"TF401019: The Git repository with name or identifier {ident} "
            "does not exist or you do not have permissions",
        )

    def _repo_json(self, repo: HostedRepo) -> dict[str, Any]:
        org, project = repo.owner.split("/")
        web = f"{self.url}/{org}/{project}/_git/{repo.name}"
        out = {
            "id": repo.settings["id"],
            "name": repo.name,
            "url": f"{self.url}/{org}/{project}/_apis/git/repositories/{repo.settings['id']}",
            "project": {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, project)),
                "name": project,
                "url": f"{self.url}/{org}/_apis/projects/{project}",
                "state": "wellFormed",
                "visibility": "private",
            },
            "remoteUrl": web,
            "sshUrl": f"git@ssh.127.0.0.1:v3/{org}/{project}/{repo.name}",
            "webUrl": web,
            "size": 0,
            "isDisabled": False,
        }
        if repo.branches():
            out["defaultBranch"] = f"refs/heads/{repo.default_branch()}"
        return out

    def add_repo(self, org: str, project: str, name: str) -> HostedRepo:
        ident = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{org}/{project}/{name}"))
        return self.new_repo(f"{org}/{project}", name, {"id": ident}, "main")

    def create_repo(self, call: Call, p: dict[str, str]) -> Reply:
        self._member(call, p["organization"], p["project"])
        repo = self.add_repo(p["organization"], p["project"], call.body["name"])
        return Reply(201, self._repo_json(repo))

    def get_repo(self, call: Call, p: dict[str, str]) -> Reply:
        self._member(call, p["organization"], p["project"])
        return Reply(200, self._repo_json(self._find(p)))

    def _pull_json(self, repo: HostedRepo, pull: dict[str, Any]) -> dict[str, Any]:
        base = self._repo_json(repo)["url"]
        return {
            **{k: v for k, v in pull.items() if k != "labels"},
            "url": f"{base}/pullRequests/{pull['pullRequestId']}",
            "creationDate": "2024-01-01T00:00:00Z",
        }

    def list_pulls(self, call: Call, p: dict[str, str]) -> Reply:
        self._member(call, p["organization"], p["project"])
        repo = self._find(p)
        q = call.query
        found = [
            self._pull_json(repo, x)
            for x in repo.pulls
            if q.get("searchCriteria.sourceRefName") in (None, x["sourceRefName"])
            and q.get("searchCriteria.targetRefName") in (None, x["targetRefName"])
            and q.get("searchCriteria.status", "active") in ("all", x["status"])
        ]
        return Reply(200, {"value": found, "count": len(found)})

    def create_pull(self, call: Call, p: dict[str, str]) -> Reply:
        self._member(call, p["organization"], p["project"])
        repo = self._find(p)
        body = call.body
        branches = repo.branches()
        for key in ("sourceRefName", "targetRefName"):
            if body[key].removeprefix("refs/heads/") not in branches:
                raise HttpError(400, f"TF401398: The pull request cannot be activated: {key}")
        for x in repo.pulls:
            same = (x["sourceRefName"], x["targetRefName"]) == (
                body["sourceRefName"],
                body["targetRefName"],
            )
            if same and x["status"] == "active":
                raise HttpError(
                    409,
                    "TF401179: An active pull request for the source and "
                    "target branch already exists.",
                )
        with self._lock:
            pull = {
                "pullRequestId": len(repo.pulls) + 1,
                "status": "active",
                "isDraft": bool(body.get("isDraft", False)),
                "reviewers": list(body.get("reviewers") or []),
                **{k: v for k, v in body.items() if k not in ("isDraft", "reviewers")},
            }
            repo.pulls.append(pull)
        return Reply(201, self._pull_json(repo, pull))

    def update_pull(self, call: Call, p: dict[str, str]) -> Reply:
        self._member(call, p["organization"], p["project"])
        repo = self._find(p)
        for pull in repo.pulls:
            if str(pull["pullRequestId"]) == p["pullRequestId"]:
                pull.update(call.body)
                return Reply(200, self._pull_json(repo, pull))
        raise HttpError(404, "TF401180: The requested pull request was not found.")
