"""Bitbucket Cloud, as the forge server plays it: workspaces with their projects and
members, repositories backed by bare git repositories, branches and pull requests.
Request and response shapes are checked against ``specs/bitbucket-cloud.yaml``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.forge.bare import HostedRepo, RepoHost
from support.forge.contract import contract_for
from support.forge.server import Call, Handler, HttpError, Reply


class BitbucketCloud(RepoHost):
    """``tokens`` maps an app password or access token to a user name; ``workspaces``
    maps a workspace to its project keys and its members."""

    api_prefix = "/2.0"
    taken_status = 400

    def __init__(
        self,
        root: Path,
        *,
        tokens: dict[str, str],
        workspaces: dict[str, tuple[list[str], list[str]]],
    ) -> None:
        super().__init__(contract_for("bitbucketCloud"), root, tokens)
        self.workspaces = workspaces

    def taken(self, name: str) -> str:
        return "Repository with this Slug and Owner already exists."

    def error_body(self, status: int, message: str) -> Any:
        return {"type": "error", "error": {"message": message}}

    def repo(self, workspace: str, slug: str) -> HostedRepo:
        found = self.repos.get(f"{workspace}/{slug}".lower())
        if found is None:
            raise HttpError(404, "Repository not found")
        return found

    def add_repo(self, workspace: str, slug: str, project: str) -> HostedRepo:
        return self._create(workspace, slug, {"project": {"key": project}})

    def _member(self, call: Call, workspace: str) -> None:
        if workspace not in self.workspaces:
            raise HttpError(404, f"No workspace with identifier '{workspace}'.")
        if call.user not in self.workspaces[workspace][1]:
            raise HttpError(403, "You do not have access to this workspace")

    def _repo_json(self, repo: HostedRepo) -> dict[str, Any]:
        branches = repo.branches()
        web = f"{self.url}/{repo.full_name}"
        key = repo.settings["project"]["key"]
        return {
            "type": "repository",
            "uuid": f"{{{repo.id:08d}-0000-0000-0000-000000000000}}",
            "full_name": repo.full_name,
            "name": repo.name,
            "slug": repo.name,
            "is_private": repo.settings.get("is_private", True),
            "scm": "git",
            "description": repo.settings.get("description", ""),
            "created_on": "2024-01-01T00:00:00Z",
            "mainbranch": ({"type": "branch", "name": repo.default_branch()} if branches else None),
            "project": {"type": "project", "key": key, "name": key.title()},
            "links": {
                "html": {"href": web},
                "clone": [
                    {"href": f"{web}.git", "name": "https"},
                    {"href": f"git@127.0.0.1:{repo.full_name}.git", "name": "ssh"},
                ],
            },
        }

    def _branch_json(self, repo: HostedRepo, name: str, sha: str) -> dict[str, Any]:
        return {
            "type": "branch",
            "name": name,
            "target": {"type": "commit", "hash": sha},
            "links": {"html": {"href": f"{self.url}/{repo.full_name}/branch/{name}"}},
        }

    def handlers(self) -> dict[str, Handler]:
        return {
            "getRepository": self.get_repo,
            "createRepository": self.create_repo,
            "listBranches": self.list_branches,
            "createBranch": self.create_branch,
            "createPullRequest": self.create_pull,
            "listPullRequests": self.list_pulls,
        }

    def _create(self, workspace: str, slug: str, body: dict[str, Any]) -> HostedRepo:
        return self.new_repo(workspace, slug, body, "main")

    def get_repo(self, call: Call, p: dict[str, str]) -> Reply:
        return Reply(200, self._repo_json(self.repo(p["workspace"], p["repo_slug"])))

    def create_repo(self, call: Call, p: dict[str, str]) -> Reply:
        workspace = p["workspace"]
        self._member(call, workspace)
        body = dict(call.body or {})
        project = (body.get("project") or {}).get("key")
        if project is None:
            projects = self.workspaces[workspace][0]
            body["project"] = {"key": projects[0]}
        elif project not in self.workspaces[workspace][0]:
            raise HttpError(400, f"Project {project} does not exist in workspace {workspace}")
        return Reply(200, self._repo_json(self._create(workspace, p["repo_slug"], body)))

    def list_branches(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["workspace"], p["repo_slug"])
        query = str(call.query.get("q") or "")
        wanted = None
        if query:
            # the one filter the actions use: name = "x"
            field, _, value = query.partition("=")
            if field.strip() != "name":
                raise HttpError(400, f"Unsupported query {query!r}")
            wanted = json.loads(value.strip())
        found = [
            self._branch_json(repo, name, sha)
            for name, sha in repo.branches().items()
            if wanted is None or name == wanted
        ]
        return Reply(200, {"values": found, "pagelen": 10, "size": len(found), "page": 1})

    def create_branch(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["workspace"], p["repo_slug"])
        name, target = call.body["name"], call.body["target"]["hash"]
        branches = repo.branches()
        if name in branches:
            raise HttpError(400, f"BRANCH_ALREADY_EXISTS: {name}")
        sha = branches.get(target) or target
        repo.git("update-ref", f"refs/heads/{name}", sha)
        return Reply(201, self._branch_json(repo, name, sha))

    def create_pull(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["workspace"], p["repo_slug"])
        body = call.body
        source = body["source"]["branch"]["name"]
        target = (body.get("destination") or {}).get("branch", {}).get("name")
        target = target or repo.default_branch()
        branches = repo.branches()
        for name in (source, target):
            if name not in branches:
                raise HttpError(400, f"{name}: No such branch")
        with self._lock:
            number = len(repo.pulls) + 1
            pull = {
                "id": number,
                "title": body["title"],
                "summary": (body.get("summary") or {}).get("raw"),
                "source": source,
                "destination": target,
                "state": body.get("state", "OPEN"),
                "draft": bool(body.get("draft", False)),
                "author": call.user,
            }
            repo.pulls.append(pull)
        return Reply(201, self._pull_json(repo, pull))

    def _pull_json(self, repo: HostedRepo, pull: dict[str, Any]) -> dict[str, Any]:
        number = pull["id"]
        return {
            "type": "pullrequest",
            "id": number,
            "title": pull["title"],
            "state": pull["state"],
            "draft": pull.get("draft", False),
            "summary": {"raw": pull["summary"]},
            "source": {"branch": {"name": pull["source"]}},
            "destination": {"branch": {"name": pull["destination"]}},
            "close_source_branch": False,
            "author": {"type": "user", "display_name": pull["author"]},
            "links": {"html": {"href": f"{self.url}/{repo.full_name}/pull-requests/{number}"}},
        }

    def list_pulls(self, call: Call, p: dict[str, str]) -> Reply:
        """Bitbucket's query language, as far as equality of the fields below goes; as
        on bitbucket.org, drafts are left out unless the query names ``draft``."""
        repo = self.repo(p["workspace"], p["repo_slug"])
        query = str(call.query.get("q") or "")
        terms: dict[str, set[str]] = {}
        for field, value in re.findall(r'([\w.]+)\s*=\s*("[^"]*"|true|false)', query):
            terms.setdefault(field, set()).add(value.strip('"'))
        state = call.query.get("state")
        if state:
            terms.setdefault("state", set()).add(str(state))
        fields: dict[str, Callable[[dict[str, Any]], str]] = {
            "state": lambda x: x["state"],
            "source.branch.name": lambda x: x["source"],
            "destination.branch.name": lambda x: x["destination"],
            "draft": lambda x: "true" if x.get("draft") else "false",
        }
        unknown = set(terms) - set(fields)
        if unknown:
            raise HttpError(400, f"Unsupported query fields {sorted(unknown)}")
        terms.setdefault("draft", {"false"})
        found = [
            self._pull_json(repo, x)
            for x in repo.pulls
            if all(fields[f](x) in wanted for f, wanted in terms.items())
        ]
        return Reply(200, {"values": found, "pagelen": 10, "size": len(found), "page": 1})
