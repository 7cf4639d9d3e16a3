"""`falsework run` on a terminal: a template's questions asked one at a time, like
copier, in the order the page shows them.

Each page's fields in ``ui:order`` (else schema) order, fields that ``dependencies``
or ``if``/``then`` bring in once their trigger is answered, with the title,
description, ``ui:help`` and default; enums as numbered choices (``enumNames`` or
``oneOf`` titles as labels), booleans as yes/no, arrays as comma-separated lists,
objects field by field, a hint for pickers. Each answer is checked when it is given
with the very check the API runs (``templates.validate_values``, the whole
template's schema): a bad answer is asked again with the reason, so the run never
ends in a list of errors about answers given minutes ago.

Rich's ``Prompt`` asks for one value against a fixed list of choices; these
questions need the template's schema, numbered labels and the whole template's
validation, so the loop is written here over ``Console.input``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import Any

import yaml
from rich.console import Console
from rich.text import Text

from falsework.templates import ParameterValidationError, Template, validate_values
from falsework.templates.values import validator_for

Path_ = tuple[str, ...]
ENTITY_PICKERS = ("OwnerPicker", "EntityPicker", "OwnedEntityPicker", "MyGroupsPicker")
_YES = ("y", "yes", "true", "1", "on")
_NO = ("n", "no", "false", "0", "off")


class _Retry(Exception):
    """The answer cannot be used; the message says why."""


class Questions:
    """Asks ``template``'s parameters on ``console`` (a terminal), filling ``values``.

    ``given`` are the values from ``--values``/``--set`` (never asked); with
    ``defaults`` a field that has a default takes it and an optional one without
    is left out, so only required fields without a default are asked.
    ``ask`` reads one line (tests and the CLI pass ``Console.input``)."""

    def __init__(
        self,
        template: Template,
        console: Console,
        *,
        defaults: bool = False,
        ask: Callable[[Text, bool], str] | None = None,
    ) -> None:
        self.template = template
        self.console = console
        self.defaults = defaults
        self._ask = ask or (lambda prompt, hide: console.input(prompt, password=hide))
        self.secrets: dict[str, str] = {}

    # ------------------------------------------------------------ walking

    def run(self, given: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = copy.deepcopy(dict(given))
        pages = self.template.parameters
        for index, page in enumerate(pages):
            title = page.get("title")
            if len(pages) > 1 or title:
                heading = f"{title or 'Parameters'}" + (
                    f" ({index + 1}/{len(pages)})" if len(pages) > 1 else ""
                )
                self.console.print(Text(f"\n{heading}", style="bold"))
                if isinstance(page.get("description"), str):
                    self.console.print(Text(page["description"], style="dim"))
            self._object(page, page, (), values, given)
            self._settle_page(page, values)
        return values

    def _object(
        self,
        schema: Mapping[str, Any],
        root: Mapping[str, Any],
        at: Path_,
        values: dict[str, Any],
        given: Mapping[str, Any],
    ) -> None:
        """Ask each field of the object schema at ``at``; then the fields its
        ``dependencies`` and ``if``/``then`` add once their triggers are answered."""
        asked: set[str] = set()
        while True:
            here = _get(values, at)
            current = effective(schema, here if isinstance(here, dict) else {}, root)
            props = current.get("properties")
            if not isinstance(props, Mapping):
                return
            required = set(current.get("required") or [])
            pending = [k for k in ordered_keys(current) if k not in asked]
            if not pending:
                return
            for name in pending:
                asked.add(name)
                sub = resolve(props[name], root)
                if not isinstance(sub, Mapping):
                    continue
                path = (*at, name)
                if _has(given, path):
                    continue
                self._field(sub, root, path, name in required, values, given)

    def _field(
        self,
        schema: Mapping[str, Any],
        root: Mapping[str, Any],
        path: Path_,
        required: bool,
        values: dict[str, Any],
        given: Mapping[str, Any],
    ) -> None:
        if schema.get("ui:widget") == "hidden" or "const" in schema:
            return
        if schema.get("ui:readonly") is True or schema.get("readOnly") is True:
            return
        if (
            schema.get("type") == "object"
            and isinstance(schema.get("properties"), Mapping)
            and not schema.get("ui:field")
        ):
            title = schema.get("title") or path[-1]
            self.console.print(Text(f"{title}", style="bold"))
            if not isinstance(_get(values, path), dict):
                _set(values, path, copy.deepcopy(schema.get("default") or {}))
            self._object(schema, root, path, values, given)
            return
        if self.defaults and "default" in schema:
            return  # validate_values fills it in
        if self.defaults and not required:
            return
        self.ask(schema, root, path, required, values)

    def _settle_page(self, page: Mapping[str, Any], values: dict[str, Any]) -> None:
        """Errors that only the whole page shows (a field one branch requires, a
        value two fields disagree on): the fields named are asked again."""
        for _ in range(20):
            errors = [e for e in self._errors(values) if _on_page(e, page)]
            if not errors:
                return
            for error in errors:
                self.console.print(Text(f"  {error['stack']}", style="red"))
            again: list[Path_] = []
            for error in errors:
                path = _error_field(error)
                if path and path not in again:
                    again.append(path)
            if not again:
                return  # validate_values at the end reports it
            for path in again:
                schema = _schema_at(page, path, values)
                if schema is None:
                    return
                _pop(values, path)
                self.ask(schema, page, path, True, values)

    def ask_secrets(self, schema: Mapping[str, Any] | None, given: Mapping[str, str]) -> None:
        """The template's ``spec.secrets.schema`` fields not given with --secret,
        typed without echo."""
        props = schema.get("properties") if isinstance(schema, Mapping) else None
        if not isinstance(props, Mapping) or not props:
            return
        assert isinstance(schema, Mapping)
        required = set(schema.get("required") or [])
        missing = [k for k in ordered_keys(schema) if k not in given and k not in self.secrets]
        if not missing:
            return
        self.console.print(Text("\nSecrets (not echoed, not stored with the task's values)"))
        for name in missing:
            sub = props[name] if isinstance(props[name], Mapping) else {}
            title = str(sub.get("title") or name)
            self._describe(sub, title, name, name in required, None)
            while True:
                answer = self._ask(Text("  ") + Text(title, style="bold") + Text(": "), True)
                if answer == "" and name in required:
                    self.console.print(Text("  ✗ an answer is required", style="red"))
                    continue
                if answer != "":
                    self.secrets[name] = answer
                break

    # ------------------------------------------------------------ one question

    def ask(
        self,
        schema: Mapping[str, Any],
        root: Mapping[str, Any],
        path: Path_,
        required: bool,
        values: dict[str, Any],
    ) -> None:
        """Ask for the value at ``path`` until one passes the template's check."""
        name = ".".join(path)
        title = str(schema.get("title") or path[-1])
        options = enum_options(schema, root)
        items = resolve(schema.get("items"), root) if schema.get("type") == "array" else None
        item_options = enum_options(items, root) if isinstance(items, Mapping) else None
        hide = schema.get("ui:field") == "Secret" or schema.get("ui:widget") == "password"
        self._describe(schema, title, name, required, options or item_options)
        default = schema.get("default")
        prompt = Text("  ")
        prompt += Text(f"{title}", style="bold")
        shown = _shown_default(schema, default, options, item_options)
        if shown is not None:
            prompt += Text(f" [{shown}]", style="cyan")
        prompt += Text(": ")
        while True:
            answer = self._ask(prompt, hide).strip()
            try:
                if answer == "":
                    if "default" in schema:
                        value = copy.deepcopy(default)
                    elif required:
                        raise _Retry("an answer is required")
                    else:
                        _pop(values, path)
                        return
                else:
                    value = parse(answer, schema, root, options, item_options)
                if schema.get("ui:field") == "Secret" and isinstance(value, str):
                    # As the page (and Backstage) does: the value goes with the task's
                    # secrets, the parameters hold a mask of its length.
                    self._check(values, path, "*" * len(value), schema)
                    self.secrets[path[-1]] = value
                    return
                self._check(values, path, value, schema)
            except _Retry as retry:
                self.console.print(Text(f"  ✗ {retry}", style="red"))
                continue
            return

    def _describe(
        self,
        schema: Mapping[str, Any],
        title: str,
        name: str,
        required: bool,
        options: list[tuple[Any, str]] | None,
    ) -> None:
        head = Text("\n")
        head += Text(title, style="bold")
        if title != name:
            head += Text(f" ({name})", style="dim")
        if required:
            head += Text(" *", style="red")
        self.console.print(head)
        for key in ("description", "ui:help"):
            if isinstance(schema.get(key), str):
                self.console.print(Text(f"  {schema[key].strip()}", style="dim"))
        hint = _hint(schema)
        if hint:
            self.console.print(Text(f"  {hint}", style="dim"))
        if options:
            default = schema.get("default")
            chosen = default if isinstance(default, list) else [default]
            for number, (value, label) in enumerate(options, 1):
                line = Text(f"  {number:>2}) {label}")
                if "default" in schema and value in chosen:
                    line += Text(" (default)", style="cyan")
                self.console.print(line)

    def _check(
        self, values: dict[str, Any], path: Path_, value: Any, schema: Mapping[str, Any]
    ) -> None:
        """Set ``value`` at ``path`` if the template's check finds nothing wrong
        with it; else restore the values and raise ``_Retry`` with the reason."""
        before = copy.deepcopy(values)
        _set(values, path, value)
        problems = [e for e in self._errors(values) if _under(e, path)]
        if problems:
            values.clear()
            values.update(before)
            raise _Retry("; ".join(_reason(e, schema) for e in problems))

    def _errors(self, values: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            validate_values(self.template, values)
        except ParameterValidationError as exc:
            return list(exc.errors)
        return []


# ---------------------------------------------------------------- answers


def parse(
    answer: str,
    schema: Mapping[str, Any],
    root: Mapping[str, Any],
    options: list[tuple[Any, str]] | None,
    item_options: list[tuple[Any, str]] | None,
) -> Any:
    """The value an answer stands for, by the field's type; ``_Retry`` when it is
    not one (the schema's own rules are checked afterwards)."""
    if options:
        return _choice(answer, options)
    kind = schema.get("type")
    if kind == "array":
        if item_options:
            parts = [p for p in answer.replace(",", " ").split() if p]
            return [_choice(p, item_options) for p in parts]
        if answer.startswith("["):
            return _yaml(answer)
        items = resolve(schema.get("items"), root)
        item_schema = items if isinstance(items, Mapping) else {}
        return [
            parse(p.strip(), item_schema, root, None, None) for p in answer.split(",") if p.strip()
        ]
    if schema.get("ui:field") == "RepoUrlPicker":
        return repo_url(answer)
    if kind == "boolean":
        lowered = answer.lower()
        if lowered in _YES:
            return True
        if lowered in _NO:
            return False
        raise _Retry("answer yes or no")
    if kind == "integer":
        try:
            return int(answer)
        except ValueError:
            raise _Retry("a whole number is expected") from None
    if kind == "number":
        try:
            number = float(answer)
        except ValueError:
            raise _Retry("a number is expected") from None
        return int(number) if number.is_integer() and "." not in answer else number
    if kind in ("object", "null") or isinstance(kind, list):
        return _yaml(answer)
    return answer


def _yaml(answer: str) -> Any:
    try:
        return yaml.safe_load(answer)
    except yaml.YAMLError:
        raise _Retry("not a value: write it as YAML or JSON, e.g. [a, b] or {key: value}") from None


def _choice(answer: str, options: list[tuple[Any, str]]) -> Any:
    if answer.isdigit() and 1 <= int(answer) <= len(options):
        return options[int(answer) - 1][0]
    for value, label in options:
        if answer in (str(value), label) or answer == json.dumps(value):
            return value
    raise _Retry(f"choose a number from 1 to {len(options)}")


def repo_url(answer: str) -> str:
    """``host?owner=o&repo=r`` as Backstage's RepoUrlPicker writes it; also taken
    as ``host/owner/repo`` or an https URL of the repository."""
    if "?" in answer:
        return answer
    text = answer.removeprefix("https://").removeprefix("http://").removesuffix(".git")
    parts = [p for p in text.split("/") if p]
    if len(parts) >= 3:
        host, owner, repo = parts[0], "/".join(parts[1:-1]), parts[-1]
        return f"{host}?owner={owner}&repo={repo}"
    raise _Retry("write it as host?owner=OWNER&repo=NAME, or host/OWNER/NAME")


def _shown_default(
    schema: Mapping[str, Any],
    default: Any,
    options: list[tuple[Any, str]] | None,
    item_options: list[tuple[Any, str]] | None,
) -> str | None:
    if schema.get("type") == "boolean":
        if default is True:
            return "Y/n"
        if default is False:
            return "y/N"
        return "y/n"
    if "default" not in schema:
        return None
    if options:
        numbers = [str(i) for i, (v, _) in enumerate(options, 1) if v == default]
        return numbers[0] if numbers else json.dumps(default)
    if item_options and isinstance(default, list):
        return ",".join(str(i) for i, (v, _) in enumerate(item_options, 1) if v in default)
    if isinstance(default, list):
        return ", ".join(str(v) for v in default)
    if isinstance(default, str):
        return default
    return json.dumps(default)


def _hint(schema: Mapping[str, Any]) -> str | None:
    field = schema.get("ui:field")
    opts = schema.get("ui:options") if isinstance(schema.get("ui:options"), Mapping) else {}
    assert isinstance(opts, Mapping)
    if field == "RepoUrlPicker":
        hosts = opts.get("allowedHosts") or ["github.com"]
        owners = opts.get("allowedOwners")
        text = f"host?owner=OWNER&repo=NAME or host/OWNER/NAME; hosts: {', '.join(hosts)}"
        if owners:
            text += f"; owners: {', '.join(map(str, owners))}"
        return text
    if field in ENTITY_PICKERS or field == "EntityNamePicker":
        if field == "EntityNamePicker":
            return "an entity name: letters, digits, '-', '_' and '.'"
        kinds = (opts.get("catalogFilter") or {}) if isinstance(opts, Mapping) else {}
        kind = kinds.get("kind") if isinstance(kinds, Mapping) else None
        example = "group:default/platform" if field == "OwnerPicker" else "component:default/name"
        shown = f" ({', '.join(kind)})" if isinstance(kind, list) else ""
        return f"an entity reference{shown}, e.g. {example}"
    kind = schema.get("type")
    if kind == "array":
        return "several values: numbers or names, separated by commas"
    if kind == "boolean":
        return None
    if kind in ("object", "null") or isinstance(kind, list):
        return "a YAML or JSON value"
    if schema.get("format"):
        return f"format: {schema['format']}"
    return None


def _reason(error: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    """Why an answer failed, in words when the schema gives them."""
    message = str(error.get("message", "is not valid"))
    if error.get("name") == "pattern":
        words = schema.get("ui:help") or schema.get("description")
        if isinstance(words, str) and words.strip():
            return f"{words.strip()} ({message})"
    return message


# ---------------------------------------------------------------- schemas


def resolve(schema: Any, root: Mapping[str, Any]) -> Any:
    """Follow a local ``$ref`` (``#/definitions/x``, ``#/$defs/x``)."""
    for _ in range(32):
        if not (isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str)):
            return schema
        ref = schema["$ref"]
        if not ref.startswith("#"):
            return schema
        target: Any = root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, Mapping) or part not in target:
                return schema
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def ordered_keys(schema: Mapping[str, Any]) -> list[str]:
    """The keys of an object schema in the page's order (``ui:order``, with ``*``)."""
    keys = list((schema.get("properties") or {}).keys())
    order = schema.get("ui:order")
    if not isinstance(order, list):
        return keys
    listed = [k for k in order if k != "*" and k in keys]
    rest = [k for k in keys if k not in listed]
    if "*" not in order:
        return listed + rest
    star = order.index("*")
    before = [k for k in order[:star] if k in keys]
    after = [k for k in order[star + 1 :] if k in keys]
    return before + rest + after


def effective(
    raw: Mapping[str, Any], value: Mapping[str, Any], root: Mapping[str, Any]
) -> dict[str, Any]:
    """The object schema as the form shows it for ``value``: ``allOf`` merged,
    ``dependencies`` of answered fields and the chosen ``if`` branch added."""
    schema = resolve(raw, root)
    if not isinstance(schema, Mapping):
        return {}
    skip = ("allOf", "dependencies", "if", "then", "else")
    out: dict[str, Any] = {k: v for k, v in schema.items() if k not in skip}
    for sub in schema.get("allOf") or []:
        out = _merge(out, effective(sub, value, root))
    deps = schema.get("dependencies")
    for key, dep in deps.items() if isinstance(deps, Mapping) else []:
        if key not in value:
            continue
        if isinstance(dep, list):
            out = _merge(out, {"required": dep})
            continue
        dep = resolve(dep, root)
        if not isinstance(dep, Mapping):
            continue
        branches = dep.get("oneOf")
        if isinstance(branches, list):
            for branch in branches:
                branch = resolve(branch, root)
                if not isinstance(branch, Mapping):
                    continue
                sub = (branch.get("properties") or {}).get(key)
                if sub is not None and _valid(sub, value[key], root):
                    props = {k: v for k, v in (branch.get("properties") or {}).items() if k != key}
                    out = _merge(out, effective({**branch, "properties": props}, value, root))
                    break
            dep = {k: v for k, v in dep.items() if k != "oneOf"}
        out = _merge(out, effective(dep, value, root))
    if "if" in schema:
        branch = schema.get("then") if _valid(schema["if"], value, root) else schema.get("else")
        if isinstance(branch, Mapping):
            out = _merge(out, effective(branch, value, root))
    return out


def _merge(a: dict[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if key == "properties" and isinstance(value, Mapping):
            out["properties"] = {**(out.get("properties") or {}), **value}
        elif key == "required" and isinstance(value, list):
            out["required"] = list(dict.fromkeys([*(out.get("required") or []), *value]))
        elif key not in out:
            out[key] = value
    return out


def _valid(schema: Any, value: Any, root: Mapping[str, Any]) -> bool:
    if isinstance(schema, bool):
        return schema
    if not isinstance(schema, Mapping):
        return False
    with_defs = {**schema}
    for key in ("definitions", "$defs"):
        if key in root and key not in with_defs:
            with_defs[key] = root[key]
    try:
        return bool(validator_for(with_defs).is_valid(value))
    except Exception:  # a broken branch schema: the form would not show it either
        return False


def enum_options(schema: Any, root: Mapping[str, Any]) -> list[tuple[Any, str]] | None:
    """``[(value, label)]`` of an enum-like schema: ``enum`` (+ ``enumNames``), or a
    ``oneOf``/``anyOf`` of ``const`` values with titles."""
    schema = resolve(schema, root)
    if not isinstance(schema, Mapping):
        return None
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        names = schema.get("enumNames")
        labels = names if isinstance(names, list) and len(names) == len(enum) else None
        return [
            (value, str(labels[i]) if labels else _label(value)) for i, value in enumerate(enum)
        ]
    for key in ("oneOf", "anyOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            found = [resolve(b, root) for b in branches]
            if all(isinstance(b, Mapping) and "const" in b for b in found):
                return [(b["const"], str(b.get("title") or _label(b["const"]))) for b in found]
    return None


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# ---------------------------------------------------------------- value paths


def _get(values: Mapping[str, Any], path: Path_) -> Any:
    current: Any = values
    for part in path:
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def _has(values: Mapping[str, Any], path: Path_) -> bool:
    current: Any = values
    for part in path:
        if not isinstance(current, Mapping) or part not in current:
            return False
        current = current[part]
    return True


def _set(values: dict[str, Any], path: Path_, value: Any) -> None:
    target = values
    for part in path[:-1]:
        nxt = target.get(part)
        if not isinstance(nxt, dict):
            nxt = target[part] = {}
        target = nxt
    target[path[-1]] = value


def _pop(values: dict[str, Any], path: Path_) -> None:
    parent = _get(values, path[:-1]) if len(path) > 1 else values
    if isinstance(parent, dict):
        parent.pop(path[-1], None)


def _error_field(error: Mapping[str, Any]) -> Path_:
    """The field an error is about: its path, or the property ``required`` names."""
    path = tuple(str(p) for p in error.get("path") or [] if not isinstance(p, int))
    if error.get("name") == "required" and isinstance(error.get("argument"), str):
        return (*path, error["argument"])
    return path


def _under(error: Mapping[str, Any], path: Path_) -> bool:
    found = tuple(str(p) for p in error.get("path") or [])
    if error.get("name") == "required":
        return False  # another field, not yet asked
    return found[: len(path)] == path


def _on_page(error: Mapping[str, Any], page: Mapping[str, Any]) -> bool:
    field = _error_field(error)
    props = page.get("properties")
    if not field:
        return False
    if isinstance(props, Mapping) and field[0] in props:
        return True
    # fields a dependency or a branch adds
    text = json.dumps(page, default=str)
    return json.dumps(field[0]) in text


def _schema_at(page: Mapping[str, Any], path: Path_, values: dict[str, Any]) -> Any:
    schema: Any = page
    for depth, part in enumerate(path):
        here = _get(values, path[:depth])
        current = effective(schema, here if isinstance(here, dict) else {}, page)
        props = current.get("properties")
        if not isinstance(props, Mapping) or part not in props:
            return None
        schema = resolve(props[part], page)
    return schema
