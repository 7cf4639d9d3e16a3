"""The answers an update renders with, checked before the update starts.

A server that recorded a repository knows its stored answers (the row's state)
and can read the parameters of the version an update goes to, so a new required
parameter is refused when the update is asked for (422, listing each missing
parameter's name, title and schema, with the answers kept, never secrets),
instead of a task that fails later. The form then asks for them and starts the
update with them as ``values`` (``--set`` on the command line).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from falsework.actions.git import GitPolicy
from falsework.errors import FalseworkError, InputError
from falsework.templates import Template
from falsework.updates.gitrepo import Repo
from falsework.updates.render import (
    MissingAnswersError,
    TemplateVersion,
    answers_for,
    extract,
    fetch_versions,
    find_template,
    pick_version,
    renamed_answers,
    template_remote,
)
from falsework.updates.state import ScaffoldState

# how a form shows a value it must not echo (a password field's answer is left out)
_HIDDEN_WIDGETS = frozenset({"password"})


class AnswersNeededError(InputError):
    """The version to update to needs answers the stored ones do not give."""

    status_code = 422

    def __init__(self, message: str, needed: list[Needed]) -> None:
        super().__init__(message)
        self.needed = needed

    @property
    def extra(self) -> dict[str, Any]:
        """What the API's error body carries besides the message."""
        return {"needed": [n.to_json() for n in self.needed]}


@dataclass(frozen=True)
class Needed:
    """One repository's answers to give: the parameters the new version asks for
    (missing, or no longer valid) and the answers kept, to fill a form with."""

    repository: str
    template_ref: str
    version: str
    parameters: list[dict[str, Any]]
    answers: dict[str, Any]
    errors: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "templateRef": self.template_ref,
            "version": self.version,
            "parameters": self.parameters,
            "answers": self.answers,
            "errors": self.errors,
        }


def property_schema(template: Template, name: str) -> dict[str, Any]:
    """The schema of the top-level parameter ``name`` (its first page's), or {}."""
    for page in template.parameters:
        found = (page.get("properties") or {}).get(name)
        if isinstance(found, dict):
            return found
    return {}


def shown_answers(template: Template, answers: Mapping[str, Any]) -> dict[str, Any]:
    """The answers a form may show: none whose field hides what is typed."""
    shown: dict[str, Any] = {}
    for name, value in answers.items():
        schema = property_schema(template, name)
        if schema.get("ui:widget") in _HIDDEN_WIDGETS or schema.get("ui:field") == "Secret":
            continue
        shown[name] = value
    return shown


def _named(error: Mapping[str, Any]) -> str | None:
    """The top-level parameter a validation error is about."""
    if error.get("name") == "required":
        return str(error.get("argument"))
    prop = str(error.get("property") or "").removeprefix("instance").lstrip(".")
    return prop.split(".", 1)[0].split("[", 1)[0] or None


def needed(
    template: Template, state: ScaffoldState, overrides: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """The parameters ``template`` asks answers for that ``state`` (with
    ``overrides``) does not give, and the validation errors; None when they fit."""
    try:
        answers_for(template, state, overrides)
    except MissingAnswersError as exc:
        names = [n for n in dict.fromkeys(_named(e) for e in exc.errors) if n]
        parameters = []
        for name in names:
            schema = property_schema(template, name)
            parameters.append(
                {"name": name, "title": schema.get("title") or name, "schema": schema}
            )
        return parameters, exc.errors
    return None


@dataclass
class Versions:
    """The template versions one request reads: each template repository fetched
    once, each (repository, folder, ref, version) loaded once."""

    policy: GitPolicy
    roots: tuple[Path, ...] | None
    work: Path
    _fetched: dict[str, tuple[Repo, dict[str, str], str]] = field(default_factory=dict)
    _loaded: dict[tuple[str, str, str, str], tuple[TemplateVersion, Template]] = field(
        default_factory=dict
    )

    async def load(self, state: ScaffoldState, to: str | None) -> tuple[TemplateVersion, Template]:
        """The version ``to`` (default the newest) of ``state``'s template, loaded."""
        source = state.template
        key = (source.repository, source.path, source.ref, to or "")
        if key in self._loaded:
            return self._loaded[key]
        if source.repository not in self._fetched:
            scratch = await Repo.init_bare(self.work / f"t{len(self._fetched)}.git", self.policy)
            remote = await template_remote(self.policy, source.repository, self.roots)
            refs = await fetch_versions(scratch, remote)
            self._fetched[source.repository] = (scratch, refs, remote.shown)
        scratch, refs, shown = self._fetched[source.repository]
        version = await pick_version(scratch, refs, shown, to)
        folder = self.work / f"v{len(self._loaded)}"
        try:
            await extract(scratch, version.commit, source.path, folder)
            template = await asyncio.to_thread(find_template, folder, source.ref)
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)
        self._loaded[key] = (version, template)
        return version, template


async def check(
    states: Mapping[str, ScaffoldState],
    to: str | None,
    overrides: Mapping[str, Any],
    policy: GitPolicy,
    roots: tuple[Path, ...] | None,
) -> list[Needed]:
    """For each repository (``{repository: state}``) the answers its update to
    ``to`` still needs. A repository whose template cannot be read now is left
    to its update task, which says why."""
    found: list[Needed] = []
    with tempfile.TemporaryDirectory(prefix="falsework-answers-") as tmp:
        versions = Versions(policy, roots, Path(tmp))
        for repository, state in states.items():
            try:
                version, template = await versions.load(state, to)
                if version.commit == state.template.commit and not overrides:
                    continue  # already there: the update has nothing to render
                missing = await asyncio.to_thread(needed, template, state, overrides)
            except FalseworkError:
                continue
            if missing is None:
                continue
            parameters, errors = missing
            answers = renamed_answers(template, state.answers)
            found.append(
                Needed(
                    repository=repository,
                    template_ref=template.ref,
                    version=version.name,
                    parameters=parameters,
                    answers=shown_answers(template, answers),
                    errors=errors,
                )
            )
    return found
