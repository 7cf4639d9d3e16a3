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

    def repo(self, organization: str, project: str, name: str) -> HostedRepo:
        found = self.repos.get(f"{organization}/{project}/{name}".lower())
        if found is None:
            raise HttpError(404, f"TF401019: The Git repository {name} does not exist")
        return found

    def handlers(self) -> dict[str, Handler]:
        return {"Repositories_Create": self.create_repo}

    def create_repo(self, call: Call, p: dict[str, str]) -> Reply:
        org, project = p["organization"], p["project"]
        if org not in self.organizations or call.user not in self.organizations[org][1]:
            raise HttpError(401, "Unauthorized")
        if project not in self.organizations[org][0]:
            raise HttpError(404, f"TF200016: The following project does not exist: {project}.")
        repo = self.new_repo(f"{org}/{project}", call.body["name"], {}, "main")
        web = f"{self.url}/{org}/{project}/_git/{repo.name}"
        ident = str(uuid.uuid5(uuid.NAMESPACE_URL, web))
        return Reply(
            201,
            {
                "id": ident,
                "name": repo.name,
                "url": f"{self.url}/{org}/{project}/_apis/git/repositories/{ident}",
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
            },
        )
