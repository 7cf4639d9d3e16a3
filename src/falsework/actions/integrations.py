"""The forges and the Backstage instance the publish and catalog actions talk to.

Built once at the edge from the server's configuration (``integrations.github[]``,
``gitlab[]``, ... and ``backstage:``, see docs/operations.md) and handed to the action
families when the registry is made; a handler sees only the values it needs.

Every outbound connection goes through the server's policies: the REST calls of the
forge actions and the Backstage calls through ``EgressPolicy`` (an httpx transport that
checks the resolved address and pins it), git through ``GitPolicy`` (transports, time
limits, the same egress check). Built without them (a test, a plugin host), the safe
defaults apply: no loopback, private or metadata address.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qs, quote, urlsplit

from falsework.actions.egress import EgressPolicy
from falsework.actions.git import GitPolicy
from falsework.errors import InputError

if TYPE_CHECKING:
    # imported by the clients' makers: the configuration reads this module, and
    # a run that makes no HTTP call needs no httpx
    import httpx

Kind = Literal["github", "gitlab", "gitea", "bitbucketCloud", "bitbucketServer", "azure"]


@dataclass(frozen=True)
class GithubApp:
    """A GitHub App: its installations' tokens are used for the owners it is installed
    on (and only ``allowed_installation_owners`` when that list is given)."""

    app_id: str
    private_key: str
    allowed_installation_owners: tuple[str, ...] = ()


@dataclass(frozen=True)
class ForgeHost:
    """One configured host of a forge: where its API is and the server's credential."""

    kind: Kind
    host: str  # as in URLs: `github.com`, `git.example.com:8443`
    api_base_url: str
    token: str | None = None
    username: str | None = None  # Bitbucket and Gitea take a user name with the token
    apps: tuple[GithubApp, ...] = ()
    # The owners (organizations, users, groups) the configured token may act for;
    # "*": every repository the token reaches; empty: none.
    owners: tuple[str, ...] = ()

    def token_for(self, owner: str | None) -> str | None:
        """The configured token, when its owners cover ``owner``: an owner named, or a
        group above it (``acme`` covers GitLab's subgroup ``acme/platform``)."""
        if "*" in self.owners:
            return self.token
        wanted = (owner or "").lower()
        for item in (o.lower() for o in self.owners):
            if wanted and (wanted == item or wanted.startswith(item + "/")):
                return self.token
        return None


@dataclass(frozen=True)
class BackstageTarget:
    """A Backstage instance: catalog:register, catalog:fetch, http:backstage:request."""

    base_url: str
    token: str | None = None


@lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    import certifi  # here: a run without a forge client makes no context

    return ssl.create_default_context(cafile=certifi.where())


@dataclass(frozen=True)
class Integrations:
    """The settings of the forge and catalog action families (``@action(settings=…)``)."""

    hosts: tuple[ForgeHost, ...] = ()
    backstage: BackstageTarget | None = None
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    git: GitPolicy = field(default_factory=GitPolicy)

    def http_transport(self) -> httpx.AsyncBaseTransport:
        """Every HTTP client of these actions connects through the egress policy."""
        from falsework.actions.transport import EgressTransport

        return EgressTransport(self.egress, verify=_ssl_context())

    def host(self, kind: Kind, host: str) -> ForgeHost | None:
        wanted = host.lower()
        for item in self.hosts:
            if item.kind == kind and item.host.lower() == wanted:
                return item
        if kind == "github" and wanted == "github.com":
            # Like Backstage: github.com is always known, without a credential.
            return ForgeHost("github", "github.com", "https://api.github.com")
        if kind == "gitlab" and wanted == "gitlab.com":
            return ForgeHost("gitlab", "gitlab.com", "https://gitlab.com/api/v4")
        if kind == "bitbucketCloud" and wanted == "bitbucket.org":
            return ForgeHost("bitbucketCloud", "bitbucket.org", "https://api.bitbucket.org/2.0")
        return None

    def require(self, kind: Kind, host: str, what: str) -> ForgeHost:
        found = self.host(kind, host)
        if found is None:
            raise InputError(
                f"{what}: no {kind} integration is configured for host {host!r}; add it to "
                f"integrations.{kind} in the server's configuration"
            )
        return found

    def client(
        self, base_url: str, headers: dict[str, str], timeout: float = 60.0
    ) -> httpx.AsyncClient:
        import httpx

        return httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=timeout,
            transport=self.http_transport(),
            follow_redirects=False,
        )


@dataclass(frozen=True)
class RepoUrl:
    """Backstage's ``repoUrl``: ``host?owner=o&repo=r`` (``organization``, ``workspace``,
    ``project`` for the forges that have them)."""

    host: str
    repo: str
    owner: str | None = None
    organization: str | None = None
    workspace: str | None = None
    project: str | None = None

    @classmethod
    def parse(cls, value: str, input_name: str = "repoUrl") -> RepoUrl:
        parts = urlsplit(f"https://{value}")
        query = {k: v[0] for k, v in parse_qs(parts.query).items() if v and v[0]}
        host = parts.netloc
        if not host or parts.path not in ("", "/") or "@" in host:
            raise InputError(
                f"{input_name} {value!r} is not of the form host?owner=OWNER&repo=REPO "
                "(for example github.com?owner=acme&repo=my-service)"
            )
        repo = query.get("repo")
        if not repo:
            raise InputError(f"{input_name} {value!r} has no repo= parameter")
        return cls(
            host=host,
            repo=repo,
            owner=query.get("owner"),
            organization=query.get("organization"),
            workspace=query.get("workspace"),
            project=query.get("project"),
        )

    def need_owner(self, input_name: str = "repoUrl") -> str:
        if not self.owner:
            raise InputError(f"Invalid repository owner provided in {input_name}")
        return self.owner

    def path(self) -> str:
        return "/".join(quote(p, safe="") for p in (self.owner or "", self.repo) if p)
