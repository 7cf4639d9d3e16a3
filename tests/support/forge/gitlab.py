"""GitLab, as the forge server plays it: users, groups (nested), projects backed by bare
git repositories, branches, protections, CI/CD variables, members and merge requests.
Request and response shapes are checked against ``specs/gitlab.yaml`` (see its header
for where it comes from); this module only keeps state.
"""

from __future__ import annotations

import itertools
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from support.forge.bare import BareRepo
from support.forge.contract import contract_for
from support.forge.server import Call, Handler, HttpError, Reply


@dataclass
class Project(BareRepo):
    id: int
    namespace: str
    name: str
    path: Path  # the bare repository
    settings: dict[str, Any]
    members: dict[int, int] = field(default_factory=dict)  # user id -> access level
    protected: dict[str, dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    merge_requests: list[dict[str, Any]] = field(default_factory=list)
    approvers: list[str] = field(default_factory=list)  # eligible in its approval rules

    @property
    def full_path(self) -> str:
        return f"{self.namespace}/{self.name}"


class GitLab:
    """``tokens`` maps a token to a user name; ``groups`` maps a group's full path
    (``acme``, ``acme/platform``) to the user names that may create projects in it."""

    api_prefix = "/api/v4"

    def __init__(
        self,
        root: Path,
        *,
        tokens: dict[str, str],
        users: list[str],
        groups: dict[str, list[str]] | None = None,
    ) -> None:
        self.contract = contract_for("gitlab")
        self.root = root
        self.tokens = tokens
        self.users = {name: i + 1 for i, name in enumerate(users)}
        self.groups = {
            path: (100 + i, members) for i, (path, members) in enumerate((groups or {}).items())
        }
        self.projects: dict[str, Project] = {}
        self.url = "http://forge.invalid"
        self._ids = itertools.count(500)
        self._lock = threading.RLock()

    def bind(self, url: str) -> None:
        self.url = url

    def user_of(self, token: str) -> str | None:
        return self.tokens.get(token)

    def repo_dir(self, owner: str, repo: str) -> Path | None:
        found = self.projects.get(f"{owner}/{repo}".lower())
        return found.path if found else None

    def error_body(self, status: int, message: str) -> Any:
        return {"message": f"{status} {message}" if status == 404 else message}

    def add_project(self, namespace: str, name: str, **settings: Any) -> Project:
        with self._lock:
            return self._create(namespace, name, settings)

    def project(self, ident: str) -> Project:
        ident = unquote(ident)
        for project in self.projects.values():
            if ident.lower() == project.full_path.lower() or ident == str(project.id):
                return project
        raise HttpError(404, "Project Not Found")

    # -- rendering ----------------------------------------------------------
    def _user(self, name: str) -> dict[str, Any]:
        return {
            "id": self.users[name],
            "username": name,
            "name": name.title(),
            "state": "active",
            "web_url": f"{self.url}/{name}",
        }

    def _namespace(self, path: str) -> dict[str, Any]:
        if path in self.users:
            ident, kind, parent = self.users[path], "user", None
        elif path in self.groups:
            ident, kind = self.groups[path][0], "group"
            above = path.rsplit("/", 1)[0] if "/" in path else None
            parent = self.groups[above][0] if above else None
        else:
            raise HttpError(404, "Namespace Not Found")
        return {
            "id": ident,
            "name": path.rsplit("/", 1)[-1],
            "path": path.rsplit("/", 1)[-1],
            "kind": kind,
            "full_path": path,
            "parent_id": parent,
            "web_url": f"{self.url}/{path}",
        }

    def _project_json(self, project: Project) -> dict[str, Any]:
        s = project.settings
        branches = project.branches()
        web = f"{self.url}/{project.full_path}"
        ns = self._namespace(project.namespace)
        return {
            "id": project.id,
            "name": project.name,
            "path": project.name,
            "path_with_namespace": project.full_path,
            "description": s.get("description"),
            "default_branch": project.default_branch() if branches else None,
            "visibility": s.get("visibility", "private"),
            "http_url_to_repo": f"{web}.git",
            "ssh_url_to_repo": f"git@127.0.0.1:{project.full_path}.git",
            "web_url": web,
            "topics": s.get("topics", []),
            "created_at": "2024-01-01T00:00:00Z",
            "namespace": {k: ns[k] for k in ("id", "name", "path", "kind", "full_path")},
        }

    def _branch_json(self, project: Project, name: str, sha: str) -> dict[str, Any]:
        return {
            "name": name,
            "merged": False,
            "protected": name in project.protected,
            "default": name == project.default_branch(),
            "developers_can_push": False,
            "developers_can_merge": False,
            "can_push": True,
            "web_url": f"{self.url}/{project.full_path}/-/tree/{name}",
            "commit": {
                "id": sha,
                "short_id": sha[:8],
                "title": project.git("log", "-1", "--format=%s", sha).strip(),
                "message": project.git("log", "-1", "--format=%B", sha).strip(),
                "author_name": project.git("log", "-1", "--format=%an", sha).strip(),
                "author_email": project.git("log", "-1", "--format=%ae", sha).strip(),
                "created_at": "2024-01-01T00:00:00Z",
            },
        }

    def _mr_json(self, project: Project, mr: dict[str, Any]) -> dict[str, Any]:
        def user(ident: int) -> dict[str, Any]:
            return self._user(next(n for n, i in self.users.items() if i == ident))

        return {
            "id": 7000 + mr["iid"],
            "iid": mr["iid"],
            "project_id": project.id,
            "title": mr["title"],
            "description": mr.get("description"),
            "state": mr["state"],
            "source_branch": mr["source_branch"],
            "target_branch": mr["target_branch"],
            "web_url": f"{self.url}/{project.full_path}/-/merge_requests/{mr['iid']}",
            "author": self._user(mr["author"]),
            "assignee": user(mr["assignee_id"]) if mr.get("assignee_id") else None,
            "assignees": [user(mr["assignee_id"])] if mr.get("assignee_id") else [],
            "reviewers": [user(i) for i in mr.get("reviewer_ids", [])],
            "labels": [x for x in (mr.get("labels") or "").split(",") if x],
            # GitLab has no draft flag to set: a title's prefix makes a draft
            "draft": mr["title"].startswith(("Draft:", "[Draft]", "(Draft)")),
            "detailed_merge_status": "mergeable",
            "force_remove_source_branch": mr.get("remove_source_branch"),
            "created_at": "2024-01-01T00:00:00Z",
        }

    # -- handlers -----------------------------------------------------------
    def handlers(self) -> dict[str, Handler]:
        return {
            "users/current": self.current_user,
            "users/list": self.list_users,
            "users/projects": self.namespace_projects,
            "groups/projects": self.namespace_projects,
            "namespaces/show": self.show_namespace,
            "projects/create": self.create_project,
            "projects/show": self.show_project,
            "projects/members/add": self.add_member,
            "branches/create": self.create_branch,
            "branches/show": self.show_branch,
            "protected-branches/protect": self.protect,
            "project-variables/create": self.create_variable,
            "merge-requests/list": self.list_mrs,
            "merge-requests/create": self.create_mr,
            "merge-requests/show": self.show_mr,
            "merge-requests/update": self.update_mr,
            "merge-request-approvals/rules": self.approval_rules,
        }

    def current_user(self, call: Call, p: dict[str, str]) -> Reply:
        name = call.user or ""
        return Reply(200, {**self._user(name), "email": f"{name}@forge.test"})

    def list_users(self, call: Call, p: dict[str, str]) -> Reply:
        name = call.query.get("username")
        return Reply(200, [self._user(name)] if name in self.users else [])

    def show_namespace(self, call: Call, p: dict[str, str]) -> Reply:
        return Reply(200, self._namespace(unquote(p["id"])))

    def namespace_projects(self, call: Call, p: dict[str, str]) -> Reply:
        path = unquote(p["id"])
        self._namespace(path)
        search = str(call.query.get("search") or "")
        found = [
            self._project_json(x)
            for x in self.projects.values()
            if x.namespace == path and search in x.name
        ]
        return Reply(200, found)

    def _create(self, namespace: str, name: str, settings: dict[str, Any]) -> Project:
        path_name = settings.pop("path", None) or name
        key = f"{namespace}/{path_name}".lower()
        if key in self.projects:
            taken = ["has already been taken"]
            raise HttpError(400, "taken", {"message": {"name": taken, "path": taken}})
        folder = self.root / namespace / f"{path_name}.git"
        folder.parent.mkdir(parents=True, exist_ok=True)
        branch = settings.get("default_branch", "main")
        subprocess.run(["git", "init", "-q", "--bare", "-b", branch, str(folder)], check=True)
        project = Project(next(self._ids), namespace, path_name, folder, settings)
        self.projects[key] = project
        return project

    def create_project(self, call: Call, p: dict[str, str]) -> Reply:
        body = dict(call.body)
        user = call.user or ""
        ns_id = body.pop("namespace_id", self.users.get(user))
        namespace = next((n for n, i in self.users.items() if i == ns_id), None)
        if namespace is not None and namespace != user:
            raise HttpError(403, "403 Forbidden")
        if namespace is None:
            namespace = next((g for g, (i, _) in self.groups.items() if i == ns_id), None)
            if namespace is None:
                raise HttpError(404, "Namespace Not Found")
            if user not in self.groups[namespace][1]:
                raise HttpError(403, "403 Forbidden")
        with self._lock:
            project = self._create(namespace, body.pop("name"), body)
        return Reply(201, self._project_json(project))

    def show_project(self, call: Call, p: dict[str, str]) -> Reply:
        return Reply(200, self._project_json(self.project(p["id"])))

    def add_member(self, call: Call, p: dict[str, str]) -> Reply:
        project = self.project(p["id"])
        ident = call.body.get("user_id")
        name = next((n for n, i in self.users.items() if i == ident), None)
        if name is None:
            raise HttpError(404, "User Not Found")
        if ident in project.members:
            raise HttpError(409, "Member already exists")
        project.members[ident] = call.body["access_level"]
        return Reply(201, {**self._user(name), "access_level": call.body["access_level"]})

    def create_branch(self, call: Call, p: dict[str, str]) -> Reply:
        project = self.project(p["id"])
        name, ref = call.body["branch"], call.body["ref"]
        branches = project.branches()
        if name in branches:
            raise HttpError(400, "Branch already exists")
        sha = branches.get(ref)
        if sha is None:
            raise HttpError(400, "Invalid reference name")
        project.git("update-ref", f"refs/heads/{name}", sha)
        return Reply(201, self._branch_json(project, name, sha))

    def show_branch(self, call: Call, p: dict[str, str]) -> Reply:
        project = self.project(p["id"])
        name = unquote(p["branch"])
        sha = project.branches().get(name)
        if sha is None:
            raise HttpError(404, "Branch Not Found")
        return Reply(200, self._branch_json(project, name, sha))

    def protect(self, call: Call, p: dict[str, str]) -> Reply:
        project = self.project(p["id"])
        name = call.body["name"]
        if name in project.protected:
            raise HttpError(409, f"Protected branch '{name}' already exists")
        project.protected[name] = dict(call.body)
        level = [{"access_level": 40, "access_level_description": "Maintainers"}]
        return Reply(
            201,
            {
                "id": len(project.protected),
                "name": name,
                "push_access_levels": level,
                "merge_access_levels": level,
                "allow_force_push": False,
            },
        )

    def create_variable(self, call: Call, p: dict[str, str]) -> Reply:
        project = self.project(p["id"])
        key = call.body["key"]
        if key in project.variables:
            raise HttpError(400, f"({key}) has already been taken")
        variable = {
            "variable_type": "env_var",
            "protected": False,
            "masked": False,
            "raw": False,
            "environment_scope": "*",
            **call.body,
        }
        project.variables[key] = variable
        return Reply(201, variable)

    def _mr(self, project: Project, iid: str) -> dict[str, Any]:
        for mr in project.merge_requests:
            if str(mr["iid"]) == iid:
                return mr
        raise HttpError(404, "Not found")

    def list_mrs(self, call: Call, p: dict[str, str]) -> Reply:
        project = self.project(p["id"])
        source = call.query.get("source_branch")
        target = call.query.get("target_branch")
        state = call.query.get("state", "all")
        found = [
            self._mr_json(project, mr)
            for mr in project.merge_requests
            if (source is None or mr["source_branch"] == source)
            and (target is None or mr["target_branch"] == target)
            and (state == "all" or mr["state"] == state)
        ]
        return Reply(200, found)

    def create_mr(self, call: Call, p: dict[str, str]) -> Reply:
        project = self.project(p["id"])
        body = call.body
        branches = project.branches()
        for key in ("source_branch", "target_branch"):
            if body[key] not in branches:
                raise HttpError(400, f"{key} is invalid")
        for mr in project.merge_requests:
            same = (mr["source_branch"], mr["target_branch"]) == (
                body["source_branch"],
                body["target_branch"],
            )
            if same and mr["state"] == "opened":
                raise HttpError(
                    409,
                    "Another open merge request already exists for this source branch: "
                    f"!{mr['iid']}",
                )
        with self._lock:
            mr = {**body, "iid": len(project.merge_requests) + 1, "state": "opened"}
            mr["author"] = call.user or ""
            project.merge_requests.append(mr)
        return Reply(201, self._mr_json(project, mr))

    def show_mr(self, call: Call, p: dict[str, str]) -> Reply:
        project = self.project(p["id"])
        return Reply(200, self._mr_json(project, self._mr(project, p["merge_request_iid"])))

    def update_mr(self, call: Call, p: dict[str, str]) -> Reply:
        project = self.project(p["id"])
        mr = self._mr(project, p["merge_request_iid"])
        mr.update(call.body)
        return Reply(200, self._mr_json(project, mr))

    def approval_rules(self, call: Call, p: dict[str, str]) -> Reply:
        project = self.project(p["id"])
        self._mr(project, p["merge_request_iid"])
        if not project.approvers:
            return Reply(200, [])
        rule = {
            "id": 1,
            "name": "CODEOWNERS",
            "rule_type": "code_owner",
            "eligible_approvers": [self._user(n) for n in project.approvers],
            "approvals_required": 1,
        }
        return Reply(200, [rule])
