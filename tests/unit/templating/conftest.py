"""Fixtures for the templating tests: one renderer and a context shaped like the
runner's (parameters, steps, user, context, __status)."""

from __future__ import annotations

from typing import Any

import pytest

from falsework.templating import Renderer


@pytest.fixture
def renderer() -> Renderer:
    return Renderer()


@pytest.fixture
def ctx() -> dict[str, Any]:
    return {
        "parameters": {
            "name": "my-svc",
            "count": 3,
            "ratio": 1.5,
            "flag": True,
            "off": False,
            "empty": "",
            "nothing": None,
            "tags": ["b", "a", "c"],
            "owner": "group:default/team-a",
            "repoUrl": "github.com?owner=acme&repo=my-svc",
            "values": "a parameter named like a dict method",
            "people": [
                {"name": "ann", "admin": True, "age": 40},
                {"name": "bob", "admin": False, "age": 30},
            ],
            "labels": {"app": "web", "tier": "front"},
        },
        "steps": {
            "fetch": {"output": {"path": "out", "files": 2}},
            "fetch-base": {"output": {"remoteUrl": "https://example.com/r.git"}},
        },
        "user": {"ref": "user:default/ann", "entity": {"metadata": {"name": "ann"}}},
        "context": {"task": {"id": "t-1"}},
        "__status": "ok",
    }
