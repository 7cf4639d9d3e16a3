"""Built-in actions, one module per family.

A family's module is imported only when a template uses one of its actions (or
something lists them all): ``MODULES`` says which module holds each built-in id,
so ``falsework run`` of a ``debug:log`` template never imports the forges' client
libraries. ``tests/actions/test_registry.py`` keeps the table equal to what the
modules really define.
"""

from __future__ import annotations

import importlib
from typing import Any

from falsework.actions.contract import Action

_PKG = "falsework.actions.builtin"

# action id -> the module that defines it (its family)
MODULES: dict[str, str] = {
    "catalog:write": f"{_PKG}.catalog",
    "catalog:register": f"{_PKG}.catalog",
    "catalog:fetch": f"{_PKG}.catalog",
    "debug:log": f"{_PKG}.debug",
    "debug:wait": f"{_PKG}.debug",
    "fetch:plain": f"{_PKG}.fetch",
    "fetch:plain:file": f"{_PKG}.fetch",
    "fetch:template": f"{_PKG}.fetch",
    "fetch:template:file": f"{_PKG}.fetch",
    "fs:delete": f"{_PKG}.fs",
    "fs:readdir": f"{_PKG}.fs",
    "fs:rename": f"{_PKG}.fs",
    "http:request": f"{_PKG}.http",
    "publish:git": f"{_PKG}.publish",
    # settings=UpdatePolicy: publish's rules, the forges, the template folders
    "scaffold:update": f"{_PKG}.scaffold",
    # the forge and catalog families: settings=Integrations (the server's
    # `integrations` and `backstage` sections, its egress and git policies)
    "publish:github": f"{_PKG}.github",
    "publish:github:pull-request": f"{_PKG}.github",
    "github:repo:create": f"{_PKG}.github",
    "github:repo:push": f"{_PKG}.github",
    "github:actions:dispatch": f"{_PKG}.github",
    "github:webhook": f"{_PKG}.github",
    "github:issues:label": f"{_PKG}.github",
    "publish:gitlab": f"{_PKG}.gitlab",
    "publish:gitlab:merge-request": f"{_PKG}.gitlab",
    "publish:gitea": f"{_PKG}.gitea",
    "publish:bitbucketCloud": f"{_PKG}.bitbucket_cloud",
    "publish:bitbucketCloud:pull-request": f"{_PKG}.bitbucket_cloud",
    "publish:bitbucketServer": f"{_PKG}.bitbucket_server",
    "publish:bitbucketServer:pull-request": f"{_PKG}.bitbucket_server",
    "publish:azure": f"{_PKG}.azure",
    "publish:azure:pull-request": f"{_PKG}.azure",
    "http:backstage:request": f"{_PKG}.backstage",
}


def family(module_name: str) -> dict[str, Action[Any]]:
    """The built-in actions ``module_name`` holds (by id), the module imported:
    its module-level actions and the members of its module-level tuples of them."""
    module = importlib.import_module(module_name)
    wanted = {i for i, m in MODULES.items() if m == module_name}
    found: dict[str, Action[Any]] = {}
    for value in vars(module).values():
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if isinstance(item, Action) and item.id in wanted:
                found[item.id] = item
    return found


def every() -> tuple[Action[Any], ...]:
    """Every built-in action, every family imported."""
    found: dict[str, Action[Any]] = {}
    for module_name in dict.fromkeys(MODULES.values()):
        found.update(family(module_name))
    return tuple(found[i] for i in MODULES if i in found)


def __getattr__(name: str) -> Any:
    # the eager tuple of old, for callers that still want every family at once
    if name == "BUILTIN_ACTIONS":
        return every()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
