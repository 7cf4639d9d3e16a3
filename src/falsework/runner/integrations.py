"""The server's ``integrations`` and ``backstage`` sections, as the action families take
them (``falsework.actions.integrations``): built once at the edge, secrets read now."""

from __future__ import annotations

from falsework.actions.integrations import BackstageTarget, ForgeHost, GithubApp, Integrations
from falsework.config import Settings, read_secret


def integrations_from_settings(settings: Settings) -> Integrations:
    section = settings.integrations
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
        hosts.append(ForgeHost("github", gh.host, api, gh.secret(where), None, apps))
    for gl in section.gitlab:
        where = f"integrations.gitlab host {gl.host}"
        base = (gl.base_url or f"https://{gl.host}").rstrip("/")
        api = gl.api_base_url or f"{base}/api/v4"
        hosts.append(ForgeHost("gitlab", gl.host, api, gl.secret(where)))
    for gt in section.gitea:
        where = f"integrations.gitea host {gt.host}"
        base = (gt.base_url or f"https://{gt.host}").rstrip("/")
        password = read_secret(gt.password, gt.password_env, gt.password_file, where)
        hosts.append(ForgeHost("gitea", gt.host, f"{base}/api/v1", password, gt.username))
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
            )
        )
    for bs in section.bitbucket_server:
        where = f"integrations.bitbucketServer host {bs.host}"
        api = bs.api_base_url or f"https://{bs.host}/rest/api/1.0"
        secret = bs.secret(where) or read_secret(bs.password, None, None, where)
        hosts.append(ForgeHost("bitbucketServer", bs.host, api, secret, bs.username))
    backstage = None
    if settings.backstage is not None:
        token = settings.backstage.secret("backstage")
        backstage = BackstageTarget(settings.backstage.base_url.rstrip("/"), token)
    return Integrations(hosts=tuple(hosts), backstage=backstage)
