"""Misspelt keys in a template: ``paramaters:`` makes the form vanish and
``valuez:`` on fetch:template fails only when the task runs, so ``templates
validate`` names them, with the key that was probably meant.

The keys a template may use are those of Backstage's Template v1beta3 schema and the
catalog's entity envelope, plus a step's ``each`` and ``timeout`` (Falsework's
runner reads them); an action's inputs are those of its input schema when that
schema allows no others. An author who keeps keys of their own says so: keys
starting with ``x-`` are always theirs, the annotation
``falsework.dev/allow-unknown-keys: "true"`` turns the check off for one template,
and ``templates validate --allow-unknown-keys`` for a run.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

ALLOW_UNKNOWN_KEYS = "falsework.dev/allow-unknown-keys"

TOP = ("apiVersion", "kind", "metadata", "spec", "relations", "status")
METADATA = (
    "name",
    "namespace",
    "title",
    "description",
    "labels",
    "annotations",
    "tags",
    "links",
    "uid",
    "etag",
)
SPEC = (
    "type",
    "owner",
    "lifecycle",
    "parameters",
    "secrets",
    "presentation",
    "steps",
    "output",
    "EXPERIMENTAL_recovery",
    "EXPERIMENTAL_formDecorators",
)
STEP = ("id", "name", "action", "input", "if", "each", "timeout", "backstage:permissions")

Where = tuple[str | int, ...]


def allows_unknown_keys(document: Mapping[str, Any]) -> bool:
    """Whether the template's annotation turns the unknown-key check off."""
    metadata = document.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    if not isinstance(annotations, Mapping):
        return False
    return str(annotations.get(ALLOW_UNKNOWN_KEYS, "")).strip().lower() in ("true", "yes", "1")


def unknown_keys(
    document: Mapping[str, Any], input_keys: Mapping[str, Iterable[str] | None]
) -> Iterator[tuple[Where, str]]:
    """``(where, message)`` for each key of ``document`` that no reader knows:
    top level, ``metadata``, ``spec``, each step, and each step's ``input`` when
    ``input_keys`` lists the inputs of its action (None: any input)."""
    yield from _check(document, TOP, ())
    if isinstance(document.get("metadata"), Mapping):
        yield from _check(document["metadata"], METADATA, ("metadata",))
    spec = document.get("spec")
    if not isinstance(spec, Mapping):
        return
    yield from _check(spec, SPEC, ("spec",), hint=_spec_hint)
    steps = spec.get("steps")
    for i, step in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(step, Mapping):
            continue
        where: Where = ("spec", "steps", i)
        yield from _check(step, STEP, where, hint=_step_hint)
        action, inputs = step.get("action"), step.get("input")
        known = input_keys.get(action) if isinstance(action, str) else None
        if known is not None and isinstance(inputs, Mapping):
            yield from _check(
                inputs, tuple(known), (*where, "input"), what="input", of=f" of {action}"
            )


def _check(
    mapping: Mapping[str, Any],
    known: tuple[str, ...],
    where: Where,
    *,
    what: str = "key",
    of: str = "",
    hint: Callable[[str], str | None] | None = None,
) -> Iterator[tuple[Where, str]]:
    for key in mapping:
        if not isinstance(key, str) or key in known or key.startswith("x-"):
            continue
        message = f"unknown {what} {key!r}{of}"
        close = _closest(key, known)
        words = hint(key) if hint is not None else None
        if close:
            message += f" (did you mean {close}?)"
        elif words:
            message += f" ({words})"
        elif what == "key":
            message += f"; known keys: {', '.join(known)}"
        yield (*where, key), message


def _closest(key: str, known: tuple[str, ...]) -> str | None:
    found = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if found:
        return found[0]
    lowered = {k.lower(): k for k in known}
    return lowered.get(key.lower())


def _spec_hint(key: str) -> str | None:
    if key in ("templater", "path", "template", "schema"):
        return "a v1beta2 key: v1beta3 templates have parameters and steps only"
    if key in STEP:
        return "a step's key: put it under one of spec.steps"
    return None


def _step_hint(key: str) -> str | None:
    if key in ("parameters", "inputs", "with"):
        return "an action's inputs go under input:"
    return None


def input_keys_of(schemas: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str] | None]:
    """The inputs each action accepts, from its input JSON Schema: its
    ``properties`` when it allows no others, else None (any key)."""
    found: dict[str, list[str] | None] = {}
    for action, schema in schemas.items():
        props = schema.get("properties")
        closed = schema.get("additionalProperties") is False and not schema.get("patternProperties")
        found[action] = list(props) if closed and isinstance(props, Mapping) else None
    return found
