"""The Template model: one ``scaffolder.backstage.io/v1beta3`` document, loaded from YAML."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from falsework.errors import TemplateError
from falsework.taskio import Recovery
from falsework.templates.plainschema import plain_schema
from falsework.templating.regex import pattern_problem

API_VERSION = "scaffolder.backstage.io/v1beta3"
DEFAULT_NAMESPACE = "default"


@dataclass
class Template:
    """A loaded v1beta3 Template; ``raw`` keeps the whole document, unknown keys too."""

    ref: str
    name: str
    namespace: str
    title: str
    description: str
    tags: list[str]
    owner: str
    type: str
    path: Path
    raw: dict[str, Any]
    parameters: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    output: dict[str, Any] = field(default_factory=dict)
    secrets_schema: dict[str, Any] | None = None
    # plain_pages's answer and the page list it was found for
    _plain: tuple[list[dict[str, Any]], bool] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def plain_pages(self) -> bool:
        """Whether every parameter page is plain (``plainschema.plain_schema``), found
        once for a page list rather than on every create (issue 17, target 3): a
        loaded template's pages are not changed in place (another list is seen)."""
        found = self._plain
        if found is None or found[0] is not self.parameters:
            found = self._plain = (self.parameters, all(map(plain_schema, self.parameters)))
        return found[1]

    @classmethod
    def from_document(cls, document: dict[str, Any], path: Path) -> Template:
        """Build from a parsed document; raises TemplateError when it is not a
        Template at all (``falsework templates validate`` reports the details)."""
        if not isinstance(document, dict) or document.get("kind") != "Template":
            raise TemplateError(f"{path}: not a Template (kind: Template expected)")
        metadata = document.get("metadata")
        if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
            raise TemplateError(f"{path}: metadata.name is missing")
        spec = document.get("spec")
        spec = spec if isinstance(spec, dict) else {}
        name = metadata["name"]
        namespace = str(metadata.get("namespace") or DEFAULT_NAMESPACE)
        secrets = spec.get("secrets")
        secrets_schema = secrets.get("schema") if isinstance(secrets, dict) else None
        tags = metadata.get("tags")
        pages = parameter_pages(spec.get("parameters"))
        for index, page in enumerate(pages):
            for where, message in pattern_problems(page):
                shown = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where)
                raise TemplateError(f"{path}: spec.parameters[{index}]{shown}: {message}")
        return cls(
            ref=f"template:{namespace}/{name}",
            name=name,
            namespace=namespace,
            title=str(metadata.get("title") or name),
            description=str(metadata.get("description") or ""),
            tags=[str(t) for t in tags] if isinstance(tags, list) else [],
            owner=str(spec.get("owner") or ""),
            type=str(spec.get("type") or ""),
            path=path.resolve(),
            raw=document,
            parameters=pages,
            steps=[s for s in spec.get("steps") or [] if isinstance(s, dict)]
            if isinstance(spec.get("steps"), list)
            else [],
            output=spec["output"] if isinstance(spec.get("output"), dict) else {},
            secrets_schema=secrets_schema if isinstance(secrets_schema, dict) else None,
        )

    @property
    def directory(self) -> Path:
        """The folder the template's relative URLs (``./skeleton``) resolve against."""
        return self.path.parent

    def task_spec(
        self, values: dict[str, Any], user: dict[str, Any] | None = None, *, shared: bool = False
    ) -> dict[str, Any]:
        """Backstage's TaskSpec for a run of this template with these values.

        ``shared``: the template's own parts (steps, output, metadata) and
        ``values`` and ``user`` go in as they are, not copied, for a caller that
        serializes the spec at once and changes none of it below its top level
        (the API's create: five deep copies a create that it did not need)."""
        clone = _same if shared else copy.deepcopy
        spec = self.raw.get("spec") or {}
        metadata = {"namespace": self.namespace, **clone(self.raw.get("metadata") or {})}
        task_spec: dict[str, Any] = {
            "apiVersion": self.raw.get("apiVersion", API_VERSION),
            "steps": clone(self.steps),
            "output": clone(self.output),
            "parameters": clone(values),
            "user": clone(user) if user else {},
            "templateInfo": {
                "entityRef": self.ref,
                "baseUrl": self.path.as_uri(),
                "entity": {"metadata": metadata},
            },
        }
        if "EXPERIMENTAL_recovery" in spec:
            task_spec["EXPERIMENTAL_recovery"] = clone(spec["EXPERIMENTAL_recovery"])
        return task_spec

    @property
    def recovery(self) -> Recovery:
        """How a task of this template comes back when its worker vanishes, stored
        with the task when it is created (docs/engine.md): ``startOver`` re-runs
        every step, ``none`` fails the task, anything else (the field absent
        included) resumes after the last completed step."""
        return recovery_of(self.raw.get("spec") or {})

    def parameter_schema(self) -> dict[str, Any]:
        """What the form renders: ``{title, description, steps: [{title, description,
        schema}]}`` as Backstage's ``/parameter-schema`` returns it."""
        result: dict[str, Any] = {"title": self.title}
        metadata = self.raw.get("metadata") or {}
        if metadata.get("description") is not None:
            result["description"] = metadata["description"]
        if "ui:options" in metadata:
            result["ui:options"] = copy.deepcopy(metadata["ui:options"])
        steps = []
        for page in self.parameters:
            step: dict[str, Any] = {
                "title": page.get("title", "Please enter the following information")
            }
            if page.get("description") is not None:
                step["description"] = page["description"]
            step["schema"] = copy.deepcopy(page)
            steps.append(step)
        result["steps"] = steps
        return result

    def summary(self) -> dict[str, Any]:
        """One gallery card."""
        return {
            "ref": self.ref,
            "name": self.name,
            "namespace": self.namespace,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "owner": self.owner,
            "type": self.type,
        }


def parameter_pages(parameters: Any) -> list[dict[str, Any]]:
    """``spec.parameters`` as a list of pages (one schema is one page)."""
    if isinstance(parameters, dict):
        return [parameters]
    if isinstance(parameters, list):
        return [p for p in parameters if isinstance(p, dict)]
    return []


# Inside these, a "pattern" is a value, not a schema keyword.
_DATA_KEYS = frozenset({"default", "const", "enum", "examples"})


def pattern_problems(schema: Any) -> Iterator[tuple[list[str | int], str]]:
    """``(path, message)`` for each regular expression of a JSON Schema that may
    not be compiled (too long or too large: ``templating.regex``), and for
    ``unevaluatedProperties`` beside ``patternProperties`` (which jsonschema
    would match with Python's ``re``, without a time limit)."""
    unevaluated: list[str | int] | None = None
    has_patterns = False
    stack: list[tuple[Any, list[str | int]]] = [(schema, [])]
    while stack:
        node, path = stack.pop()
        if isinstance(node, list):
            stack.extend((item, [*path, i]) for i, item in enumerate(node))
            continue
        if not isinstance(node, Mapping):
            continue
        for key, value in node.items():
            where: list[str | int] = [*path, str(key)]
            if key in _DATA_KEYS or str(key).startswith("ui:"):
                continue
            if key == "pattern" and isinstance(value, str):
                problem = pattern_problem(value)
                if problem is not None:
                    yield where, f"pattern {_short(value)}: {problem}"
            elif key == "patternProperties" and isinstance(value, Mapping):
                has_patterns = True
                for pattern in value:
                    problem = pattern_problem(str(pattern))
                    if problem is not None:
                        yield where, f"pattern {_short(str(pattern))}: {problem}"
            elif key == "unevaluatedProperties" and unevaluated is None:
                unevaluated = where
            stack.append((value, where))
    if unevaluated is not None and has_patterns:
        yield (
            unevaluated,
            "unevaluatedProperties cannot be combined with patternProperties "
            "(use additionalProperties)",
        )


def _short(pattern: str) -> str:
    return repr(pattern if len(pattern) <= 60 else pattern[:57] + "...")


def read_documents(path: Path) -> list[Any]:
    """Every YAML document in a file; raises TemplateError on a YAML error."""
    try:
        text = path.read_text(encoding="utf-8")
        from falsework.templates.syntax import load_all

        return load_all(text)
    except yaml.YAMLError as exc:
        from falsework.templates.syntax import yaml_problem

        line, message = yaml_problem(exc)
        if not message.startswith("not valid YAML"):
            message = f"not valid YAML: {message}"
        raise TemplateError(f"{path}{f':{line}' if line else ''}: {message}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{path}: cannot read: {exc}") from None


def load_templates(path: Path) -> list[Template]:
    """The Templates in one YAML file (other kinds in it are ignored)."""
    return [
        Template.from_document(doc, path)
        for doc in read_documents(path)
        if isinstance(doc, dict) and doc.get("kind") == "Template"
    ]


def recovery_of(spec: dict[str, Any]) -> Recovery:
    """The recovery of a template's (or a TaskSpec's) ``EXPERIMENTAL_recovery``."""
    rec = spec.get("EXPERIMENTAL_recovery")
    strategy = rec.get("EXPERIMENTAL_strategy") if isinstance(rec, dict) else None
    if strategy == "startOver":
        return "startOver"
    if strategy == "none":
        return "none"
    return "resume"


def _same(value: Any) -> Any:
    return value
