"""The scaffold state file, ``.falsework/scaffold.yaml``: which template version a
repository's branch has absorbed, with the answers it was rendered with and the
pristine commit (the template's own output, kept on the ``falsework/pristine``
branch) that is the base of the next update's 3-way merge.

The file travels with the branch: a squash-merged update brings the new state
with it, a rejected one leaves the old state, so the next update always starts
from what the branch really holds. Teams may edit ``answers`` in it: the next
update renders with the edited answers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

# the branch names the scaffold actions share, re-exported for this package
from falsework.actions.scaffolding import PRISTINE_BRANCH as PRISTINE_BRANCH
from falsework.actions.scaffolding import UPDATE_KIND as UPDATE_KIND
from falsework.errors import InputError

STATE_PATH = ".falsework/scaffold.yaml"
API_VERSION = "falsework.dev/v1"
KIND = "Scaffold"
_HEADER = (
    "# Written by Falsework: the template version this branch has absorbed.\n"
    "# `falsework update` reads it; the answers may be edited for the next update.\n"
)
_SHA = re.compile(r"^[0-9a-f]{40}$")


class StateError(InputError):
    """The scaffold state file is missing or not what Falsework writes."""


@dataclass(frozen=True)
class TemplateSource:
    """Where a template's versions live: a git repository (a URL, or a path on
    this machine), the folder of ``template.yaml`` in it, the version (a tag,
    or a commit when the commit had no tag) and its commit."""

    repository: str
    version: str
    commit: str
    path: str = "."
    ref: str = ""  # template:namespace/name

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "repository": self.repository,
            "path": self.path,
            "version": self.version,
            "commit": self.commit,
        }


@dataclass(frozen=True)
class ScaffoldState:
    """What one branch of a generated repository was made from."""

    template: TemplateSource
    pristine: str  # the pristine commit this branch's content derives from
    answers: dict[str, Any] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()  # the names of the secrets used, never values
    step: str = ""  # the publish step whose pushed tree this repository is
    source_path: str = "."

    def to_json(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "template": self.template.to_json(),
            "pristine": self.pristine,
            "publish": {"step": self.step, "sourcePath": self.source_path},
            "answers": self.answers,
            "secrets": list(self.secrets),
        }

    def dumps(self) -> str:
        body = yaml.safe_dump(self.to_json(), sort_keys=False, allow_unicode=True)
        return _HEADER + body

    def moved_to(
        self, template: TemplateSource, pristine: str, answers: Mapping[str, Any]
    ) -> ScaffoldState:
        return replace(self, template=template, pristine=pristine, answers=dict(answers))

    @classmethod
    def loads(cls, text: str, where: str = STATE_PATH) -> ScaffoldState:
        """Parse the file; ``StateError`` naming the field that is wrong."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise StateError(f"{where}: not valid YAML: {exc}") from None
        return cls.from_json(data, where)

    @classmethod
    def from_json(cls, data: Any, where: str = STATE_PATH) -> ScaffoldState:
        """The state from what ``to_json`` gave (the file's content, a record's)."""
        if not isinstance(data, dict) or data.get("kind") != KIND:
            raise StateError(f"{where}: not a Falsework scaffold state (kind: {KIND} expected)")
        if data.get("apiVersion") != API_VERSION:
            raise StateError(
                f"{where}: apiVersion {data.get('apiVersion')!r} is not {API_VERSION!r}"
            )
        template = data.get("template")
        if not isinstance(template, dict):
            raise StateError(f"{where}: template must be a mapping")
        for key in ("repository", "version", "commit"):
            if not isinstance(template.get(key), str) or not template[key]:
                raise StateError(f"{where}: template.{key} must be a non-empty string")
        if not _SHA.match(template["commit"]):
            raise StateError(f"{where}: template.commit {template['commit']!r} is not a commit")
        pristine = data.get("pristine")
        if not isinstance(pristine, str) or not _SHA.match(pristine):
            raise StateError(f"{where}: pristine {pristine!r} is not a commit")
        answers = data.get("answers") or {}
        if not isinstance(answers, dict):
            raise StateError(f"{where}: answers must be a mapping")
        secrets = data.get("secrets") or []
        if not isinstance(secrets, list) or not all(isinstance(s, str) for s in secrets):
            raise StateError(f"{where}: secrets must be a list of names")
        publish = data.get("publish") or {}
        if not isinstance(publish, dict):
            raise StateError(f"{where}: publish must be a mapping")
        return cls(
            template=TemplateSource(
                repository=template["repository"],
                version=template["version"],
                commit=template["commit"],
                path=str(template.get("path") or "."),
                ref=str(template.get("ref") or ""),
            ),
            pristine=pristine,
            answers=answers,
            secrets=tuple(secrets),
            step=str(publish.get("step") or ""),
            source_path=str(publish.get("sourcePath") or "."),
        )
