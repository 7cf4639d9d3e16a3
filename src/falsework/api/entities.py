"""Read-only routes for the form's pickers: catalog entities and the repository hosts.

``GET /api/falsework/v1/entities`` lists entities for OwnerPicker, EntityPicker,
MultiEntityPicker and OwnedEntityPicker: those of the ``entities`` files in the config
(``catalog-info.yaml`` documents) and, when ``backstage:`` is configured, those of that
Backstage catalog (its ``by-query`` API, through the egress policy like the catalog
actions, with the configured token). Filters: ``kind`` (any of), ``filter``
(``field=value``, e.g. ``spec.type=service``), ``q`` (words in the ref, title or
description), ``owned`` (owned by the caller or one of their groups).

``GET /api/falsework/v1/repo-hosts`` lists the hosts of ``integrations`` for
RepoUrlPicker and, where the server holds a token for a host, the owners that token
may publish to (its ``allowedOwners``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import anyio
import yaml
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from falsework.actions.integrations import Integrations
from falsework.api.auth import Identity
from falsework.api.deps import Caller, Svc
from falsework.api.models import errors
from falsework.config import Settings
from falsework.errors import FalseworkError
from falsework.types import JSONObject

log = logging.getLogger("falsework.api")
router = APIRouter(tags=["pickers"])

MAX_ITEMS = 200
_FIELDS = ",".join(
    (
        "kind",
        "metadata.name",
        "metadata.namespace",
        "metadata.title",
        "metadata.description",
        "spec.owner",
        "spec.type",
        "spec.profile.displayName",
    )
)


class Entity(BaseModel):
    ref: str = Field(description="kind:namespace/name, lower-case kind")
    kind: str
    namespace: str
    name: str
    title: str | None = None
    description: str | None = None
    owner: str | None = Field(default=None, description="spec.owner as a full ref")
    type: str | None = None


class EntityList(BaseModel):
    items: list[Entity]
    sources: list[str] = Field(description="Where they come from: file, backstage")
    errors: list[str] = Field(
        default_factory=list, description="Sources that could not be read, and why"
    )


class RepoHost(BaseModel):
    host: str
    kind: str
    owners: list[str] = Field(
        default_factory=list,
        description="The owners the server's token for this host may publish to",
    )


class RepoHosts(BaseModel):
    hosts: list[RepoHost]


def full_ref(ref: str, default_kind: str, default_namespace: str = "default") -> str:
    """``team-a`` → ``group:default/team-a``; ``User:x/bob`` → ``user:x/bob``."""
    kind, sep, rest = ref.partition(":")
    if not sep:
        kind, rest = default_kind, ref
    namespace, sep, name = rest.partition("/")
    if not sep:
        namespace, name = default_namespace, rest
    return f"{kind.lower()}:{namespace.lower()}/{name.lower()}"


def entity_of(doc: Any) -> JSONObject | None:
    if not isinstance(doc, dict) or not isinstance(doc.get("kind"), str):
        return None
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        return None
    spec: dict[str, Any] = doc["spec"] if isinstance(doc.get("spec"), dict) else {}
    namespace = str(metadata.get("namespace") or "default")
    kind = doc["kind"]
    profile: dict[str, Any] = spec["profile"] if isinstance(spec.get("profile"), dict) else {}
    owner = spec.get("owner")
    return {
        "ref": full_ref(f"{kind}:{namespace}/{metadata['name']}", kind),
        "kind": kind,
        "namespace": namespace,
        "name": metadata["name"],
        "title": metadata.get("title") or profile.get("displayName"),
        "description": metadata.get("description"),
        "owner": full_ref(owner, "group", namespace) if isinstance(owner, str) and owner else None,
        "type": spec.get("type") if isinstance(spec.get("type"), str) else None,
        "_doc": doc,
    }


def _value(doc: Any, dotted: str) -> Any:
    current = doc
    for part in dotted.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


@dataclass
class Wanted:
    kinds: frozenset[str] = frozenset()
    filters: tuple[tuple[str, str], ...] = ()
    words: tuple[str, ...] = ()
    owners: frozenset[str] | None = None  # owned by one of these refs
    limit: int = 50

    def accepts(self, entity: JSONObject) -> bool:
        if self.kinds and str(entity["kind"]).lower() not in self.kinds:
            return False
        for key, value in self.filters:
            found = _value(entity["_doc"], key)
            values = found if isinstance(found, list) else [found]
            if not any(str(v).lower() == value.lower() for v in values if v is not None):
                return False
        if self.owners is not None and entity.get("owner") not in self.owners:
            return False
        hay = " ".join(str(entity.get(k) or "") for k in ("ref", "title", "description")).lower()
        return all(word in hay for word in self.words)


@dataclass
class EntitySource:
    """The configured sources, read on demand (files re-read when they change)."""

    files: list[Path]
    integrations: Integrations | None
    _cache: dict[Path, tuple[tuple[int, int], list[JSONObject]]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> EntitySource:
        integrations = next(
            (p for p in settings.action_policies() if isinstance(p, Integrations)), None
        )
        return cls(list(settings.entities), integrations)

    @property
    def names(self) -> list[str]:
        out = ["file"] if self.files else []
        if self.integrations is not None and self.integrations.backstage is not None:
            out.append("backstage")
        return out

    def from_files(self) -> tuple[list[JSONObject], list[str]]:
        found: list[JSONObject] = []
        problems: list[str] = []
        for path in self.files:
            try:
                st = path.stat()
                key = (st.st_mtime_ns, st.st_size)
                cached = self._cache.get(path)
                if cached is None or cached[0] != key:
                    docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
                    entities = [e for e in map(entity_of, docs) if e is not None]
                    self._cache[path] = (key, entities)
                found.extend(self._cache[path][1])
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
                problems.append(f"entities file {path}: {exc}")
        return found, problems

    async def from_backstage(self, wanted: Wanted) -> list[JSONObject]:
        assert self.integrations is not None and self.integrations.backstage is not None
        target = self.integrations.backstage
        headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("fields", _FIELDS),
            ("limit", MAX_ITEMS),
        ]
        # filter params are OR-ed, the conditions inside one AND-ed; ownership is the
        # catalog's relation (full refs), whatever form spec.owner was written in
        for kind in sorted(wanted.kinds) or [""]:
            for owner in sorted(wanted.owners) if wanted.owners is not None else [""]:
                parts = [f"kind={kind}"] if kind else []
                parts += [f"relations.ownedBy={owner}"] if owner else []
                parts += [f"{k}={v}" for k, v in wanted.filters]
                if parts:
                    params.append(("filter", ",".join(parts)))
        if wanted.words:
            # the catalog narrows by the longest word; every word is checked here after
            params.append(("fullTextFilterTerm", max(wanted.words, key=len)))
            params.append(("fullTextFilterFields", "metadata.name,metadata.title"))
        async with self.integrations.client(target.base_url, headers, timeout=10.0) as http:
            answer = await http.get("/api/catalog/entities/by-query", params=params)
        if answer.status_code != 200:
            raise FalseworkError(f"Backstage answered HTTP {answer.status_code}")
        items = answer.json().get("items", [])
        return [e for e in map(entity_of, items) if e is not None]

    async def list(self, wanted: Wanted) -> tuple[list[JSONObject], list[str]]:
        found, problems = await anyio.to_thread.run_sync(self.from_files)
        if "backstage" in self.names:
            # httpx (and the rich its package imports) only where a catalog is asked:
            # a tenth of a server's start
            import httpx

            try:
                found += await self.from_backstage(wanted)
            except (FalseworkError, httpx.HTTPError, ValueError) as exc:
                # the page still works without it (a typed ref is accepted)
                message = exc.message if isinstance(exc, FalseworkError) else str(exc)
                log.warning("entities from Backstage: %s", message)
                problems.append(f"backstage: {message}")
        seen: set[str] = set()
        out: list[JSONObject] = []
        for entity in found:
            if entity["ref"] in seen or not wanted.accepts(entity):
                continue
            seen.add(str(entity["ref"]))
            out.append({k: v for k, v in entity.items() if k != "_doc"})
        out.sort(key=lambda e: (str(e.get("title") or e["name"]).lower(), e["ref"]))
        return out[: wanted.limit], problems


def _split(values: Iterable[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _sources(svc: Svc) -> EntitySource:
    # built on first use: reading the config's secrets is not needed before
    if svc.entities is None:
        svc.entities = EntitySource.from_settings(svc.settings)
    return svc.entities


@router.get(
    "/v1/entities",
    response_model=EntityList,
    response_model_exclude_none=True,
    summary="Catalog entities for the form's pickers (entities files, Backstage)",
    responses=errors(401),
)
async def entities(
    svc: Svc,
    caller: Caller,
    kind: Annotated[list[str], Query(description="Kinds, any of (Group,User)")] = [],  # noqa: B006
    filter: Annotated[list[str], Query(description="field=value, all of (spec.type=service)")] = [],  # noqa: B006
    q: Annotated[str, Query(max_length=200, description="Words to search for")] = "",
    owned: Annotated[bool, Query(description="Only those the caller's groups own")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_ITEMS)] = 50,
) -> JSONObject:
    filters = tuple(
        (key.strip(), value.strip())
        for key, sep, value in (f.partition("=") for f in _split(filter))
        if sep and key.strip()
    )
    wanted = Wanted(
        kinds=frozenset(k.lower() for k in _split(kind)),
        filters=filters,
        words=tuple(w for w in q.lower().split() if w),
        owners=_owners(caller) if owned else None,
        limit=limit,
    )
    source = _sources(svc)
    items, problems = await source.list(wanted)
    return {"items": items, "sources": source.names, "errors": problems}


def _owners(caller: Identity) -> frozenset[str]:
    return frozenset(full_ref(r, "group") for r in (caller.ref, *caller.groups))


@router.get(
    "/v1/repo-hosts",
    response_model=RepoHosts,
    summary="The repository hosts of `integrations` (RepoUrlPicker), with the owners "
    "the server's token may publish to",
    responses=errors(401),
)
async def repo_hosts(svc: Svc, caller: Caller) -> JSONObject:
    del caller
    section = svc.settings.integrations
    hosts: dict[str, JSONObject] = {}

    def add(host: str, kind: str, owners: Iterable[str] = ()) -> None:
        entry = hosts.setdefault(host, {"host": host, "kind": kind, "owners": []})
        entry["owners"] = sorted({*entry["owners"], *(o for o in owners if o != "*")})

    for gh in section.github:
        has_token = any(x is not None for x in (gh.token, gh.token_env, gh.token_file))
        owners = list(gh.allowed_owners) if has_token else []
        for app in gh.apps:
            owners += app.allowed_installation_owners
        add(gh.host, "github", owners)
    for gl in section.gitlab:
        add(gl.host, "gitlab")
    for gt in section.gitea:
        add(gt.host, "gitea")
    if section.bitbucket_cloud:
        add("bitbucket.org", "bitbucketCloud")
    for bs in section.bitbucket_server:
        add(bs.host, "bitbucketServer")
    for az in section.azure:
        add(az.host, "azure")
    for git in section.git:
        add(git.host, hosts.get(git.host, {}).get("kind", "git"), git.allowed_owners)
    return {"hosts": list(hosts.values())}
