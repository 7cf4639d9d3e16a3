"""The catalog actions: ``catalog:write`` (a catalog-info.yaml from an entity object),
and, against the configured Backstage instance, ``catalog:register`` and
``catalog:fetch`` (Backstage's ids, inputs and outputs)."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import yaml
from pydantic import Field, model_validator

from falsework.actions.builtin.backstage import (
    Backstage,
    http_backstage_request,
    parse_entity_ref,
)
from falsework.actions.builtin.backstage import require as require_backstage
from falsework.actions.context import ActionContext
from falsework.actions.contract import Action, ActionInput, action
from falsework.actions.integrations import Integrations
from falsework.confine import Tree, relative
from falsework.errors import ActionError, ActionSkipped, InputError


class WriteInput(ActionInput):
    file_path: str = Field("catalog-info.yaml", description="Workspace path of the file.")
    entity: dict[str, Any] = Field(description="The entity to write (any catalog kind).")


@action(
    id="catalog:write",
    rebuilds_workspace=True,
    description="Writes the catalog-info.yaml for your template",
    input=WriteInput,
    dry_run=True,
    examples=[
        (
            "Write a catalog-info.yaml file",
            "steps:\n  - action: catalog:write\n    id: create-catalog-info-file\n"
            "    name: Create catalog file\n    input:\n      entity:\n"
            "        apiVersion: backstage.io/v1alpha1\n        kind: Component\n"
            "        metadata:\n          name: test\n          annotations: {}\n"
            "        spec:\n          type: service\n          lifecycle: production\n"
            "          owner: default/owner\n",
        ),
        (
            "Write into a sub-folder",
            "steps:\n  - action: catalog:write\n    id: create-catalog-info-file\n"
            "    name: Create catalog file\n    input:\n      filePath: service/catalog-info.yaml\n"
            "      entity:\n        apiVersion: backstage.io/v1alpha1\n"
            "        kind: Component\n        metadata:\n          name: test\n",
        ),
    ],
)
async def catalog_write(ctx: ActionContext[WriteInput]) -> None:
    ctx.logger.info(f"Writing {ctx.input.file_path}")
    path = relative(ctx.input.file_path)
    entity = dict(ctx.input.entity)
    if ctx.template_ref:
        # as Backstage's: the entity says which template made it
        metadata = dict(entity.get("metadata") or {})
        annotations = dict(metadata.get("annotations") or {})
        annotations["backstage.io/source-template"] = ctx.template_ref
        entity["metadata"] = {**metadata, "annotations": annotations}
    await ctx.in_thread(_write, ctx.workspace, path, backstage_yaml(entity))


class _BackstageDumper(yaml.SafeDumper):
    """PyYAML writing YAML the way Backstage's ``yaml.stringify`` does (the file
    lands in a repository: the same bytes make the same diff): a list indented
    under its key, double quotes where quotes are needed (single when the text
    holds a double quote), multi-line text as a literal block, long lines
    folded at 80 columns."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def choose_scalar_style(self) -> str:
        style = str(super().choose_scalar_style())
        event = self.event
        if style == "'" and isinstance(event, yaml.ScalarEvent) and '"' not in event.value:
            return '"'
        return style

    def write_double_quoted(self, text: str, split: bool = True) -> None:
        if not _foldable(text):
            super().write_double_quoted(text, split)
            return
        # as PyYAML folds a single-quoted text: a line break for a space, once
        # past the width (a plain break folds back into one space when read)
        self.write_indicator('"', True)
        for index, word in enumerate(text.split(" ")):
            if index:
                if split and self.column > self.best_width:
                    self.write_indent()
                else:
                    self.stream.write(" ")
                    self.column += 1
            self.stream.write(word)
            self.column += len(word)
        self.write_indicator('"', False)


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BackstageDumper.add_representer(str, _represent_text)


def _foldable(text: str) -> bool:
    return (
        text.isprintable()
        and '"' not in text
        and "\\" not in text
        and "  " not in text
        and text == text.strip(" ")
    )


def backstage_yaml(value: Any) -> str:
    """``value`` as YAML, written as Backstage writes it (see ``_BackstageDumper``)."""
    return yaml.dump(value, Dumper=_BackstageDumper, sort_keys=False, allow_unicode=True, width=80)


def _write(workspace: Path, path: str, text: str) -> None:
    with Tree(workspace) as ws:
        ws.write_bytes(path, text.encode("utf-8"))


# -- catalog:register and catalog:fetch (need a Backstage instance) ----------------
class RegisterInput(ActionInput):
    catalog_info_url: str | None = Field(
        None, description="An absolute URL pointing to the catalog info file location"
    )
    repo_contents_url: str | None = Field(
        None, description="An absolute URL pointing to the root of a repository directory tree"
    )
    catalog_info_path: str | None = Field(
        None,
        description="A relative path from the repo root pointing to the catalog info file, "
        "defaults to /catalog-info.yaml",
    )
    optional: bool | None = Field(
        None, description="Permit the registered location to optionally exist. Default: false"
    )

    @model_validator(mode="after")
    def _one_way(self) -> RegisterInput:
        if (self.catalog_info_url is None) == (self.repo_contents_url is None):
            raise ValueError("give exactly one of catalogInfoUrl or repoContentsUrl")
        if self.catalog_info_url is not None and self.catalog_info_path is not None:
            raise ValueError("catalogInfoPath goes with repoContentsUrl, not catalogInfoUrl")
        return self


# Where a forge's file pages keep the ref: the part of the URL up to and including it.
_VIEW = re.compile(r"^(?P<root>.*?/(?:-/)?(?:blob|tree|src/branch|src/tag|src)/[^/]+)(?:/.*)?$")


def resolve_url(base: str, path: str) -> str:
    """``path`` against a repository contents URL, as Backstage's integrations resolve
    it: an absolute path from the repository's root at the same ref, else relative."""
    if path.startswith("/"):
        match = _VIEW.match(base.split("?", 1)[0])
        if match:
            return f"{match['root']}{path}"
        return urljoin(base, path)
    return urljoin(base.rstrip("/") + "/", path)


async def record_catalog_register(ctx: ActionContext[RegisterInput]) -> None:
    """In a rehearsal: the file it would register, and the entity in it when an
    earlier step recorded the tree the file comes from."""
    inp = ctx.input
    assert ctx.recording is not None
    if inp.catalog_info_url is not None:
        url = inp.catalog_info_url
        found = None
    else:
        path = inp.catalog_info_path or "/catalog-info.yaml"
        url = resolve_url(inp.repo_contents_url or "", path)
        found = _recorded_entity(ctx.recording.rehearsal.calls, path.lstrip("/"))
    ctx.recording.note(catalogInfoUrl=url)
    ctx.logger.info(f"Would register {url} in the catalog")
    if found is not None:
        ctx.output("entityRef", _ref(found))
    ctx.output("catalogInfoUrl", url)


def _recorded_entity(calls: list[dict[str, Any]], path: str) -> dict[str, Any] | None:
    """The entity a recorded push's file ``path`` describes (the last push wins)."""
    for call in reversed(calls):
        for item in call.get("files") or []:
            if item["path"] != path:
                continue
            try:
                docs = list(yaml.safe_load_all(base64.b64decode(item["base64Content"])))
            except yaml.YAMLError:
                return None
            entities = [
                d for d in docs if isinstance(d, dict) and isinstance(d.get("metadata"), dict)
            ]
            entities = [e for e in entities if "name" in e["metadata"] and "kind" in e]
            return _pick(entities) if entities else None
    return None


@action(
    settings=Integrations,
    id="catalog:register",
    recorder=record_catalog_register,
    description="Registers entities from a catalog descriptor file in the workspace into "
    "the software catalog. With no Backstage instance configured the step ends skipped "
    "with a warning.",
    input=RegisterInput,
    output={
        "type": "object",
        "properties": {
            "entityRef": {"type": "string", "description": "The registered entity"},
            "catalogInfoUrl": {"type": "string", "description": "The registered file"},
        },
    },
    dry_run_output={},  # Backstage's declares no output schema: a dry run shows none
    examples=[
        (
            "Register the catalog-info.yaml of the published repository",
            "steps:\n  - id: register\n    name: Register\n    action: catalog:register\n"
            "    input:\n      repoContentsUrl: ${{ steps.publish.output.repoContentsUrl }}\n"
            "      catalogInfoPath: /catalog-info.yaml\n",
        ),
        (
            "Register a file by its URL, which may not exist yet",
            "steps:\n  - id: register\n    name: Register\n    action: catalog:register\n"
            "    input:\n      catalogInfoUrl: "
            "https://github.com/acme/my-service/blob/main/catalog-info.yaml\n"
            "      optional: true\n",
        ),
    ],
)
async def catalog_register(ctx: ActionContext[RegisterInput], integrations: Integrations) -> None:
    inp = ctx.input
    if inp.catalog_info_url is not None:
        url = inp.catalog_info_url
    else:
        base = inp.repo_contents_url or ""
        host = urlsplit(base).netloc
        if not any(h.host.lower() == host.lower() for h in integrations.hosts) and host not in (
            "github.com",
            "gitlab.com",
            "bitbucket.org",
        ):
            raise InputError(f"No integration found for host {base}")
        url = resolve_url(base, inp.catalog_info_path or "/catalog-info.yaml")
    if integrations.backstage is None:
        raise ActionSkipped(
            f"catalog:register did not register {url}: no Backstage instance is "
            "configured (set backstage.baseUrl and a token in the server's configuration)"
        )
    ctx.logger.info(f"Registering {url} in the catalog")
    async with Backstage(integrations.backstage, integrations) as catalog:
        # an interrupted earlier run of this step may have registered it already
        earlier = (await ctx.step_key()).earlier
        try:
            if await catalog.add_location(url, exists_ok=earlier) is None:
                ctx.logger.info(f"{url} was registered by an earlier run of this step")
        except ActionError:
            if not inp.optional:
                raise
        try:
            checked = await catalog.add_location(url, dry_run=True) or {}
            found = checked.get("entities") or []
            if found:
                ctx.output("entityRef", _ref(_pick(found)))
        except ActionError:
            if not inp.optional:
                raise
    ctx.output("catalogInfoUrl", url)


def _pick(entities: list[dict[str, Any]]) -> dict[str, Any]:
    named = [e for e in entities if not e["metadata"]["name"].startswith("generated-")]
    for entity in named:
        if entity.get("kind") == "Component":
            return entity
    return named[0] if named else entities[0]


def _ref(entity: dict[str, Any]) -> str:
    meta = entity["metadata"]
    return f"{entity['kind'].lower()}:{meta.get('namespace', 'default')}/{meta['name']}"


class FetchInput(ActionInput):
    entity_ref: str | None = Field(None, description="Entity reference of the entity to get")
    entity_refs: list[str] | None = Field(
        None, description="Entity references of the entities to get"
    )
    optional: bool | None = Field(
        None, description="Allow the entity or entities to optionally exist. Default: false"
    )
    default_kind: str | None = Field(None, description="The default kind")
    default_namespace: str | None = Field(None, description="The default namespace")


@action(
    settings=Integrations,
    id="catalog:fetch",
    description="Returns entity or entities from the catalog by entity reference(s)",
    input=FetchInput,
    dry_run=True,
    output={
        "type": "object",
        "properties": {
            "entity": {"description": "The entity (with `entityRef`)"},
            "entities": {"type": "array", "description": "The entities (with `entityRefs`)"},
        },
    },
    examples=[
        (
            "Fetch the owner group of a service",
            "steps:\n  - id: owner\n    name: Fetch owner\n    action: catalog:fetch\n"
            "    input:\n      entityRef: team-a\n      defaultKind: group\n"
            "      optional: true\n",
        )
    ],
)
async def catalog_fetch(ctx: ActionContext[FetchInput], integrations: Integrations) -> None:
    inp = ctx.input
    if not inp.entity_ref and not inp.entity_refs:
        if inp.optional:
            return
        raise InputError("Missing entity reference or references")
    target = require_backstage(integrations, "catalog:fetch")
    async with Backstage(target, integrations) as catalog:
        if inp.entity_ref:
            ref = parse_entity_ref(inp.entity_ref, inp.default_kind, inp.default_namespace)
            entity = await catalog.entity(ref)
            if entity is None and not inp.optional:
                raise ActionError(f"Entity {inp.entity_ref} not found")
            ctx.output("entity", entity)
        if inp.entity_refs:
            refs = [
                parse_entity_ref(r, inp.default_kind, inp.default_namespace)
                for r in inp.entity_refs
            ]
            items = await catalog.entities(refs)
            for given, item in zip(inp.entity_refs, items, strict=True):
                if item is None and not inp.optional:
                    raise ActionError(f"Entity {given} not found")
            ctx.output("entities", items)


CATALOG_ACTIONS: tuple[Action[Any], ...] = (catalog_register, catalog_fetch, http_backstage_request)
