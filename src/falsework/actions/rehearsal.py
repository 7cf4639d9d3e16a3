"""Rehearsals: dry runs in which side-effecting actions become recorders.

A plain dry run skips an action that cannot run without side effects and fakes
its outputs from its output schema (``<example>``). A rehearsal — what
``falsework templates test`` runs, locally or through ``POST /v2/dry-run`` with a
``rehearsal`` — is a dry run that is also deterministic and says what would
have happened:

- every step whose action cannot dry-run is *recorded*: its action and its
  rendered input, secrets redacted (``calls``);
- an action with a recorder (``Action.recorder``: publish:*, the GitHub actions,
  catalog:register, http:request) runs it instead of being skipped: it outputs
  what the real action would from its input (no placeholders) and, for a push,
  records the tree it would push;
- http:request is answered from the rehearsal's canned answers and fails
  closed when none matches: nothing leaves the machine. A poll's waits are not
  waited (the clock is frozen: no built-in action or expression reads it);
- the task id comes from a seed and the user is a fixed one, so the same
  rehearsal gives the same bytes anywhere.
"""

from __future__ import annotations

import base64
import json
import stat
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from falsework.confine import Tree
from falsework.errors import ActionError, InputError, TooLargeError
from falsework.types import JSONObject

# Task ids of rehearsals: uuid5(this, seed).
_NAMESPACE = uuid.UUID("6c1f7a52-6a58-4a8e-9b1e-2f1df3a7c0de")

DEFAULT_USER: JSONObject = {
    "ref": "user:default/tester",
    "entity": {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "User",
        "metadata": {"name": "tester", "namespace": "default"},
        "spec": {
            "profile": {"displayName": "Template Tester", "email": "tester@example.com"},
            "memberOf": ["group:default/testers"],
        },
    },
}
"""The user a rehearsal runs as, unless it names one."""

PLACEHOLDER_COMMIT = "0" * 40
"""The commit hash a recorder reports for a push it did not make."""

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_UNSET: Any = object()


@dataclass
class HttpAnswer:
    """One canned answer: the request it answers (method, URL, and the body when
    given) and its responses, given in turn (the last one repeats)."""

    url: str
    responses: list[JSONObject]
    method: str = "GET"
    body: Any = _UNSET
    source: str = ""
    used: int = 0

    def matches(self, method: str, url: str, body: Any) -> bool:
        if self.method != method.upper() or self.url != url:
            return False
        return self.body is _UNSET or self.body == body

    def next(self) -> JSONObject:
        response = self.responses[min(self.used, len(self.responses) - 1)]
        self.used += 1
        return response

    @classmethod
    def from_json(cls, data: Any, source: str = "") -> HttpAnswer:
        """``{request: {method?, url, body?}, response: {...}}`` or ``responses:
        [...]``; each response ``{status?, headers?, body?}``. ``InputError``
        naming ``source`` when it is not that."""
        where = source or "an http answer"
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: expected a mapping with request and response")
        request = data.get("request")
        if not isinstance(request, Mapping) or not isinstance(request.get("url"), str):
            raise InputError(f"{where}: request.url (the URL the step calls) is missing")
        method = str(request.get("method") or "GET").upper()
        if method not in _METHODS:
            raise InputError(f"{where}: request.method {method!r} is not one of {_METHODS}")
        if "responses" in data:
            responses = data["responses"]
        elif "response" in data:
            responses = [data["response"]]
        else:
            responses = [{}]
        if not isinstance(responses, list) or not responses:
            raise InputError(f"{where}: responses must be a non-empty list")
        shaped = [_response(r, f"{where}: response {i + 1}") for i, r in enumerate(responses)]
        unknown = set(data) - {"request", "response", "responses"}
        unknown |= set(request) - {"method", "url", "body"}
        if unknown:
            raise InputError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        return cls(
            url=request["url"],
            method=method,
            body=request["body"] if "body" in request else _UNSET,
            responses=shaped,
            source=source,
        )

    def to_json(self) -> JSONObject:
        request: JSONObject = {"method": self.method, "url": self.url}
        if self.body is not _UNSET:
            request["body"] = self.body
        return {"request": request, "responses": self.responses}


def _response(data: Any, where: str) -> JSONObject:
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: expected a mapping (status, headers, body)")
    unknown = set(data) - {"status", "headers", "body"}
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    status = data.get("status", 200)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise InputError(f"{where}: status must be an HTTP status code, not {status!r}")
    headers = data.get("headers") or {}
    if not isinstance(headers, Mapping):
        raise InputError(f"{where}: headers must be a mapping")
    shaped_headers = {str(k).lower(): str(v) for k, v in headers.items()}
    body = data.get("body")
    if isinstance(body, dict | list) and "content-type" not in shaped_headers:
        shaped_headers["content-type"] = "application/json"
    return {"status": status, "headers": shaped_headers, "body": body}


@dataclass
class Rehearsal:
    """One rehearsal's settings and what its recorders recorded (``calls``)."""

    seed: str = "falsework"
    user: JSONObject = field(default_factory=lambda: dict(DEFAULT_USER))
    http: list[HttpAnswer] = field(default_factory=list)
    calls: list[JSONObject] = field(default_factory=list)
    # what one recorded tree may hold (the runner sets its dry-run limits)
    max_files: int = 1_000
    max_bytes: int = 7_000_000

    @property
    def task_id(self) -> str:
        return str(uuid.uuid5(_NAMESPACE, self.seed))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Rehearsal:
        """The API's ``rehearsal`` object: ``{seed?, user?, http?: [answers]}``."""
        user = data.get("user")
        if user is not None and (
            not isinstance(user, Mapping) or not isinstance(user.get("ref"), str)
        ):
            raise InputError("rehearsal.user must be an object with a ref (user:default/name)")
        answers = data.get("http") or []
        if not isinstance(answers, list):
            raise InputError("rehearsal.http must be a list of answers")
        return cls(
            seed=str(data.get("seed") or "falsework"),
            user=dict(user) if user is not None else dict(DEFAULT_USER),
            http=[_answer(a, i) for i, a in enumerate(answers)],
        )

    def to_json(self) -> JSONObject:
        return {
            "seed": self.seed,
            "user": self.user,
            "http": [
                {**a.to_json(), **({"source": a.source} if a.source else {})} for a in self.http
            ],
        }

    def record(self, step_id: str, action_id: str, call_input: JSONObject) -> Recording:
        call: JSONObject = {"step": step_id, "action": action_id, "input": call_input}
        self.calls.append(call)
        return Recording(self, call)

    def answer(self, method: str, url: str, body: Any) -> JSONObject:
        """The next canned response for this request; ``ActionError`` when no
        answer matches (a rehearsal never sends a request)."""
        for candidate in self.http:
            if candidate.matches(method, url, body):
                return candidate.next()
        known = sorted({f"{a.method} {a.url}" for a in self.http})
        listed = f" (answers given: {', '.join(known)})" if known else ""
        raise ActionError(
            f"{method} {url}: no canned answer matches this request, and a rehearsal "
            f"sends none{listed}. Add a file to the case's http/ folder with "
            f"request: {{method: {method}, url: {json.dumps(url)}}} and a response."
        )


def _answer(data: Any, index: int) -> HttpAnswer:
    """An answer of the API's ``rehearsal.http`` (``source``: the file it came from)."""
    if isinstance(data, Mapping) and "source" in data:
        rest = {k: v for k, v in data.items() if k != "source"}
        return HttpAnswer.from_json(rest, str(data["source"])[:200])
    return HttpAnswer.from_json(data, f"rehearsal.http[{index}]")


class Recording:
    """What one recorded step's recorder sees: its call, to which it adds."""

    __slots__ = ("call", "rehearsal")

    def __init__(self, rehearsal: Rehearsal, call: JSONObject) -> None:
        self.rehearsal = rehearsal
        self.call = call

    def note(self, **details: Any) -> None:
        """Add what the recorder worked out (a resolved URL, a branch...)."""
        self.call.update(details)

    def tree(self, folder: Path, *, skip: frozenset[str] = frozenset({".git"})) -> None:
        """Record the files under ``folder`` (what a push would push), read now:
        later steps may still change the workspace. Blocking: call it in a thread."""
        self.call["files"] = read_tree(
            folder,
            skip=skip,
            max_files=self.rehearsal.max_files,
            max_bytes=self.rehearsal.max_bytes,
        )


def read_tree(
    root: Path, *, skip: frozenset[str], max_files: int, max_bytes: int
) -> list[JSONObject]:
    """Every regular file under ``root`` as ``{path, base64Content, executable}``,
    path order, links left out (never followed); ``TooLargeError`` past the limits."""
    found: list[JSONObject] = []
    total = 0
    with Tree(root, where="the published folder") as tree:
        for entry in tree.walk(skip=skip):
            if entry.kind != "file":
                continue
            total += entry.stat.st_size
            if len(found) >= max_files or total > max_bytes:
                raise TooLargeError(
                    f"the tree a step would push holds more than {max_files:,} files or "
                    f"{max_bytes:,} bytes, the most a rehearsal records"
                )
            found.append(
                {
                    "path": entry.path,
                    "base64Content": base64.b64encode(tree.read_bytes(entry.path)).decode(),
                    "executable": bool(entry.stat.st_mode & stat.S_IXUSR),
                }
            )
    found.sort(key=lambda f: str(f["path"]))
    return found
