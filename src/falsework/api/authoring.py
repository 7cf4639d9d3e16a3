"""Falsework's routes for template authors (the ``templates:author`` role), used by the
page's template editor: validate a template body with its files, and read a catalog
template's source to start from.

``POST /api/falsework/v1/templates/validate`` answers with the problems
``falsework templates validate`` reports for the same file (file, line, YAML path,
message), plus what the editor previews: the parameter pages as
``/parameter-schema`` gives them and the document as JSON (what ``/v2/dry-run``
takes). The body is written to a temporary folder, so the checks of a fetch step's
skeleton run as they do on disk. YAML aliases are refused: they let a few lines expand
to a document too big to check or return.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import anyio
import yaml
from fastapi import APIRouter
from pydantic import BaseModel, Field

from falsework.api import auth
from falsework.api.checks import problem_json
from falsework.api.deps import Caller, Svc
from falsework.api.models import FileContent, ParameterSchema, TemplateProblem, errors
from falsework.errors import FalseworkError, InputError
from falsework.runner.dry_run import read_files, write_files
from falsework.templates import Template, validate_template_file
from falsework.templates.catalog import candidate_files
from falsework.templates.syntax import load_all
from falsework.types import JSONObject

router = APIRouter(tags=["authoring"])

TEMPLATE_FILE = "template.yaml"
MAX_SOURCE_FILES = 500
MAX_SOURCE_BYTES = 5_000_000


class ValidateRequest(BaseModel):
    template: str = Field(max_length=1_000_000, description="The template's YAML text.")
    directoryContents: list[FileContent] = Field(
        default_factory=list,
        description="The files beside it (a skeleton), paths relative to its folder.",
    )


class ValidateResult(BaseModel):
    problems: list[TemplateProblem]
    template: dict[str, Any] | None = Field(
        default=None, description="The Template document as JSON, when the YAML has one."
    )
    parameterSchema: ParameterSchema | None = Field(
        default=None, description="The form's pages, as /parameter-schema gives them."
    )


class TemplateSource(BaseModel):
    ref: str
    template: str = Field(description="The template file's YAML text.")
    directoryContents: list[FileContent] = Field(default_factory=list)


def _template_document(text: str) -> tuple[dict[str, Any] | None, list[JSONObject]]:
    """The Template document of ``text``, or the problem that stops reading it."""
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                line = event.start_mark.line + 1 if event.start_mark is not None else None
                message = "YAML aliases (*name) are not accepted here: write the value out"
                return None, [{"file": TEMPLATE_FILE, "line": line, "path": "", "message": message}]
        documents = load_all(text)  # as the catalog reads a template (YAML 1.2 core)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [
            {
                "file": TEMPLATE_FILE,
                "line": line,
                "path": "",
                "message": f"not valid YAML: {problem}",
            }
        ]
    templates = [d for d in documents if isinstance(d, dict) and d.get("kind") == "Template"]
    if len(templates) == 1:
        return templates[0], []
    if not templates and len(documents) == 1 and isinstance(documents[0], dict):
        return documents[0], []  # validation says what it lacks
    return None, []


def _validate(body: ValidateRequest, known: list[str]) -> JSONObject:
    document, refused = _template_document(body.template)
    if refused:
        return {"problems": refused}
    with tempfile.TemporaryDirectory(prefix="falsework-validate-") as tmp:
        root = Path(tmp)
        try:
            write_files(root, [f.model_dump() for f in body.directoryContents])
        except InputError as exc:
            if exc.message.startswith("directoryContents"):
                raise
            raise InputError(f"directoryContents: {exc.message}") from None
        except FalseworkError as exc:
            raise InputError(f"directoryContents: {exc.message}") from None
        path = root / TEMPLATE_FILE
        path.write_text(body.template, encoding="utf-8")
        problems = [problem_json(p, TEMPLATE_FILE) for p in validate_template_file(path, known)]
        result: JSONObject = {"problems": problems}
        if document is not None:
            result["template"] = document
            try:
                template = Template.from_document(document, path)
            except FalseworkError:
                return result
            schema = template.parameter_schema()
            if template.secrets_schema is not None:
                schema["secretsSchema"] = template.secrets_schema
            result["parameterSchema"] = schema
        return result


@router.post(
    "/v1/templates/validate",
    response_model=ValidateResult,
    response_model_exclude_none=True,
    summary="Validate a template body (templates:author): the problems "
    "`falsework templates validate` reports, and its form's pages",
    responses=errors(401, 403, 413, 422),
)
async def validate(body: ValidateRequest, svc: Svc, caller: Caller) -> JSONObject:
    auth.check_role(caller, auth.AUTHOR, "validate a template body")
    known = svc.registry.ids()
    return await anyio.to_thread.run_sync(_validate, body, known)


def _source(template: Template) -> JSONObject:
    text = template.path.read_text(encoding="utf-8")
    folder = template.directory
    # the template's own folder, without other templates' folders below it
    others = {p.resolve().parent for p in candidate_files(folder)} - {folder}
    files: list[JSONObject] = []
    total = 0
    for item in read_files(folder, skip_dirs=frozenset({".git", "node_modules"})):
        path = folder / str(item["path"])
        if path == template.path or any(path.is_relative_to(o) for o in others):
            continue
        total += len(str(item["base64Content"])) * 3 // 4
        if len(files) >= MAX_SOURCE_FILES or total > MAX_SOURCE_BYTES:
            raise InputError(
                f"{template.ref}: its folder is larger than the editor takes "
                f"({MAX_SOURCE_FILES} files, {MAX_SOURCE_BYTES // 1_000_000} MB)"
            )
        files.append(item)
    return {"ref": template.ref, "template": text, "directoryContents": files}


@router.get(
    "/v1/templates/{namespace}/{name}/source",
    response_model=TemplateSource,
    summary="A catalog template's file and the files beside it (templates:author)",
    responses=errors(401, 403, 404, 400),
)
async def source(namespace: str, name: str, svc: Svc, caller: Caller) -> JSONObject:
    auth.check_role(caller, auth.AUTHOR, "read a template's source")
    template = auth.runnable_template(caller, svc.catalog, f"template:{namespace}/{name}")
    return await anyio.to_thread.run_sync(_source, template)
