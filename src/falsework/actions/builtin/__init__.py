"""Built-in actions, one module per family."""

from __future__ import annotations

from typing import Any

from falsework.actions.builtin.catalog import catalog_actions, catalog_write
from falsework.actions.builtin.debug import debug_log, debug_wait
from falsework.actions.builtin.fetch import (
    fetch_plain,
    fetch_plain_file,
    fetch_template,
    fetch_template_file,
)
from falsework.actions.builtin.fs import fs_delete, fs_readdir, fs_rename
from falsework.actions.builtin.github import github_actions
from falsework.actions.builtin.http import http_request
from falsework.actions.builtin.publish import publish_git
from falsework.actions.contract import Action
from falsework.actions.integrations import Integrations

_PLAIN: tuple[Action[Any], ...] = (
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
)


def builtin_actions(integrations: Integrations | None = None) -> tuple[Action[Any], ...]:
    """Every built-in action; the forge and catalog families are built with the
    server's integrations (none configured: only a step's own token works)."""
    forges = integrations or Integrations()
    return (*_PLAIN, *github_actions(forges), *catalog_actions(forges))


BUILTIN_ACTIONS: tuple[Action[Any], ...] = builtin_actions()
