"""Gitea, as the forge server plays it: users, organizations (with the users that may
create repositories in them) and repositories backed by bare git repositories.
Request and response shapes are checked against ``specs/gitea.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.forge.bare import HostedRepo, RepoHost
from support.forge.contract import contract_for
from support.forge.server import Call, Handler, HttpError, Reply


class Gitea(RepoHost):
    """``tokens`` maps a password or token to a user name; ``orgs`` maps an organization
    to the users that may create repositories in it."""

    api_prefix = "/api/v1"

    def __init__(
        self, root: Path, *, tokens: dict[str, str], users: list[str], orgs: dict[str, list[str]]
    ) -> None:
        super().__init__(contract_for("gitea"), root, tokens)
        self.users = users
        self.orgs = orgs

    def taken(self, name: str) -> str:
        return "The repository with the same name already exists."

    def error_body(self, status: int, message: str) -> Any:
        return {"message": message, "url": f"{self.url}/api/swagger"}

    def repo(self, owner: str, name: str) -> HostedRepo:
        found = self.repos.get(f"{owner}/{name}".lower())
        if found is None:
            raise HttpError(404, "The target couldn't be found.")
        return found

    def _user(self, login: str) -> dict[str, Any]:
        return {
            "id": abs(hash(login)) % 10000,
            "login": login,
            "full_name": login.title(),
            "email": f"{login}@forge.test",
            "avatar_url": f"{self.url}/avatars/{login}",
            "html_url": f"{self.url}/{login}",
            "is_admin": False,
        }

    def _repo_json(self, repo: HostedRepo) -> dict[str, Any]:
        branches = repo.branches()
        return {
            "id": repo.id,
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": self._user(repo.owner),
            "private": bool(repo.settings.get("private", False)),
            "empty": not branches,
            "clone_url": f"{self.url}/{repo.full_name}.git",
            "html_url": f"{self.url}/{repo.full_name}",
            "ssh_url": f"git@127.0.0.1:{repo.full_name}.git",
            "default_branch": repo.default_branch() if branches else "main",
            "description": repo.settings.get("description", ""),
            "created_at": "2024-01-01T00:00:00Z",
        }

    def handlers(self) -> dict[str, Handler]:
        return {
            "userGetCurrent": self.current_user,
            "createCurrentUserRepo": self.create_user_repo,
            "orgGet": self.get_org,
            "createOrgRepo": self.create_org_repo,
            "repoGet": self.get_repo,
            "repoListPullRequests": self.list_pulls,
            "repoCreatePullRequest": self.create_pull,
        }

    def current_user(self, call: Call, p: dict[str, str]) -> Reply:
        return Reply(200, self._user(call.user or ""))

    def get_org(self, call: Call, p: dict[str, str]) -> Reply:
        if p["org"] not in self.orgs:
            raise HttpError(404, "GetOrgByName")
        org = p["org"]
        return Reply(
            200,
            {
                "id": 50,
                "name": org,
                "username": org,
                "full_name": org.title(),
                "visibility": "public",
            },
        )

    def _create(self, owner: str, body: dict[str, Any]) -> Reply:
        settings = {k: v for k, v in body.items() if k != "name"}
        repo = self.new_repo(owner, body["name"], settings, body.get("default_branch", "main"))
        return Reply(201, self._repo_json(repo))

    def create_user_repo(self, call: Call, p: dict[str, str]) -> Reply:
        return self._create(call.user or "", call.body)

    def create_org_repo(self, call: Call, p: dict[str, str]) -> Reply:
        org = p["org"]
        if org not in self.orgs:
            raise HttpError(404, "GetOrgByName")
        if call.user not in self.orgs[org]:
            raise HttpError(403, "Given user is not allowed to create repository in organization.")
        return self._create(org, call.body)

    def get_repo(self, call: Call, p: dict[str, str]) -> Reply:
        return Reply(200, self._repo_json(self.repo(p["owner"], p["repo"])))

    def _pull_json(self, repo: HostedRepo, pull: dict[str, Any]) -> dict[str, Any]:
        branches = repo.branches()

        def side(ref: str) -> dict[str, Any]:
            sha = branches.get(ref, "0" * 40)
            return {"label": ref, "ref": ref, "sha": sha, "repo_id": repo.id}

        return {
            "id": 900 + pull["number"],
            "number": pull["number"],
            "title": pull["title"],
            "body": pull["body"],
            "state": pull["state"],
            # Gitea's work-in-progress prefixes (WORK_IN_PROGRESS_PREFIXES' default)
            "draft": pull["title"].startswith(("WIP:", "[WIP]")),
            "html_url": f"{self.url}/{repo.full_name}/pulls/{pull['number']}",
            "head": side(pull["head"]),
            "base": side(pull["base"]),
            "user": self._user(pull["author"]),
            "created_at": "2024-01-01T00:00:00Z",
        }

    def list_pulls(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["owner"], p["repo"])
        state = call.query.get("state", "open")
        page, limit = int(call.query.get("page", 1)), int(call.query.get("limit", 30))
        found = [x for x in repo.pulls if state == "all" or x["state"] == state]
        chunk = found[(page - 1) * limit : page * limit]
        return Reply(200, [self._pull_json(repo, x) for x in chunk])

    def create_pull(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["owner"], p["repo"])
        body = call.body
        branches = repo.branches()
        if body["head"] not in branches or body["base"] not in branches:
            raise HttpError(404, "The target couldn't be found.")
        for x in repo.pulls:
            if (x["head"], x["base"], x["state"]) == (body["head"], body["base"], "open"):
                raise HttpError(
                    409, f"pull request already exists for these targets [id: {x['number']}]"
                )
        with self._lock:
            pull = {
                "number": len(repo.pulls) + 1,
                "title": body["title"],
                "body": body.get("body", ""),
                "head": body["head"],
                "base": body["base"],
                "state": "open",
                "author": call.user or "",
            }
            repo.pulls.append(pull)
        return Reply(201, self._pull_json(repo, pull))
