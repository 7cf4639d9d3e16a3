"""``falsework templates validate``: every problem of a template file at once, each
with the file, line and YAML path."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from falsework.confine import Entry, Tree, is_within
from falsework.errors import FalseworkError
from falsework.globs import matches_or_under
from falsework.templates.keys import allows_unknown_keys, unknown_keys
from falsework.templates.syntax import duplicate_keys, key_line, load_all, yaml_problem
from falsework.templates.template import API_VERSION, pattern_problems
from falsework.templating import Renderer

PathTokens = tuple[str | int, ...]

# Backstage's catalog rules for names and tags.
_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_TAG = re.compile(r"^[a-z0-9:+#]+(-[a-z0-9:+#]+)*$")
_STEP_REF = re.compile(
    r"\bsteps\s*(?:\.\s*([A-Za-z_$][\w$]*)|\[\s*(?:'([^']*)'|\"([^\"]*)\")\s*\])"
)
_RECOVERY_STRATEGIES = ("none", "startOver")
_LOCAL_SOURCE_ACTIONS = ("fetch:template", "fetch:plain", "fetch:template:file", "fetch:plain:file")
_MAX_SKELETON_FILES = 5000
_MAX_SKELETON_FILE = 2_000_000
_MAX_FOLDER_ENTRIES = 20_000


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a template file."""

    file: Path
    path: str  # YAML path, e.g. ``spec.steps[2].action``; "" for the whole file
    message: str
    line: int | None = None
    # "error", or "portability": works here, but not the same on Backstage (--portable)
    kind: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        message = f"portability: {self.message}" if self.kind == "portability" else self.message
        return f"{where}: {self.path}: {message}" if self.path else f"{where}: {message}"


def format_path(tokens: PathTokens) -> str:
    out = ""
    for token in tokens:
        if isinstance(token, int):
            out += f"[{token}]"
        elif re.fullmatch(r"[^.\[\]\s]+", token):
            out += f".{token}" if out else token
        else:
            out += f"[{token!r}]"
    return out


def validate_template_file(
    path: Path,
    known_actions: Collection[str] | None = None,
    *,
    action_inputs: Mapping[str, Iterable[str] | None] | None = None,
    allow_unknown_keys: bool = False,
    portable: bool = False,
) -> list[Problem]:
    """Every problem in one template file (an empty list when it is valid).

    ``known_actions`` are the action ids steps may use; None skips that check.
    ``action_inputs`` are the inputs each action accepts (``keys.input_keys_of``);
    misspelt keys are problems unless ``allow_unknown_keys`` (see ``keys``).
    ``portable`` adds what works here but not the same on Backstage, as problems
    of kind "portability" (``templating.portability``): in expressions and in the
    files of local skeletons.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem(path, "", f"cannot read the file: {exc}")]
    try:
        documents = load_all(text)
        nodes = [n for n in yaml.compose_all(text) if n is not None]
    except yaml.YAMLError as exc:
        line, message = yaml_problem(exc)
        return [Problem(path, "", message, line)]
    if not documents:
        return [Problem(path, "", "the file is empty")]
    checker = _Checker(known_actions, path.parent, portable=portable)
    problems = _key_problems(path, documents, nodes, action_inputs, allow_unknown_keys)
    for index, (document, node) in enumerate(zip(documents, nodes, strict=False)):
        if len(documents) > 1 and not (
            isinstance(document, dict) and document.get("kind") == "Template"
        ):
            continue  # other catalog entities may share the file
        prefix = f"(document {index + 1}) " if len(documents) > 1 else ""
        for tokens, message in checker.document(document):
            problems.append(
                Problem(path, prefix + format_path(tokens), message, _line(node, tokens))
            )
        for tokens, message in checker.take_notes():
            where, line = prefix + format_path(tokens), _line(node, tokens)
            problems.append(Problem(path, where, message, line, kind="portability"))
    problems.extend(
        Problem(path, "", message)
        for message in _link_problems(path.parent, checker.reported_links)
    )
    return problems


def _line(node: yaml.Node, tokens: PathTokens) -> int | None:
    """The line of the deepest node of ``tokens`` that exists."""
    current = node
    for token in tokens:
        found: yaml.Node | None = None
        if isinstance(current, yaml.MappingNode) and isinstance(token, str):
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode) and key.value == token:
                    found = value if not isinstance(value, yaml.ScalarNode) else key
                    break
        elif isinstance(current, yaml.SequenceNode) and isinstance(token, int):
            if 0 <= token < len(current.value):
                found = current.value[token]
        if found is None:
            break
        current = found
    return int(current.start_mark.line) + 1


class _Checker:
    def __init__(
        self, known_actions: Collection[str] | None, directory: Path, *, portable: bool = False
    ) -> None:
        self.known = set(known_actions) if known_actions is not None else None
        self.directory = directory
        self.renderer = Renderer()
        self.compat_renderer: Renderer | None = None
        self.reported_links: set[Path] = set()
        self.portable = portable
        self.parameter_types: dict[str, str] = {}
        self._notes: list[tuple[PathTokens, str]] = []

    def take_notes(self) -> list[tuple[PathTokens, str]]:
        """The portability notes of the document just checked (``portable``)."""
        notes, self._notes = self._notes, []
        return notes

    def note(self, renderer: Renderer, text: str, where: PathTokens, prefix: str = "") -> None:
        if self.portable:
            for message in renderer.portability(text, self.parameter_types):
                self._notes.append((where, prefix + message))

    def document(self, doc: Any) -> Iterator[tuple[PathTokens, str]]:
        if not isinstance(doc, dict):
            yield (), "the document is not a mapping"
            return
        api = doc.get("apiVersion")
        if api is None:
            yield ("apiVersion",), f"missing required field (expected {API_VERSION!r})"
        elif api != API_VERSION:
            yield ("apiVersion",), f"expected {API_VERSION!r}, got {api!r}"
        kind = doc.get("kind")
        if kind is None:
            yield ("kind",), "missing required field (expected 'Template')"
        elif kind != "Template":
            yield ("kind",), f"expected 'Template', got {kind!r}"
        yield from self.metadata(doc.get("metadata"))
        spec = doc.get("spec")
        if spec is None:
            yield ("spec",), "missing required field"
            return
        if not isinstance(spec, dict):
            yield ("spec",), "must be a mapping"
            return
        yield from self.spec(spec)

    def metadata(self, metadata: Any) -> Iterator[tuple[PathTokens, str]]:
        if metadata is None:
            yield ("metadata",), "missing required field"
            return
        if not isinstance(metadata, dict):
            yield ("metadata",), "must be a mapping"
            return
        name = metadata.get("name")
        if name is None:
            yield ("metadata", "name"), "missing required field"
        elif not isinstance(name, str) or len(name) > 63 or not _NAME.match(name):
            yield (
                ("metadata", "name"),
                f"{name!r} is not a valid name (letters, digits, '-', '_' and '.', "
                "at most 63 characters, starting and ending with a letter or digit)",
            )
        namespace = metadata.get("namespace")
        if namespace is not None and (not isinstance(namespace, str) or not _NAME.match(namespace)):
            yield ("metadata", "namespace"), f"{namespace!r} is not a valid namespace"
        for key in ("title", "description"):
            if key in metadata and not isinstance(metadata[key], str):
                yield ("metadata", key), "must be a string"
        tags = metadata.get("tags")
        if tags is not None:
            if not isinstance(tags, list):
                yield ("metadata", "tags"), "must be a list of strings"
            else:
                for i, tag in enumerate(tags):
                    if not isinstance(tag, str) or len(tag) > 63 or not _TAG.match(tag):
                        yield (
                            ("metadata", "tags", i),
                            f"{tag!r} is not a valid tag (lowercase letters, digits, "
                            "':', '+', '#', words joined by '-')",
                        )

    def spec(self, spec: dict[str, Any]) -> Iterator[tuple[PathTokens, str]]:
        if "type" not in spec:
            yield ("spec", "type"), "missing required field"
        elif not isinstance(spec["type"], str):
            yield ("spec", "type"), "must be a string"
        if "owner" in spec and not isinstance(spec["owner"], str):
            yield ("spec", "owner"), "must be a string"
        yield from self.parameters(spec.get("parameters"))
        secrets = spec.get("secrets")
        if secrets is not None:
            if not isinstance(secrets, dict):
                yield ("spec", "secrets"), "must be a mapping with a 'schema'"
            elif "schema" in secrets:
                yield from _schema_problems(secrets["schema"], ("spec", "secrets", "schema"))
        ids: list[str] = []
        yield from self.steps(spec.get("steps"), ids)
        output = spec.get("output")
        if output is not None:
            yield from self.output(output, ids)
        recovery = spec.get("EXPERIMENTAL_recovery")
        if recovery is not None:
            strategy = recovery.get("EXPERIMENTAL_strategy") if isinstance(recovery, dict) else None
            if not isinstance(recovery, dict) or (
                strategy is not None and strategy not in _RECOVERY_STRATEGIES
            ):
                yield (
                    ("spec", "EXPERIMENTAL_recovery"),
                    f"EXPERIMENTAL_strategy must be one of {', '.join(_RECOVERY_STRATEGIES)}",
                )

    def parameters(self, parameters: Any) -> Iterator[tuple[PathTokens, str]]:
        if parameters is None:
            return
        pages = parameters if isinstance(parameters, list) else [parameters]
        for page in pages:
            properties = page.get("properties") if isinstance(page, dict) else None
            for name, schema in (properties or {}).items():
                if isinstance(schema, dict) and isinstance(schema.get("type"), str):
                    self.parameter_types[str(name)] = schema["type"]
        if isinstance(parameters, dict):
            yield from _schema_problems(parameters, ("spec", "parameters"))
        elif isinstance(parameters, list):
            for i, page in enumerate(parameters):
                if not isinstance(page, dict):
                    yield ("spec", "parameters", i), "a parameter page must be a JSON Schema object"
                else:
                    yield from _schema_problems(page, ("spec", "parameters", i))
        else:
            yield ("spec", "parameters"), "must be a JSON Schema object or a list of them"

    def steps(self, steps: Any, ids: list[str]) -> Iterator[tuple[PathTokens, str]]:
        """Problems of spec.steps; the step ids seen are appended to ``ids``."""
        if steps is None:
            yield ("spec", "steps"), "missing required field"
            return
        if not isinstance(steps, list):
            yield ("spec", "steps"), "must be a list of steps"
            return
        first_seen: dict[str, int] = {}
        for i, step in enumerate(steps):
            where: PathTokens = ("spec", "steps", i)
            if not isinstance(step, dict):
                yield where, "a step must be a mapping"
                continue
            step_id = step.get("id")
            if step_id is not None:
                if not isinstance(step_id, str) or not step_id:
                    yield (*where, "id"), "must be a non-empty string"
                elif step_id in first_seen:
                    yield (
                        (*where, "id"),
                        f"duplicate step id {step_id!r} (also spec.steps[{first_seen[step_id]}])",
                    )
                else:
                    first_seen[step_id] = i
            if "name" in step and not isinstance(step["name"], str):
                yield (*where, "name"), "must be a string"
            yield from self.action(step.get("action"), (*where, "action"))
            if step.get("action") in _LOCAL_SOURCE_ACTIONS and isinstance(step.get("input"), dict):
                yield from self.local_source(step["action"], step["input"], where)
                if self.portable and "copyWithoutRender" in step["input"]:
                    self._notes.append(
                        (
                            (*where, "input", "copyWithoutRender"),
                            "Backstage 2.0 and later ignore copyWithoutRender and render "
                            "these files; copyWithoutTemplating is the spelling both honour",
                        )
                    )
            if (
                "input" in step
                and step["input"] is not None
                and not isinstance(step["input"], dict)
            ):
                yield (*where, "input"), "must be a mapping"
            condition = step.get("if")
            if condition is not None and not isinstance(condition, bool | str):
                yield (*where, "if"), "must be a boolean or a template expression"
            each = step.get("each")
            if each is not None and not isinstance(each, str | list | dict):
                yield (*where, "each"), "must be a template expression, a list or a mapping"
            for key in ("if", "each", "input"):
                if key in step:
                    yield from self.expressions(step[key], (*where, key), ids, key != "if")
            if isinstance(step_id, str) and step_id:
                ids.append(step_id)

    def action(self, action: Any, where: PathTokens) -> Iterator[tuple[PathTokens, str]]:
        if action is None:
            yield where, "missing required field"
        elif not isinstance(action, str):
            yield where, "must be an action id such as 'fetch:template'"
        elif self.known is not None and action not in self.known:
            close = difflib.get_close_matches(action, sorted(self.known), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            yield where, f"unknown action {action!r}{hint}"

    def local_source(
        self, action: str, inp: dict[str, Any], where: PathTokens
    ) -> Iterator[tuple[PathTokens, str]]:
        """A fetch step's local ``url`` must exist beside the template, and a
        fetch:template skeleton's file names and contents must parse."""
        url = inp.get("url")
        if not isinstance(url, str) or self.renderer.is_template(url) or "://" in url:
            return
        if url.startswith("/") or url.endswith(".git"):
            return  # an allowed local root or a repository: checked when it runs
        source = (self.directory / url).resolve()
        at: PathTokens = (*where, "input", "url")
        if not is_within(self.directory, source):
            yield at, f"{url!r} leads outside the template folder (fetch:* refuses it)"
            return
        file_action = action.endswith(":file")
        if not (source.is_file() if file_action else source.is_dir()):
            kind = "file" if file_action else "folder"
            yield at, f"{url!r}: no such {kind} next to the template"
            return
        if action == "fetch:template":
            yield from self.skeleton(source, inp, at)
        elif not file_action:
            for entry, tree in _skeleton_entries(source, url):
                if entry.kind == "link":
                    yield from self.link(tree, source, entry.path, at)

    def link(
        self, tree: Tree, root: Path, rel: str, at: PathTokens
    ) -> Iterator[tuple[PathTokens, str]]:
        """A link in a fetched folder that points outside it (fetch:* refuses the
        whole folder for it); reported once, here rather than by the folder scan."""
        try:
            tree.check_link(rel)
        except FalseworkError as exc:
            self.reported_links.add(root / rel)
            yield at, exc.message

    def skeleton(
        self, root: Path, inp: dict[str, Any], at: PathTokens
    ) -> Iterator[tuple[PathTokens, str]]:
        renderer = self.renderer
        if inp.get("cookiecutterCompat") is True:
            if self.compat_renderer is None:
                self.compat_renderer = Renderer(cookiecutter_compat=True)
            renderer = self.compat_renderer
        verbatim = _globs(inp.get("copyWithoutTemplating"))
        unnamed = _globs(inp.get("copyWithoutRender"))

        extension = inp.get("templateFileExtension")
        suffix = ".njk" if extension is True else extension if isinstance(extension, str) else None
        if suffix is not None and not suffix.startswith("."):
            suffix = "." + suffix
        url = inp["url"]
        for entry, tree in _skeleton_entries(root, url):
            rel = entry.path
            if entry.kind == "link":
                yield from self.link(tree, root, rel, at)
                continue
            skip_names = matches_or_under(rel, unnamed)
            if not skip_names:
                for message in renderer.check(entry.name):
                    yield at, f"{rel}: file name: {message}"
                self.note(renderer, entry.name, at, f"{rel}: file name: ")
            if entry.kind != "file" or skip_names or matches_or_under(rel, verbatim):
                continue
            if suffix is not None and not entry.name.endswith(suffix):
                continue
            if entry.stat.st_size > _MAX_SKELETON_FILE:
                continue
            try:
                text = tree.read_bytes(rel).decode("utf-8")
            except (FalseworkError, UnicodeDecodeError):
                continue  # binary files are copied untouched
            for message in renderer.check(text):
                yield at, f"{rel}: {message}"
            self.note(renderer, text, at, f"{rel}: ")

    def output(self, output: Any, ids: list[str]) -> Iterator[tuple[PathTokens, str]]:
        where: PathTokens = ("spec", "output")
        if not isinstance(output, dict):
            yield where, "must be a mapping"
            return
        links = output.get("links")
        if links is not None:
            if not isinstance(links, list):
                yield (*where, "links"), "must be a list"
            else:
                for i, link in enumerate(links):
                    if not isinstance(link, dict):
                        yield (*where, "links", i), "a link must be a mapping"
                    elif "url" not in link and "entityRef" not in link:
                        yield (*where, "links", i), "a link needs a 'url' or an 'entityRef'"
        text = output.get("text")
        if text is not None:
            if not isinstance(text, list):
                yield (*where, "text"), "must be a list"
            else:
                for i, item in enumerate(text):
                    if not isinstance(item, dict):
                        yield (*where, "text", i), "a text item must be a mapping"
                    elif "content" not in item:
                        yield (*where, "text", i, "content"), "missing required field"
        yield from self.expressions(output, where, ids)

    def expressions(
        self, value: Any, where: PathTokens, earlier: list[str], secrets: bool = False
    ) -> Iterator[tuple[PathTokens, str]]:
        """Template expressions that do not parse, name a step that has not run,
        or read ``secrets`` where the runner does not pass them."""
        if isinstance(value, str):
            if not self.renderer.is_template(value):
                return
            for message in self.renderer.check(value):
                yield where, message
            self.note(self.renderer, value, where)
            if not secrets and "secrets" in self.renderer.variables(value):
                yield where, "secrets are only available in a step's input and each"
            for match in _STEP_REF.finditer(value):
                ref = next(g for g in match.groups() if g is not None)
                if ref not in earlier:
                    yield where, f"refers to steps.{ref}, which is not an earlier step's id"
        elif isinstance(value, dict):
            for key, sub in value.items():
                yield from self.expressions(sub, (*where, str(key)), earlier, secrets)
        elif isinstance(value, list):
            for i, sub in enumerate(value):
                yield from self.expressions(sub, (*where, i), earlier, secrets)


def _skeleton_entries(root: Path, url: str) -> Iterator[tuple[Entry, Tree]]:
    """The entries fetch:* copies from a local skeleton (the same walk, ``.git``
    left out), at most ``_MAX_SKELETON_FILES``, with the tree to read them."""
    name = url.removeprefix("./").rstrip("/")
    where = f"the fetched folder ./{name}"
    with Tree(root, where=where, prefix=f"{name}/" if name and name != "." else "") as tree:
        for count, entry in enumerate(tree.walk(skip=(".git",))):
            if count >= _MAX_SKELETON_FILES:
                return
            yield entry, tree


def _link_problems(folder: Path, reported: Collection[Path]) -> Iterator[str]:
    """Links in a template folder that point outside it (a skeleton copied with
    one would carry it into a workspace; fetch refuses it at run time), but
    those already reported for a fetch step."""
    real = Path(os.path.realpath(folder))
    done = {Path(os.path.realpath(p.parent)) / p.name for p in reported}
    try:
        tree = Tree(folder, where="the template folder")
    except OSError:
        return
    with tree:
        for count, entry in enumerate(tree.walk(skip=(".git", "node_modules"))):
            if count >= _MAX_FOLDER_ENTRIES:
                return
            if entry.kind == "link" and real / entry.path not in done:
                try:
                    tree.check_link(entry.path)
                except FalseworkError as exc:
                    yield exc.message


def _globs(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(p).removeprefix("./").rstrip("/") for p in value if isinstance(p, str)]


def _schema_problems(schema: Any, where: PathTokens) -> Iterator[tuple[PathTokens, str]]:
    if not isinstance(schema, dict):
        yield where, "must be a JSON Schema object"
        return
    import jsonschema  # here: `falsework run` imports this module, not this check

    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    except jsonschema.SchemaError as exc:
        yield where, str(exc.message)
        return
    meta = cls(cls.META_SCHEMA)
    for error in sorted(meta.iter_errors(schema), key=lambda e: list(map(str, e.path))):
        tokens = tuple(p if isinstance(p, int) else str(p) for p in error.absolute_path)
        yield (*where, *tokens), f"not valid JSON Schema: {error.message}"
    for path, message in pattern_problems(schema):
        yield (*where, *path), message


def _key_problems(
    path: Path,
    documents: list[Any],
    nodes: list[yaml.Node],
    action_inputs: Mapping[str, Iterable[str] | None] | None,
    allow_unknown_keys: bool,
) -> list[Problem]:
    """Keys given twice in a mapping, and misspelt keys (``keys.unknown_keys``)
    unless the run or the template's annotation allows unknown keys."""
    problems = [
        Problem(path, "", message, line) for node in nodes for line, message in duplicate_keys(node)
    ]
    for index, (document, node) in enumerate(zip(documents, nodes, strict=False)):
        if not isinstance(document, dict) or document.get("kind") != "Template":
            continue
        if allow_unknown_keys or allows_unknown_keys(document):
            continue
        prefix = f"(document {index + 1}) " if len(documents) > 1 else ""
        for tokens, message in unknown_keys(document, action_inputs or {}):
            where = prefix + format_path(tokens)
            problems.append(Problem(path, where, message, key_line(node, tokens)))
    return problems
