"""Built-in actions, one module per family."""

from __future__ import annotations

from typing import Any

from falsework.actions.builtin.azure import AZURE_ACTIONS
from falsework.actions.builtin.bitbucket_cloud import BITBUCKET_CLOUD_ACTIONS
from falsework.actions.builtin.bitbucket_server import BITBUCKET_SERVER_ACTIONS
from falsework.actions.builtin.catalog import CATALOG_ACTIONS, catalog_write
from falsework.actions.builtin.debug import debug_log, debug_wait
from falsework.actions.builtin.fetch import (
    fetch_plain,
    fetch_plain_file,
    fetch_template,
    fetch_template_file,
)
from falsework.actions.builtin.fs import fs_delete, fs_readdir, fs_rename
from falsework.actions.builtin.gitea import GITEA_ACTIONS
from falsework.actions.builtin.github import GITHUB_ACTIONS
from falsework.actions.builtin.gitlab import GITLAB_ACTIONS
from falsework.actions.builtin.http import http_request
from falsework.actions.builtin.publish import publish_git
from falsework.actions.builtin.scaffold import scaffold_update
from falsework.actions.contract import Action

BUILTIN_ACTIONS: tuple[Action[Any], ...] = (
    catalog_write,
    debug_log,
    debug_wait,
    fetch_plain,
    fetch_plain_file,
    fetch_template,
    fetch_template_file,
    fs_delete,
    fs_readdir,
    fs_rename,
    http_request,
    publish_git,
    # settings=UpdatePolicy: publish's rules, the forges, the template folders
    scaffold_update,
    # the forge and catalog families: settings=Integrations (the server's
    # `integrations` and `backstage` sections, its egress and git policies)
    *GITHUB_ACTIONS,
    *GITLAB_ACTIONS,
    *GITEA_ACTIONS,
    *BITBUCKET_CLOUD_ACTIONS,
    *BITBUCKET_SERVER_ACTIONS,
    *AZURE_ACTIONS,
    *CATALOG_ACTIONS,
)
