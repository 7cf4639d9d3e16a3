"""Test cases of templates: found next to each ``template.yaml`` and read.

The layout::

    my-template/
      template.yaml
      tests/
        matrix.yaml            optional: a base case and parameters to vary
        <case>/
          values.yaml          the answers: a mapping, or a list of one mapping per page
          secrets.yaml         optional: the secrets (a mapping of strings)
          expect.yaml          optional: status, error, output, absent, contains, check...
          http/*.yaml          optional: canned answers for http:request
          edits/               optional, with upgrade-from: files the team changed or added
          snapshot/            the expected result (written by the first run or --update)

A case folder is one that holds ``values.yaml``. Anything wrong in a case's own
files is a :class:`CaseError` naming the file: the case is broken (exit 2), not
failed.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from falsework.actions.rehearsal import DEFAULT_USER, HttpAnswer
from falsework.errors import FalseworkError, InputError
from falsework.templates import Template, load_templates
from falsework.templates.catalog import candidate_files

TESTS_DIR = "tests"
SNAPSHOT_DIR = "snapshot"
EDITS_DIR = "edits"


class CaseError(FalseworkError):
    """A test case cannot be run as written (its files say what is wrong)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Check(_Strict):
    """A command run in a temporary copy of the result (only with --run-checks)."""

    run: str
    timeout: float = Field(120.0, gt=0, le=3600)


class ExpectedError(_Strict):
    """What a negative case expects: the failing step (and its error), or the page
    whose answers are refused (and the messages, as the form and the API give them)."""

    step: str | None = None
    name: str | None = None
    message: str | None = None  # the whole message
    match: str | None = None  # a regular expression searched in it
    page: int | None = Field(None, ge=1)
    messages: list[str] | None = None


class Expect(_Strict):
    status: Literal["completed", "failed", "invalid"] = "completed"
    error: ExpectedError | None = None
    output: dict[str, Any] | None = None  # a subset of the output
    absent: list[str] = Field(default_factory=list)  # globs of files that must not be there
    contains: dict[str, list[str]] = Field(default_factory=dict)  # file -> regexes
    check: list[Check] = Field(default_factory=list)
    snapshot: bool = True  # False: no snapshot/, only these expectations
    user: dict[str, Any] | None = None  # what the template sees as user
    seed: str | None = None  # the task id's seed (default: the case's id)
    # An upgrade case: a repository made at this ref of the template's own git
    # repository (the values are its answers), edited by its team (edits/ and
    # deleted:), updated to the working copy (set: answers added as --set does).
    upgrade_from: str | None = Field(None, alias="upgrade-from", min_length=1)
    conflicts: list[str] = Field(default_factory=list)  # exactly these conflict
    deleted: list[str] = Field(default_factory=list)  # the team deleted these
    set_answers: dict[str, Any] = Field(default_factory=dict, alias="set")

    @model_validator(mode="after")
    def _upgrade(self) -> Expect:
        if self.upgrade_from is None:
            given = [k for k in ("conflicts", "deleted", "set_answers") if getattr(self, k)]
            if given:
                named = ", ".join(k.removesuffix("_answers") for k in given)
                raise ValueError(f"{named}: only with upgrade-from")
            return self
        if self.status == "invalid":
            raise ValueError(
                "status invalid does not go with upgrade-from (the answers are "
                "those the repository was made with)"
            )
        unused = [k for k in ("output", "user", "seed") if getattr(self, k) is not None]
        if unused:
            raise ValueError(
                f"{', '.join(unused)}: not with upgrade-from (an update renders "
                "as falsework update does: its own user and seed, no output)"
            )
        return self

    @field_validator("contains", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("check", mode="before")
    @classmethod
    def _commands(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"run": v} if isinstance(v, str) else v for v in value]
        return value


@dataclass
class Case:
    """One case of one template."""

    template: Template
    name: str
    pages: list[dict[str, Any]]  # the answers page by page (one page: a plain mapping)
    secrets: dict[str, str] = field(default_factory=dict)
    expect: Expect = field(default_factory=Expect)
    http: list[HttpAnswer] = field(default_factory=list)
    folder: Path | None = None  # None for a matrix combination
    paged: bool = False  # values.yaml gave a list: each page's answers on their own

    @property
    def id(self) -> str:
        return f"{self.template.name}/{self.name}"

    @property
    def snapshot_dir(self) -> Path | None:
        return self.folder / SNAPSHOT_DIR if self.folder is not None else None

    @property
    def wants_snapshot(self) -> bool:
        return self.folder is not None and self.expect.snapshot and self.expect.status != "invalid"

    @property
    def user(self) -> dict[str, Any]:
        return dict(self.expect.user) if self.expect.user is not None else dict(DEFAULT_USER)

    @property
    def seed(self) -> str:
        return self.expect.seed or self.id

    def values(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for page in self.pages:
            merged.update(page)
        return merged


@dataclass
class Broken:
    """A case (or a whole template's tests) that could not be read."""

    id: str
    where: Path
    message: str
    template: str = ""  # its template's ref, when that could be read


def read_yaml(path: Path, default: Any = None) -> Any:
    """A YAML file's content; ``CaseError`` naming the file and line when it is
    not YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CaseError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CaseError(f"{path}: is not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise CaseError(f"{path}{line}: not valid YAML: {problem}") from None
    return default if data is None else data


def _model_error(path: Path, exc: ValidationError) -> CaseError:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<top>'}: {err['msg']}" for err in exc.errors()
    )
    return CaseError(f"{path}: {problems}")


def discover(paths: list[Path]) -> Iterator[Template | Broken]:
    """The templates under ``paths`` (files or folders, searched as the catalog
    does), each once; a file that is no template is ``Broken``."""
    seen: set[Path] = set()
    for path in paths:
        if not path.exists():
            yield Broken(str(path), path, f"{path}: no such file or folder")
            continue
        for file in candidate_files(path):
            try:
                found = load_templates(file)
            except (FalseworkError, OSError, yaml.YAMLError) as exc:
                yield Broken(str(file), file, f"{file}: {exc}")
                continue
            for template in found:
                if template.path in seen:
                    continue
                seen.add(template.path)
                yield template


def cases_of(template: Template) -> Iterator[Case | Broken]:
    """A template's cases, in name order, then its matrix's combinations."""
    tests = template.directory / TESTS_DIR
    if not tests.is_dir():
        return
    folders = sorted(p for p in tests.iterdir() if p.is_dir() and (p / "values.yaml").is_file())
    loaded: dict[str, Case] = {}
    for folder in folders:
        try:
            case = load_case(template, folder)
        except CaseError as exc:
            yield Broken(f"{template.name}/{folder.name}", folder, exc.message, template.ref)
            continue
        loaded[case.name] = case
        yield case
    matrix = tests / "matrix.yaml"
    if matrix.is_file():
        try:
            yield from matrix_cases(template, matrix, loaded)
        except CaseError as exc:
            yield Broken(f"{template.name}/matrix", matrix, exc.message, template.ref)


def load_case(template: Template, folder: Path) -> Case:
    raw_values = read_yaml(folder / "values.yaml", {})
    paged = isinstance(raw_values, list)
    pages = raw_values if paged else [raw_values]
    if not pages or not all(isinstance(p, dict) for p in pages):
        raise CaseError(
            f"{folder / 'values.yaml'}: expected a mapping of answers, or a list of one "
            "mapping per page"
        )
    if paged and len(pages) > max(1, len(template.parameters)):
        raise CaseError(
            f"{folder / 'values.yaml'}: {len(pages)} pages of answers, but the template "
            f"has {len(template.parameters)}"
        )
    secrets_file = folder / "secrets.yaml"
    secrets = read_yaml(secrets_file, {}) if secrets_file.is_file() else {}
    if not isinstance(secrets, dict) or not all(isinstance(v, str) for v in secrets.values()):
        raise CaseError(f"{secrets_file}: expected a mapping of names to strings")
    expect_file = folder / "expect.yaml"
    try:
        expect = Expect.model_validate(read_yaml(expect_file, {}) if expect_file.is_file() else {})
    except ValidationError as exc:
        raise _model_error(expect_file, exc) from None
    if expect.upgrade_from is None and (folder / EDITS_DIR).exists():
        raise CaseError(
            f"{folder / EDITS_DIR}: the team's edits go with upgrade-from in expect.yaml"
        )
    return Case(
        template=template,
        name=folder.name,
        pages=[dict(p) for p in pages],
        secrets={str(k): v for k, v in secrets.items()},
        expect=expect,
        http=http_answers(folder / "http"),
        folder=folder,
        paged=paged,
    )


def http_answers(folder: Path) -> list[HttpAnswer]:
    if not folder.is_dir():
        return []
    answers: list[HttpAnswer] = []
    for file in sorted(folder.iterdir()):
        if file.suffix not in (".yaml", ".yml"):
            continue
        shown = f"{folder.name}/{file.name}"
        try:
            answers.append(HttpAnswer.from_json(read_yaml(file, {}), shown))
        except InputError as exc:
            raise CaseError(f"{file}: {exc.message.removeprefix(shown + ': ')}") from None
    return answers


class Matrix(_Strict):
    base: str | None = None  # a case folder's name
    vary: dict[str, list[Any]]
    expect: Expect = Field(default_factory=lambda: Expect(snapshot=False))


MAX_COMBINATIONS = 1_000


def matrix_cases(template: Template, file: Path, loaded: Mapping[str, Case]) -> Iterator[Case]:
    try:
        matrix = Matrix.model_validate(read_yaml(file, {}))
    except ValidationError as exc:
        raise _model_error(file, exc) from None
    if not matrix.vary or not all(matrix.vary.values()):
        raise CaseError(f"{file}: vary needs at least one parameter with a list of values")
    base: Case | None = None
    if matrix.base is not None:
        base = loaded.get(matrix.base)
        if base is None:
            raise CaseError(f"{file}: base {matrix.base!r} is not a case of this template")
    total = 1
    for options in matrix.vary.values():
        total *= len(options)
    if total > MAX_COMBINATIONS:
        raise CaseError(f"{file}: {total:,} combinations, more than {MAX_COMBINATIONS:,}")
    names = list(matrix.vary)
    for combination in itertools.product(*matrix.vary.values()):
        values = dict(base.values()) if base is not None else {}
        for key, value in zip(names, combination, strict=True):
            _set(values, key, value)
        label = ",".join(f"{k}={_short(v)}" for k, v in zip(names, combination, strict=True))
        yield Case(
            template=template,
            name=f"matrix[{label}]",
            pages=[values],
            secrets=dict(base.secrets) if base is not None else {},
            expect=matrix.expect.model_copy(update={"snapshot": False}),
            http=list(base.http) if base is not None else [],
        )


def _set(values: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    target = values
    for part in parents:
        nested = target.get(part)
        if not isinstance(nested, dict):
            nested = target[part] = {}
        target = nested
    target[last] = value


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text.strip().replace("\n", " ")[:40]


def selected(case_id: str, patterns: list[str]) -> bool:
    """``-k``: a case runs when its id (template/case) contains any pattern, or
    matches it as a glob (``*``, ``?``, ``[``)."""
    if not patterns:
        return True
    lowered = case_id.lower()
    for pattern in patterns:
        p = pattern.lower()
        if any(c in p for c in "*?[") and fnmatch.fnmatchcase(lowered, p):
            return True
        if p in lowered:
            return True
    return False
