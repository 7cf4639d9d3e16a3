"""`falsework templates`: validate template files, list the templates Falsework sees."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from falsework.cli import output
from falsework.config import load_settings
from falsework.templates import TemplateCatalog, validate_template_file
from falsework.templates.catalog import candidate_files

templates_app = typer.Typer(
    name="templates", help="Validate and list Software Templates.", no_args_is_help=True
)


def _actions() -> tuple[set[str], dict[str, list[str] | None]]:
    """The action ids steps may use, and the inputs each accepts."""
    from falsework.actions import ActionRegistry
    from falsework.templates.keys import input_keys_of

    actions = ActionRegistry.default().list()
    return {a.id for a in actions}, input_keys_of({a.id: a.input_schema for a in actions})


def _files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(candidate_files(path))
        elif path.exists():
            files.append(path)
    return files


@templates_app.command("validate")
def validate(
    paths: Annotated[
        list[Path],
        typer.Argument(help="template.yaml files, or folders searched for templates."),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the problems as JSON.")] = False,
    allow_unknown_keys: Annotated[
        bool,
        typer.Option(
            "--allow-unknown-keys",
            help="Keys no reader knows are not problems (for templates with keys of their "
            "own; one template can say so with the annotation "
            "falsework.dev/allow-unknown-keys: 'true', and x- keys are always allowed).",
        ),
    ] = False,
    portable: Annotated[
        bool,
        typer.Option(
            "--portable",
            help="Also warn about what works here but not the same on Backstage (filters "
            "it lacks, Python-only methods, | lower of a non-string, copyWithoutRender, "
            "regular-expression literals...); warnings alone do not fail.",
        ),
    ] = False,
) -> None:
    """Report every problem of each template at once (file, line and YAML path):
    YAML mistakes, misspelt keys and action inputs, schemas, expressions, skeletons."""
    files = _files(paths)
    missing = [p for p in paths if not p.exists()]
    known, inputs = _actions()
    found = [
        problem
        for file in files
        for problem in validate_template_file(
            file,
            known,
            action_inputs=inputs,
            allow_unknown_keys=allow_unknown_keys,
            portable=portable,
        )
    ]
    problems = [p for p in found if p.kind == "error"]
    warnings = [p for p in found if p.kind != "error"]
    out = output.console()
    if as_json:
        data = [
            {
                "file": str(p.file),
                "line": p.line,
                "path": p.path,
                "message": p.message,
                **({"kind": p.kind} if portable else {}),
            }
            for p in found
        ]
        data += [
            {"file": str(p), "line": None, "path": "", "message": "no such file"} for p in missing
        ]
        typer.echo(json.dumps(data, indent=2))
    else:
        for path in missing:
            out.print(Text(f"{path}: no such file or folder", style="red"))
        for problem in found:
            out.print(Text(str(problem), style="yellow" if problem.kind != "error" else ""))
        if not files and not missing:
            out.print("no templates found")
        bad = {p.file for p in problems}
        for file in files:
            if file not in bad:
                out.print(Text("ok", style="green") + Text(f" {file}"))
        if problems:
            out.print(f"{len(problems)} problem(s) in {len(bad)} of {len(files)} file(s)")
        if warnings:
            where = len({p.file for p in warnings})
            out.print(
                f"{len(warnings)} portability warning(s) in {where} of {len(files)} file(s): "
                "these behave otherwise on Backstage"
            )
    if problems or missing or not files:
        raise typer.Exit(1)


@templates_app.command("ls")
def ls(
    long: Annotated[
        bool, typer.Option("--long", "-l", help="Also show owner, tags and file.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the templates found in the configured folders (FALSEWORK_TEMPLATES)."""
    settings = load_settings()
    # The problems are printed below; the catalog's warnings would repeat them.
    logging.getLogger("falsework.templates").setLevel(logging.ERROR)
    catalog = TemplateCatalog(settings.template_dirs)
    templates = catalog.list()
    if as_json:
        output.print_json([{**t.summary(), "path": str(t.path)} for t in templates])
        return
    # piped or captured: never cut a reference to fit 80 columns
    out = output.console()
    table = Table(box=None, pad_edge=False, header_style="bold" if out.is_terminal else "")
    for column in ("REF", "TYPE", "TITLE", *(("OWNER", "TAGS", "FILE") if long else ())):
        table.add_column(column, no_wrap=True)
    cwd = Path.cwd()
    for template in templates:
        row = [template.ref, template.type, template.title]
        if long:
            try:
                shown = template.path.relative_to(cwd)
            except ValueError:
                shown = template.path
            row += [template.owner, ",".join(template.tags), str(shown)]
        table.add_row(*(Text(cell) for cell in row))
    output.print_table(out, table)
    for problem in catalog.problems:
        out.print(Text("skipped: ", style="yellow") + Text(str(problem)))
    if not templates:
        folders = ", ".join(str(d) for d in settings.template_dirs)
        out.print(Text(f"no templates found in {folders}"))


def register(app: typer.Typer) -> None:
    from falsework.cli import templates_test, update

    templates_test.register(templates_app)
    update.register_templates(templates_app)
    app.add_typer(templates_app)
