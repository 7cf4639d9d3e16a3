"""GitHub, as the forge server plays it: owners, repositories backed by bare git
repositories, and the REST operations the publish/github actions (and Backstage's
catalog, reading a file) call. Request and response shapes are GitHub's own OpenAPI
description's (``Contract("github")``); this module only keeps state.
"""

from __future__ import annotations

import base64
import itertools
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from nacl.public import PrivateKey, SealedBox

from support.forge.bare import BareRepo, seed_bare
from support.forge.contract import Contract
from support.forge.server import Call, Handler, HttpError, Reply

_CONTRACT: Contract | None = None
_CONTRACT_LOCK = threading.Lock()


def github_contract() -> Contract:
    """Loaded once per test session (parsing the 13 MB description takes a second)."""
    global _CONTRACT
    with _CONTRACT_LOCK:
        if _CONTRACT is None:
            _CONTRACT = Contract("github")
        return _CONTRACT


@dataclass
class Pull:
    number: int
    title: str
    body: str | None
    head: str
    base: str
    draft: bool
    state: str = "open"
    reviewers: list[str] = field(default_factory=list)
    team_reviewers: list[str] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)


@dataclass
class Repo(BareRepo):
    id: int
    owner: str
    name: str
    path: Path
    settings: dict[str, Any]
    topics: list[str] = field(default_factory=list)
    collaborators: dict[str, str] = field(default_factory=dict)
    teams: dict[str, str] = field(default_factory=dict)
    protections: dict[str, dict[str, Any]] = field(default_factory=dict)
    signed_branches: set[str] = field(default_factory=set)
    variables: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    hooks: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[int, list[str]] = field(default_factory=dict)
    dispatches: list[dict[str, Any]] = field(default_factory=list)
    pulls: list[Pull] = field(default_factory=list)
    oidc: dict[str, Any] | None = None
    subscribed: bool = False
    key: PrivateKey = field(default_factory=PrivateKey.generate)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class GitHub:
    """State and handlers. ``owners`` maps a login to ``User`` or ``Organization``;
    ``teams`` maps an org to its team slugs; ``tokens`` maps a token to a login."""

    api_prefix = "/api/v3"

    def __init__(
        self,
        root: Path,
        *,
        tokens: dict[str, str],
        owners: dict[str, str],
        teams: dict[str, list[str]] | None = None,
        users: list[str] = (),  # type: ignore[assignment]
        apps: dict[str, tuple[str, list[str]]] | None = None,
    ) -> None:
        """``apps``: app id -> (its public key in PEM, the owners it is installed on)."""
        self.contract = github_contract()
        self.root = root
        self.tokens = tokens
        self.owners = owners
        self.teams = teams or {}
        self.users = set(users) | {o for o, kind in owners.items() if kind == "User"}
        self.repos: dict[str, Repo] = {}
        self.url = "http://forge.invalid"
        self.apps = apps or {}
        self.installation_tokens: dict[str, str] = {}
        self._ids = itertools.count(1000)
        self._lock = threading.RLock()

    def bind(self, url: str) -> None:
        self.url = url

    def user_of(self, token: str) -> str | None:
        if token.count(".") == 2:  # a GitHub App's JWT, signed with its private key
            for app_id, (public_pem, _) in self.apps.items():
                try:
                    claims = jwt.decode(token, public_pem, algorithms=["RS256"])
                except jwt.PyJWTError:
                    continue
                if str(claims.get("iss")) == app_id:
                    return f"app:{app_id}"
            return None
        return self.tokens.get(token) or self.installation_tokens.get(token)

    def repo_dir(self, owner: str, repo: str) -> Path | None:
        found = self.repos.get(f"{owner}/{repo}".lower())
        return found.path if found else None

    def error_body(self, status: int, message: str) -> Any:
        return {"message": message, "documentation_url": "https://docs.github.com/rest"}

    def repo(self, owner: str, name: str) -> Repo:
        found = self.repos.get(f"{owner}/{name}".lower())
        if found is None:
            raise HttpError(404, "Not Found")
        return found

    def add_repo(self, owner: str, name: str, **settings: Any) -> Repo:
        """A repository made outside the API (for the tests' starting state)."""
        with self._lock:
            return self._create(owner, name, {"name": name, **settings})

    # -- rendering ----------------------------------------------------------
    def _owner(self, login: str) -> dict[str, Any]:
        return {
            "login": login,
            "id": abs(hash(login)) % 100000,
            "type": self.owners.get(login, "User"),
            "user_view_type": "public",
            "html_url": f"{self.url}/{login}",
            "url": f"{self.url}{self.api_prefix}/users/{login}",
        }

    def _repo_json(self, repo: Repo) -> dict[str, Any]:
        s = repo.settings
        return {
            "id": repo.id,
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": self._owner(repo.owner),
            "private": s.get("private", False),
            "visibility": s.get("visibility", "private" if s.get("private") else "public"),
            "description": s.get("description"),
            "homepage": s.get("homepage"),
            "html_url": f"{self.url}/{repo.full_name}",
            "clone_url": f"{self.url}/{repo.full_name}.git",
            "url": f"{self.url}{self.api_prefix}/repos/{repo.full_name}",
            "default_branch": repo.default_branch(),
            "topics": repo.topics,
            "has_issues": s.get("has_issues", True),
            "has_projects": s.get("has_projects", True),
            "has_wiki": s.get("has_wiki", True),
            "allow_merge_commit": s.get("allow_merge_commit", True),
            "allow_squash_merge": s.get("allow_squash_merge", True),
            "allow_rebase_merge": s.get("allow_rebase_merge", True),
            "allow_auto_merge": s.get("allow_auto_merge", False),
            "allow_update_branch": s.get("allow_update_branch", False),
            "delete_branch_on_merge": s.get("delete_branch_on_merge", False),
        }

    def _pull_json(self, repo: Repo, pull: Pull) -> dict[str, Any]:
        branches = repo.branches()
        repo_json = self._repo_json(repo)

        def side(ref: str) -> dict[str, Any]:
            return {
                "label": f"{repo.owner}:{ref}",
                "ref": ref,
                "sha": branches.get(ref, "0" * 40),
                "repo": repo_json,
                "user": self._owner(repo.owner),
            }

        return {
            "id": 5000 + pull.number,
            "number": pull.number,
            "state": pull.state,
            "title": pull.title,
            "body": pull.body,
            "draft": pull.draft,
            "html_url": f"{self.url}/{repo.full_name}/pull/{pull.number}",
            "url": f"{self.url}{self.api_prefix}/repos/{repo.full_name}/pulls/{pull.number}",
            "head": side(pull.head),
            "base": side(pull.base),
            "requested_reviewers": [self._owner(u) for u in pull.reviewers],
            "assignees": [self._owner(u) for u in pull.assignees],
            "labels": [],
        }

    # -- handlers -----------------------------------------------------------
    def handlers(self) -> dict[str, Handler]:
        return {
            "users/get-by-username": self.get_user,
            "users/get-authenticated": self.get_authenticated,
            "repos/create-in-org": self.create_in_org,
            "repos/create-for-authenticated-user": self.create_for_user,
            "repos/get": self.get_repo,
            "repos/update": self.update_repo,
            "teams/get-by-name": self.get_team,
            "teams/add-or-update-repo-permissions-in-org": self.add_team,
            "repos/add-collaborator": self.add_collaborator,
            "repos/replace-all-topics": self.replace_topics,
            "actions/create-repo-variable": self.create_variable,
            "actions/get-repo-public-key": self.public_key,
            "actions/create-or-update-repo-secret": self.put_secret,
            "actions/set-custom-oidc-sub-claim-for-repo": self.set_oidc,
            "activity/set-repo-subscription": self.subscribe,
            "repos/update-branch-protection": self.protect,
            "repos/create-commit-signature-protection": self.require_signatures,
            "repos/create-webhook": self.create_hook,
            "issues/add-labels": self.add_labels,
            "issues/add-assignees": self.add_assignees,
            "actions/create-workflow-dispatch": self.dispatch,
            "pulls/create": self.create_pull,
            "pulls/list": self.list_pulls,
            "pulls/update": self.update_pull,
            "pulls/request-reviewers": self.request_reviewers,
            "repos/get-content": self.get_content,
            "apps/list-installations": self.list_installations,
            "apps/create-installation-access-token": self.installation_token,
        }

    def _app(self, call: Call) -> str:
        if not (call.user or "").startswith("app:"):
            raise HttpError(401, "A JSON web token could not be decoded")
        return (call.user or "")[4:]

    def list_installations(self, call: Call, p: dict[str, str]) -> Reply:
        app_id = self._app(call)
        owners = self.apps[app_id][1]
        return Reply(
            200,
            [
                {
                    "id": int(app_id) * 100 + i,
                    "app_id": int(app_id),
                    "account": self._owner(owner),
                    "target_type": self.owners.get(owner, "User"),
                    "repository_selection": "all",
                }
                for i, owner in enumerate(owners)
            ],
        )

    def installation_token(self, call: Call, p: dict[str, str]) -> Reply:
        app_id = self._app(call)
        number = int(p["installation_id"]) - int(app_id) * 100
        owners = self.apps[app_id][1]
        if not 0 <= number < len(owners):
            raise HttpError(404, "Not Found")
        token = f"ghs_installation_{app_id}_{number}_{len(self.installation_tokens)}"
        self.installation_tokens[token] = f"app-{app_id}[bot]"
        return Reply(201, {"token": token, "expires_at": "2099-01-01T00:00:00Z"})

    def get_user(self, call: Call, p: dict[str, str]) -> Reply:
        if p["username"] not in self.owners and p["username"] not in self.users:
            raise HttpError(404, "Not Found")
        return Reply(200, self._owner(p["username"]))

    def get_authenticated(self, call: Call, p: dict[str, str]) -> Reply:
        return Reply(200, self._owner(call.user or ""))

    def _create(self, owner: str, name: str, body: dict[str, Any]) -> Repo:
        key = f"{owner}/{name}".lower()
        if key in self.repos:
            raise HttpError(422, "Repository creation failed: name already exists on this account")
        path = self.root / owner / f"{name}.git"
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
        settings = {k: v for k, v in body.items() if k != "name"}
        if "visibility" not in settings:
            settings["visibility"] = "private" if settings.get("private") else "public"
        settings["private"] = settings["visibility"] != "public"
        repo = Repo(next(self._ids), owner, name, path, settings)
        self.repos[key] = repo
        if body.get("auto_init"):
            seed_bare(path, "main", {"README.md": f"# {name}\n"}, "Initial commit")
        return repo

    def create_in_org(self, call: Call, p: dict[str, str]) -> Reply:
        if self.owners.get(p["org"]) != "Organization":
            raise HttpError(404, "Not Found")
        with self._lock:
            return Reply(201, self._repo_json(self._create(p["org"], call.body["name"], call.body)))

    def create_for_user(self, call: Call, p: dict[str, str]) -> Reply:
        with self._lock:
            repo = self._create(call.user or "", call.body["name"], call.body)
            return Reply(201, self._repo_json(repo))

    def get_repo(self, call: Call, p: dict[str, str]) -> Reply:
        return Reply(200, self._repo_json(self.repo(p["owner"], p["repo"])))

    def update_repo(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["owner"], p["repo"])
        repo.settings.update(call.body or {})
        return Reply(200, self._repo_json(repo))

    def get_team(self, call: Call, p: dict[str, str]) -> Reply:
        if p["team_slug"] not in self.teams.get(p["org"], []):
            raise HttpError(404, "Not Found")
        return Reply(200, {"slug": p["team_slug"], "name": p["team_slug"], "id": 7})

    def add_team(self, call: Call, p: dict[str, str]) -> Reply:
        if p["team_slug"] not in self.teams.get(p["org"], []):
            raise HttpError(404, "Not Found")
        repo = self.repo(p["owner"], p["repo"])
        repo.teams[p["team_slug"]] = (call.body or {}).get("permission", "push")
        return Reply(204)

    def add_collaborator(self, call: Call, p: dict[str, str]) -> Reply:
        if p["username"] not in self.users:
            raise HttpError(404, "Not Found")
        repo = self.repo(p["owner"], p["repo"])
        repo.collaborators[p["username"]] = (call.body or {}).get("permission", "push")
        return Reply(204)

    def replace_topics(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["owner"], p["repo"])
        names = call.body["names"]
        if any(n != n.lower() for n in names):
            raise HttpError(422, "Topics must start with a lowercase letter or number")
        repo.topics = list(names)
        return Reply(200, {"names": repo.topics})

    def create_variable(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["owner"], p["repo"])
        repo.variables[call.body["name"]] = call.body["value"]
        return Reply(201, {})

    def public_key(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["owner"], p["repo"])
        key = base64.b64encode(bytes(repo.key.public_key)).decode()
        return Reply(200, {"key_id": f"key-{repo.id}", "key": key})

    def put_secret(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["owner"], p["repo"])
        if call.body.get("key_id") != f"key-{repo.id}":
            raise HttpError(422, "Bad key_id")
        sealed = base64.b64decode(call.body["encrypted_value"])
        repo.secrets[p["secret_name"]] = SealedBox(repo.key).decrypt(sealed).decode()
        return Reply(201, {})

    def set_oidc(self, call: Call, p: dict[str, str]) -> Reply:
        self.repo(p["owner"], p["repo"]).oidc = dict(call.body)
        return Reply(201, {})

    def subscribe(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["owner"], p["repo"])
        repo.subscribed = bool(call.body.get("subscribed"))
        return Reply(200, {"subscribed": repo.subscribed, "ignored": False})

    def protect(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["owner"], p["repo"])
        if p["branch"] not in repo.branches():
            raise HttpError(404, "Branch not found")
        repo.protections[p["branch"]] = dict(call.body)
        return Reply(200, {"url": f"{self.url}/protection"})

    def require_signatures(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["owner"], p["repo"])
        repo.signed_branches.add(p["branch"])
        return Reply(200, {"url": f"{self.url}/signatures", "enabled": True})

    def create_hook(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["owner"], p["repo"])
        url = (call.body.get("config") or {}).get("url")
        if any(h["config"].get("url") == url for h in repo.hooks):
            # GitHub's answer to a second hook for the same URL (Validation Failed)
            raise HttpError(422, "Validation Failed: Hook already exists on this repository")
        hook = {"id": len(repo.hooks) + 1, **call.body}
        repo.hooks.append(hook)
        return Reply(
            201,
            {
                "id": hook["id"],
                "type": "Repository",
                "name": "web",
                "active": hook.get("active", True),
                "events": hook.get("events", ["push"]),
                "config": {k: v for k, v in hook["config"].items() if k != "secret"},
            },
        )

    def add_labels(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["owner"], p["repo"])
        number = int(p["issue_number"])
        body = call.body
        names = body if isinstance(body, list) else (body or {}).get("labels", [])
        names = [n if isinstance(n, str) else n["name"] for n in names]
        current = repo.labels.setdefault(number, [])
        current += [n for n in names if n not in current]
        return Reply(200, [{"id": i + 1, "name": n} for i, n in enumerate(current)])

    def add_assignees(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["owner"], p["repo"])
        pull = self._pull(repo, int(p["issue_number"]))
        pull.assignees += [a for a in call.body.get("assignees", []) if a not in pull.assignees]
        return Reply(201, {"number": pull.number, "title": pull.title, "state": pull.state})

    def dispatch(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["owner"], p["repo"])
        ref = call.body["ref"]
        tags = repo.git("tag", "--list").split()
        if ref not in repo.branches() and ref not in tags:
            raise HttpError(422, f"No ref found for: {ref}")
        repo.dispatches.append({"workflow": p["workflow_id"], **call.body})
        run = 9000 + len(repo.dispatches)
        if call.body.get("return_run_details"):
            api = f"{self.url}{self.api_prefix}/repos/{repo.full_name}"
            return Reply(
                200,
                {
                    "workflow_run_id": run,
                    "run_url": f"{api}/actions/runs/{run}",
                    "html_url": f"{self.url}/{repo.full_name}/actions/runs/{run}",
                },
            )
        return Reply(204)

    def _pull(self, repo: Repo, number: int) -> Pull:
        for pull in repo.pulls:
            if pull.number == number:
                return pull
        raise HttpError(404, "Not Found")

    def create_pull(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["owner"], p["repo"])
        body = call.body
        head = body["head"].split(":", 1)[-1]
        branches = repo.branches()
        if head not in branches or body["base"] not in branches:
            raise HttpError(422, "Validation Failed")
        if any(x.head == head and x.state == "open" for x in repo.pulls):
            raise HttpError(422, f"A pull request already exists for {repo.owner}:{head}.")
        with self._lock:
            number = len(repo.pulls) + len(repo.labels) + 1
            pull = Pull(
                number,
                body["title"],
                body.get("body"),
                head,
                body["base"],
                bool(body.get("draft", False)),
            )
            repo.pulls.append(pull)
        return Reply(201, self._pull_json(repo, pull))

    def list_pulls(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["owner"], p["repo"])
        state = call.query.get("state", "open")
        head = call.query.get("head")
        found = [
            x
            for x in repo.pulls
            if (state == "all" or x.state == state)
            and (head is None or f"{repo.owner}:{x.head}" == head)
        ]
        return Reply(200, [self._pull_json(repo, x) for x in found])

    def update_pull(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["owner"], p["repo"])
        pull = self._pull(repo, int(p["pull_number"]))
        for key in ("title", "body", "state", "base"):
            if key in call.body:
                setattr(pull, key, call.body[key])
        return Reply(200, self._pull_json(repo, pull))

    def request_reviewers(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["owner"], p["repo"])
        pull = self._pull(repo, int(p["pull_number"]))
        for user in call.body.get("reviewers", []):
            if user not in self.users:
                raise HttpError(422, f"Reviews may only be requested from collaborators: {user}")
            pull.reviewers.append(user)
        pull.team_reviewers += call.body.get("team_reviewers", [])
        body = self._pull_json(repo, pull)
        return Reply(201, body)

    def get_content(self, call: Call, p: dict[str, str]) -> Reply:
        repo = self.repo(p["owner"], p["repo"])
        ref = str(call.query.get("ref") or repo.default_branch())
        data = repo.read(ref, p["path"])
        return Reply(200, raw=data, content_type="application/vnd.github.raw")


def seed(repo: Repo, branch: str, files: dict[str, str], message: str = "seed") -> None:
    seed_bare(repo.path, branch, files, message)
