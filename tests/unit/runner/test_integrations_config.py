"""The `integrations` and `backstage` sections: Backstage's app-config section ports with
a rename (camelCase keys, `${VAR}` secrets), secrets come from the environment or a
file, a misspelt key is an error, and the runner's forge actions get what was set."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from falsework.actions.integrations import ForgeHost, Integrations
from falsework.config import Settings


def integrations_from_settings(settings: Settings) -> Integrations:
    (found,) = [p for p in settings.action_policies() if isinstance(p, Integrations)]
    return found


APP_CONFIG = """
integrations:
  github:
    - host: github.com
      token: ${GITHUB_TOKEN}
      allowedOwners: [acme, platform]
    - host: ghe.example.com
      apiBaseUrl: https://ghe.example.com/api/v3
      apps:
        - appId: 12
          privateKey: ${GHE_APP_KEY}
          clientId: abc
          clientSecret: ${GHE_APP_SECRET}
          webhookSecret: hook
          allowedInstallationOwners: [acme]
  gitlab:
    - host: gitlab.example.com
      token: ${GITLAB_TOKEN}
      allowedOwners: [acme/platform]
  bitbucketCloud:
    - username: bot
      appPassword: ${BB_PASSWORD}
      allowedOwners: ['*']
"""


def load(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    path = tmp_path / "falsework.yaml"
    path.write_text(text)
    monkeypatch.setenv("FALSEWORK_CONFIG", str(path))
    return Settings()


def test_backstages_section_ports_as_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "gh-secret")
    monkeypatch.setenv("GHE_APP_KEY", "-----BEGIN KEY-----")
    monkeypatch.setenv("GITLAB_TOKEN", "gl-secret")
    monkeypatch.setenv("BB_PASSWORD", "bb-secret")
    settings = load(tmp_path, APP_CONFIG, monkeypatch)
    found = integrations_from_settings(settings)
    assert found.hosts[0] == ForgeHost(
        "github", "github.com", "https://api.github.com", "gh-secret", owners=("acme", "platform")
    )
    ghe = found.hosts[1]
    assert (ghe.api_base_url, ghe.token) == ("https://ghe.example.com/api/v3", None)
    assert ghe.apps[0].app_id == "12" and ghe.apps[0].private_key == "-----BEGIN KEY-----"
    assert ghe.apps[0].allowed_installation_owners == ("acme",)
    gitlab = found.host("gitlab", "gitlab.example.com")
    assert gitlab is not None and gitlab.api_base_url == "https://gitlab.example.com/api/v4"
    assert gitlab.token == "gl-secret" and gitlab.owners == ("acme/platform",)
    # a group's token covers its subgroups, not its parent or siblings
    assert gitlab.token_for("acme/platform/tools") == "gl-secret"
    assert gitlab.token_for("acme") is None and gitlab.token_for("acme/platformx") is None
    bitbucket = found.host("bitbucketCloud", "bitbucket.org")
    assert bitbucket is not None and (bitbucket.username, bitbucket.token) == ("bot", "bb-secret")
    assert found.backstage is None
    # secrets are never shown by the settings object
    assert "gh-secret" not in repr(settings) and "gl-secret" not in str(settings)


def test_secrets_from_env_names_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text("from-a-file\n")
    monkeypatch.setenv("BACKSTAGE_TOKEN", "bs-secret")
    text = yaml.safe_dump(
        {
            "integrations": {
                "github": [
                    {"host": "g.test", "tokenFile": str(tmp_path / "token"), "allowedOwners": ["*"]}
                ]
            },
            "backstage": {"baseUrl": "https://backstage.test/", "tokenEnv": "BACKSTAGE_TOKEN"},
        }
    )
    found = integrations_from_settings(load(tmp_path, text, monkeypatch))
    assert found.hosts[0].token == "from-a-file"
    assert found.hosts[0].api_base_url == "https://g.test/api/v3"
    assert found.backstage is not None
    assert (found.backstage.base_url, found.backstage.token) == (
        "https://backstage.test",
        "bs-secret",
    )


def test_a_misspelt_key_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "integrations:\n  github:\n    - host: github.com\n      apiBaseURL: https://x\n"
    with pytest.raises(ValidationError, match="apiBaseURL"):
        load(tmp_path, text, monkeypatch)


def test_an_unreadable_token_file_names_the_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (
        f"integrations:\n  github:\n    - host: g.test\n      tokenFile: {tmp_path / 'no'}\n"
        "      allowedOwners: ['*']\n"
    )
    with pytest.raises(ValueError, match=r"integrations\.github host g\.test: cannot read"):
        integrations_from_settings(load(tmp_path, text, monkeypatch))


@pytest.mark.parametrize(
    ("kind", "entry"),
    [
        ("github", "host: github.com\n      token: t"),
        ("gitlab", "host: gitlab.example.com\n      tokenEnv: GL"),
        ("gitea", "host: gitea.example.com\n      username: bot\n      password: p"),
        ("bitbucketCloud", "username: bot\n      appPassword: p"),
        ("bitbucketServer", "host: bb.example.com\n      token: t"),
    ],
)
def test_every_forge_token_needs_a_scope(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, entry: str
) -> None:
    unscoped = f"integrations:\n  {kind}:\n    - {entry}\n"
    with pytest.raises(ValidationError, match=rf"integrations\.{kind} host .*allowedOwners"):
        load(tmp_path, unscoped, monkeypatch)
    scoped = load(tmp_path, unscoped + "      allowedOwners: [acme]\n", monkeypatch)
    (host,) = integrations_from_settings(scoped).hosts
    assert host.kind == kind and host.owners == ("acme",)


def test_a_scoped_token_is_used_only_for_its_owners(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scoped = load(
        tmp_path,
        "integrations:\n  github:\n    - host: github.com\n      token: t\n"
        "      allowedOwners: [Acme]\n",
        monkeypatch,
    )
    host = integrations_from_settings(scoped).hosts[0]
    assert host.token_for("acme") == host.token_for("ACME") == "t"
    assert host.token_for("other") is None and host.token_for(None) is None
    everyone = ForgeHost("github", "github.com", "https://api.github.com", "t", owners=("*",))
    assert everyone.token_for("other") == "t"


def test_an_azure_token_is_scoped_by_its_organizations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = "integrations:\n  azure:\n    - host: dev.azure.com\n      credentials:\n"
    with pytest.raises(ValidationError, match="organizations"):
        load(tmp_path, entry + "        - personalAccessToken: p\n", monkeypatch)
    monkeypatch.setenv("AZURE_PAT", "from-env")
    settings = load(
        tmp_path,
        entry
        + "        - personalAccessToken: ${AZURE_PAT}\n          organizations: [acme]\n"
        # a service principal is read and not used
        + "        - clientId: c\n          clientSecret: s\n          tenantId: t\n",
        monkeypatch,
    )
    (host,) = integrations_from_settings(settings).hosts
    assert (host.kind, host.api_base_url, host.token) == (
        "azure",
        "https://dev.azure.com",
        "from-env",
    )
    assert host.token_for("acme") == "from-env" and host.token_for("other") is None


def test_a_bitbucket_server_token_is_a_bearer_and_a_password_goes_with_its_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What publish:bitbucketServer sends follows from the entry: a token as a bearer
    token (the host has no user name), a password as Basic with `username`."""
    entries = (
        "integrations:\n  bitbucketServer:\n"
        "    - host: a.example.com\n      username: bot\n      token: t\n"
        "      allowedOwners: [PLAT]\n"
        "    - host: b.example.com\n      username: bob\n      password: pw\n"
        "      allowedOwners: [PLAT]\n"
    )
    a, b = integrations_from_settings(load(tmp_path, entries, monkeypatch)).hosts
    assert (a.token, a.username, a.api_base_url) == (
        "t",
        None,
        "https://a.example.com/rest/api/1.0",
    )
    assert (b.token, b.username) == ("pw", "bob")
