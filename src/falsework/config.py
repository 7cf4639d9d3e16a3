"""Settings, read once at the edges (CLI, app factory) and passed down as values.

Sources, highest first: keyword arguments, ``FALSEWORK_*`` environment variables,
the YAML file named by ``FALSEWORK_CONFIG`` (else ``./falsework.yaml`` when it
exists), then the defaults below. Unknown keys in the YAML file are an error, not
silently dropped; the ``auth`` section is kept for the API layer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from falsework.actions.egress import Rule
from falsework.actions.integrations import BackstageTarget, ForgeHost, GithubApp, Integrations
from falsework.actions.policies import (
    EgressPolicy,
    GitCredential,
    GitPolicy,
    PublishPolicy,
    SourcePolicy,
    UpdatePolicy,
)
from falsework.errors import SettingsError as SettingsError
from falsework.localconfig import EXAMPLES_DIR as EXAMPLES_DIR  # where it was
from falsework.localconfig import (
    config_file,
    local_policies,
    paths,
    template_dirs_of,
    work_dir_of,
)
from falsework.settingtable import ANNOTATIONS, SCALARS, Scalar, Scalars


class _Section(BaseModel):
    """A section of the YAML file: a misspelt key is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


# What an identity may do beyond running the templates it may run; an admin holds
# every role. docs/operations.md has the table of who may do what.
Role = Literal["templates:author", "workers:read"]
ROLES: tuple[Role, ...] = ("templates:author", "workers:read")


class TokenConfig(_Section):
    """One bearer token, stored as the hex SHA-256 of the token."""

    sha256: str
    user: str
    groups: list[str] = Field(default_factory=list)
    admin: bool = False
    roles: list[Role] = Field(default_factory=list)


class AuthConfig(_Section):
    tokens: list[TokenConfig] = Field(default_factory=list)
    # role → the user and group refs holding it, e.g.
    # {"templates:author": ["group:default/platform", "user:default/carol"]}
    roles: dict[Role, list[str]] = Field(default_factory=dict)


class GitCredentialConfig(_Section):
    """A credential for git to one host (fetch:* and publish:git use it when a
    step gives no ``token`` of its own), for the repositories its scope names:
    ``allowed_owners`` (the first segment of the repository path) and/or
    ``paths`` (globs over the path: ``acme/*``; ``**`` means every repository on
    the host, which must then be said). A token for http(s), or an ssh key."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    host: str  # as in the URL: `github.com`, `git.example.com:8443`
    token_env: str | None = None  # the environment variable holding the token
    token: SecretStr | None = None  # or the token itself (keep such a file private)
    ssh_key_file: Path | None = None  # or a private key for ssh:// and git@host: remotes
    username: str = "x-access-token"
    allowed_owners: list[str] = Field(default_factory=list, alias="allowedOwners")
    paths: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_credential_and_a_scope(self) -> GitCredentialConfig:
        given = [self.token_env, self.token, self.ssh_key_file]
        if sum(item is not None for item in given) != 1:
            raise ValueError(
                f"integrations.git host {self.host!r}: give token_env or token (http/https) "
                "or ssh_key_file (ssh)"
            )
        if not self.allowed_owners and not self.paths:
            raise ValueError(
                f"integrations.git host {self.host!r}: say which repositories the credential "
                "is for: allowed_owners (e.g. [acme]) and/or paths (e.g. ['acme/*']; '**' "
                "is every repository on the host)"
            )
        return self


# Forge integrations, shaped like Backstage's app-config `integrations:` so that section
# ports with a rename: camelCase keys as there (snake_case works too), and a secret given
# as `${ENV_VAR}` is read from the environment, as Backstage does.
class _Ported(_Section):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class _Secret(_Ported):
    """A credential: `token` (or `${VAR}`), `tokenEnv` (a variable) or `tokenFile`."""

    token: SecretStr | None = None
    token_env: str | None = None
    token_file: Path | None = None

    def secret(self, where: str) -> str | None:
        return read_secret(self.token, self.token_env, self.token_file, where)


def read_secret(
    value: SecretStr | None, env: str | None, file: Path | None, where: str
) -> str | None:
    """The secret a section names, read now (never logged)."""
    if value is not None:
        text = value.get_secret_value()
        if text.startswith("${") and text.endswith("}"):
            return os.environ.get(text[2:-1]) or None
        return text or None
    if env:
        return os.environ.get(env) or None
    if file is not None:
        try:
            return file.read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise ValueError(f"{where}: cannot read {file}: {exc.strerror}") from None
    return None


class GithubAppConfig(_Ported):
    app_id: int | str
    private_key: SecretStr | None = None
    private_key_file: Path | None = None
    private_key_env: str | None = None
    allowed_installation_owners: list[str] = Field(default_factory=list)
    # kept so a Backstage section ports as is (Falsework does not use them)
    client_id: str | None = None
    client_secret: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    webhook_url: str | None = None


class _Scoped(_Ported):
    """Falsework's own, required with a credential: the owners (organisations, users,
    groups, workspaces, projects) the token may act for, or ["*"] for every repository
    the token reaches. Backstage uses a token for the whole host; here a user's template
    must not push to an owner nobody meant it for."""

    kind: ClassVar[str]
    allowed_owners: list[str] = Field(default_factory=list)

    def _credentials(self) -> tuple[object, ...]:
        return ()

    @model_validator(mode="after")
    def _scoped_token(self) -> _Scoped:
        if any(x is not None for x in self._credentials()) and not self.allowed_owners:
            host = getattr(self, "host", None) or "bitbucket.org"
            raise ValueError(
                f"integrations.{self.kind} host {host!r}: say which owners the token is for: "
                "allowedOwners (e.g. [acme]; ['*'] for every repository the token reaches)"
            )
        return self


class _ScopedSecret(_Scoped, _Secret):
    def _credentials(self) -> tuple[object, ...]:
        return (self.token, self.token_env, self.token_file)


class GithubIntegration(_ScopedSecret):
    """A GitHub App is scoped by its installations (and allowedInstallationOwners)."""

    kind = "github"

    host: str = "github.com"
    api_base_url: str | None = None  # default: https://api.github.com for github.com
    raw_base_url: str | None = None
    apps: list[GithubAppConfig] = Field(default_factory=list)


class GitlabIntegration(_ScopedSecret):
    kind = "gitlab"
    host: str = "gitlab.com"
    api_base_url: str | None = None  # default: https://HOST/api/v4
    base_url: str | None = None


class GiteaIntegration(_Scoped):
    kind = "gitea"
    host: str
    base_url: str | None = None
    username: str | None = None
    password: SecretStr | None = None  # a password or an access token, as in Backstage
    password_env: str | None = None
    password_file: Path | None = None

    def _credentials(self) -> tuple[object, ...]:
        return (self.password, self.password_env, self.password_file)


class BitbucketCloudIntegration(_Scoped):
    kind = "bitbucketCloud"
    username: str | None = None
    app_password: SecretStr | None = None
    token: SecretStr | None = None
    token_env: str | None = None
    token_file: Path | None = None

    def _credentials(self) -> tuple[object, ...]:
        return (self.app_password, self.token, self.token_env, self.token_file)


class BitbucketServerIntegration(_ScopedSecret):
    kind = "bitbucketServer"
    host: str
    api_base_url: str | None = None  # default: https://HOST/rest/api/1.0
    username: str | None = None
    password: SecretStr | None = None

    def _credentials(self) -> tuple[object, ...]:
        return (*super()._credentials(), self.password)


class AzureCredential(_Ported):
    """A personal access token is used by publish:azure for its ``organizations`` (as
    ``allowedOwners`` elsewhere: required with a token; ``['*']`` for all). A service
    principal or managed identity (``clientId``…) is read and not used."""

    organizations: list[str] = Field(default_factory=list)
    personal_access_token: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    tenant_id: str | None = None

    @model_validator(mode="after")
    def _scoped_token(self) -> AzureCredential:
        if self.personal_access_token is not None and not self.organizations:
            raise ValueError(
                "integrations.azure credential: say which organizations the "
                "personalAccessToken is for: organizations (e.g. [acme]; ['*'] for all)"
            )
        return self


class AzureIntegration(_Ported):
    host: str = "dev.azure.com"
    credentials: list[AzureCredential] = Field(default_factory=list)


class BackstageConfig(_Secret):
    """The Backstage instance catalog:register, catalog:fetch and http:backstage:request
    talk to; `token` is a static external-access token of that instance."""

    base_url: str


class DefaultEnvironmentConfig(_Ported):
    """Backstage's `scaffolder.defaultEnvironment`: values every template reads as
    `${{ environment.parameters.<name> }}`, and secrets it reads as
    `${{ environment.secrets.<name> }}` in a step's input and `each` only (a
    secret given as `${ENV_VAR}` is read from the environment, as Backstage does)."""

    parameters: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, SecretStr] = Field(default_factory=dict)

    def resolved_secrets(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, value in self.secrets.items():
            where = f"scaffolder.defaultEnvironment.secrets.{name}"
            text = read_secret(value, None, None, where)
            if text is None:
                raise ValueError(f"{where}: empty, or its environment variable is not set")
            found[name] = text
        return found


class ScaffolderConfig(_Ported):
    """Settings shaped like Backstage's app-config `scaffolder:` section."""

    default_environment: DefaultEnvironmentConfig = Field(default_factory=DefaultEnvironmentConfig)


class IntegrationsConfig(_Section):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    git: list[GitCredentialConfig] = Field(default_factory=list)
    github: list[GithubIntegration] = Field(default_factory=list)
    gitlab: list[GitlabIntegration] = Field(default_factory=list)
    gitea: list[GiteaIntegration] = Field(default_factory=list)
    bitbucket_cloud: list[BitbucketCloudIntegration] = Field(default_factory=list)
    bitbucket_server: list[BitbucketServerIntegration] = Field(default_factory=list)
    azure: list[AzureIntegration] = Field(default_factory=list)


class EgressConfig(_Section):
    """Outbound connections (http:request, git): ``allow`` and ``deny`` take
    networks (``10.20.0.0/16``, ``127.0.0.1``, ``fd00::/8``) and host names
    (``git.internal.example.com``, ``*.corp.example.com``)."""

    allow: list[str] = Field(default_factory=list)
    deny: list[str] = Field(default_factory=list)

    @field_validator("allow", "deny")
    @classmethod
    def _rules(cls, value: list[str]) -> list[str]:
        for entry in value:
            Rule.parse(entry)  # a ValueError names the entry
        return value


WebhookEvent = Literal["completed", "failed", "cancelled"]
WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = ("completed", "failed", "cancelled")


class WebhookConfig(_Section):
    """A receiver told when tasks end (docs/operations.md, "Completion webhooks"):
    each delivery is a task of its own, signed as a Standard Webhook with the
    secret in the environment variable ``secret_env``, and goes through the egress
    policy like every outbound call."""

    url: str
    events: list[WebhookEvent] = Field(default_factory=lambda: list(WEBHOOK_EVENTS), min_length=1)
    secret_env: str = Field(min_length=1)
    # entity refs or names of templates (shell-style patterns); None: every template
    templates: list[str] | None = None
    # how events and the admin page name it; default: the URL without its query
    name: str | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL with a host")
        if parts.username or parts.password:
            raise ValueError("a webhook URL carries no user or password (use secret_env)")
        return value

    @property
    def label(self) -> str:
        """The name shown in events and logs: never the query (it may hold a token)."""
        if self.name:
            return self.name
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"


class _YamlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = config_file(os.environ)
        data: dict[str, Any] = {}
        if path is not None:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            if not isinstance(loaded, dict):
                raise ValueError(f"{path}: the config file must be a YAML mapping")
            data = {str(k).replace("-", "_"): v for k, v in loaded.items()}
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def _field(scalar: Scalar) -> Any:
    return Field(
        default=scalar.default,
        description=scalar.description,
        ge=scalar.ge,
        gt=scalar.gt,
        le=scalar.le,
    )


if TYPE_CHECKING:

    class _ScalarSettings(Scalars, BaseSettings):
        """(The type checker's view: each scalar setting with its type.)"""

else:
    # the scalar fields, made of the one table both readers use (falsework.settingtable)
    _ScalarSettings = create_model(
        "_ScalarSettings",
        __base__=BaseSettings,
        **{name: (ANNOTATIONS[name], _field(scalar)) for name, scalar in SCALARS.items()},
    )


class Settings(_ScalarSettings):
    """Every setting of Falsework, with its default. docs/operations.md lists them:
    the scalars of ``falsework.settingtable``, and here the file and the sections."""

    model_config = SettingsConfigDict(env_prefix="FALSEWORK_", extra="forbid")

    config: Path | None = Field(default=None, description="YAML config file (FALSEWORK_CONFIG).")
    egress: EgressConfig = Field(default_factory=EgressConfig)
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names (no port) the server answers to besides 127.0.0.1, "
        "localhost and ::1. Local mode always checks the Host header; with tokens it is "
        "checked only when this list is set.",
    )
    auth: AuthConfig = Field(default_factory=AuthConfig)
    integrations: IntegrationsConfig = Field(default_factory=IntegrationsConfig)
    scaffolder: ScaffolderConfig = Field(default_factory=ScaffolderConfig)
    backstage: BackstageConfig | None = None
    entities: list[Path] = Field(
        default_factory=list,
        description="catalog-info.yaml files (Groups, Users, Components...) the page's "
        "entity pickers list, besides the configured Backstage catalog's.",
    )
    webhooks: list[WebhookConfig] = Field(
        default_factory=list,
        description="Receivers told when tasks end: url, events, secret_env, templates, name.",
    )

    @model_validator(mode="after")
    def _webhook_labels_unique(self) -> Settings:
        seen: set[str] = set()
        for hook in self.webhooks:
            if hook.label in seen:
                raise ValueError(f"webhooks: two receivers are named {hook.label!r} (set name)")
            seen.add(hook.label)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))

    # derived values -------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'falsework.db').resolve()}"

    @property
    def resolved_work_dir(self) -> Path:
        return work_dir_of(self.work_dir, self.data_dir)

    @property
    def template_dirs(self) -> list[Path]:
        return template_dirs_of(self.templates)

    @property
    def publish_dirs(self) -> list[Path]:
        return paths(self.publish_roots)

    def git_credentials(self) -> tuple[GitCredential, ...]:
        """The configured git credentials that are usable: a token set (read from
        the environment now) or an ssh key file, each with its scope."""
        found: list[GitCredential] = []
        for item in self.integrations.git:
            if item.token_env:
                token = os.environ.get(item.token_env, "")
            else:
                token = item.token.get_secret_value() if item.token else ""
            if not token and item.ssh_key_file is None:
                continue
            found.append(
                GitCredential(
                    host=item.host.lower(),
                    username=item.username,
                    token=token or None,
                    ssh_key=item.ssh_key_file.resolve() if item.ssh_key_file else None,
                    owners=tuple(item.allowed_owners),
                    paths=tuple(item.paths),
                )
            )
        return tuple(found)

    def action_policies(self, *, local: bool = False) -> tuple[object, ...]:
        """The action families' settings (``falsework.actions.policies``) for a
        server, or with ``local`` for ``falsework run``: the user's own machine,
        where fetch:* reads and publish:git writes any folder the user can, and no
        egress policy applies (git uses the user's own configuration)."""
        if local:
            return local_policies(
                data_dir=self.data_dir,
                git_timeout=self.git_timeout,
                update_parallel=self.update_parallel,
                credentials=self.git_credentials(),
                forges=self.forge_integrations,
            )
        remotes = Path(os.path.abspath(self.data_dir / "remotes"))
        egress = EgressPolicy.from_lists(self.egress.allow, self.egress.deny)
        git = GitPolicy(
            timeout=self.git_timeout,
            allow_http=self.git_allow_http,
            egress=egress,
            credentials=self.git_credentials(),
        )
        publish = PublishPolicy(remotes_dir=remotes, roots=tuple(self.publish_dirs), git=git)
        integrations = self.forge_integrations(egress, git)
        policies = (
            egress,
            git,
            # Only the task's own template folder: another template's folder (a
            # restricted one among them) is as out of reach as any server path.
            SourcePolicy(roots=(), git=git),
            publish,
            integrations,
        )
        # scaffold:update reads template repositories only in the template folders
        roots = tuple(Path(os.path.abspath(p)) for p in self.template_dirs)
        update = UpdatePolicy(publish, integrations, roots, policies, self.update_parallel)
        return (*policies, update)

    def forge_integrations(self, egress: EgressPolicy, git: GitPolicy) -> Integrations:
        """The settings of the forge and catalog action families: the `integrations`
        forges and the `backstage` instance (secrets read now), and the policies every
        outbound call of theirs passes."""
        section = self.integrations
        hosts: list[ForgeHost] = []
        for gh in section.github:
            where = f"integrations.github host {gh.host}"
            default_api = "https://api.github.com" if gh.host == "github.com" else None
            api = gh.api_base_url or default_api or f"https://{gh.host}/api/v3"
            apps = tuple(
                GithubApp(
                    app_id=str(app.app_id),
                    private_key=read_secret(
                        app.private_key, app.private_key_env, app.private_key_file, where
                    )
                    or "",
                    allowed_installation_owners=tuple(app.allowed_installation_owners),
                )
                for app in gh.apps
            )
            hosts.append(
                ForgeHost(
                    "github", gh.host, api, gh.secret(where), None, apps, tuple(gh.allowed_owners)
                )
            )
        for gl in section.gitlab:
            where = f"integrations.gitlab host {gl.host}"
            base = (gl.base_url or f"https://{gl.host}").rstrip("/")
            api = gl.api_base_url or f"{base}/api/v4"
            owners = tuple(gl.allowed_owners)
            hosts.append(ForgeHost("gitlab", gl.host, api, gl.secret(where), None, (), owners))
        for gt in section.gitea:
            where = f"integrations.gitea host {gt.host}"
            base = (gt.base_url or f"https://{gt.host}").rstrip("/")
            password = read_secret(gt.password, gt.password_env, gt.password_file, where)
            api, owners = f"{base}/api/v1", tuple(gt.allowed_owners)
            hosts.append(ForgeHost("gitea", gt.host, api, password, gt.username, (), owners))
        for bc in section.bitbucket_cloud:
            where = "integrations.bitbucketCloud"
            secret = read_secret(bc.token or bc.app_password, bc.token_env, bc.token_file, where)
            hosts.append(
                ForgeHost(
                    "bitbucketCloud",
                    "bitbucket.org",
                    "https://api.bitbucket.org/2.0",
                    secret,
                    bc.username,
                    (),
                    tuple(bc.allowed_owners),
                )
            )
        for bs in section.bitbucket_server:
            where = f"integrations.bitbucketServer host {bs.host}"
            api = bs.api_base_url or f"https://{bs.host}/rest/api/1.0"
            # A token is a bearer token (no user name); a password goes with username.
            token = bs.secret(where)
            password = read_secret(bs.password, None, None, where)
            user = None if token else bs.username
            owners = tuple(bs.allowed_owners)
            hosts.append(
                ForgeHost("bitbucketServer", bs.host, api, token or password, user, (), owners)
            )
        for az in section.azure:
            for cred in az.credentials:
                where = f"integrations.azure host {az.host}"
                pat = read_secret(cred.personal_access_token, None, None, where)
                if pat:
                    owners = tuple(cred.organizations)
                    api = f"https://{az.host}"
                    hosts.append(ForgeHost("azure", az.host, api, pat, None, (), owners))
        backstage = None
        if self.backstage is not None:
            token = self.backstage.secret("backstage")
            backstage = BackstageTarget(self.backstage.base_url.rstrip("/"), token)
        return Integrations(hosts=tuple(hosts), backstage=backstage, egress=egress, git=git)

    def default_environment(self) -> tuple[dict[str, str], dict[str, str]]:
        """``scaffolder.defaultEnvironment``: its parameters, and its secrets read now."""
        section = self.scaffolder.default_environment
        return dict(section.parameters), section.resolved_secrets()

    @property
    def local_mode(self) -> bool:
        """No tokens configured and bound to loopback: unauthenticated access allowed."""
        return not self.auth.tokens and self.host in ("127.0.0.1", "localhost", "::1")


# settings whose value is never repeated in an error: they may hold a password or key
_SECRET_SETTINGS = frozenset(
    {"database_url", "secret_key", "auth", "integrations", "backstage", "scaffolder", "webhooks"}
)


def describe(exc: ValidationError) -> str:
    """``exc`` (pydantic's, many lines with links) as one line."""
    parts = []
    for error in exc.errors():
        loc = error["loc"]
        where = ".".join(str(p) for p in loc)
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "not a setting"
        elif message.startswith("Input "):
            message = "i" + message[1:]
        given = error.get("input")
        if loc and loc[0] not in _SECRET_SETTINGS and isinstance(given, str | int | float):
            message += f" (given {str(given)[:40]!r})"
        # our own validators name the section already
        named = bool(loc) and message.startswith(str(loc[0]))
        parts.append(message if named or not where else f"{where}: {message}")
    return "invalid settings: " + "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """The settings (see the module's docstring); SettingsError says in one line
    which are wrong."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from None
