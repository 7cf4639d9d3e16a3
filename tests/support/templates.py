"""Helpers for the templates tests: template folders written into tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

WriteTemplate = Callable[..., Path]


def template_doc(name: str = "demo", **spec: Any) -> dict[str, Any]:
    """A small valid v1beta3 Template document; ``spec`` keys override."""
    body: dict[str, Any] = {
        "owner": "user:guest",
        "type": "service",
        "parameters": [
            {
                "title": "Input",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "title": "Name"},
                    "description": {
                        "type": "string",
                        "title": "Description",
                        "default": "An example component",
                    },
                },
            }
        ],
        "steps": [
            {
                "id": "log",
                "name": "Log",
                "action": "debug:log",
                "input": {"message": "Hello ${{ parameters.name }}"},
            }
        ],
        "output": {"text": [{"title": "Name", "content": "${{ parameters.name }}"}]},
    }
    body.update(spec)
    return {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {"name": name, "title": f"The {name} template", "description": "A demo."},
        "spec": body,
    }


@pytest.fixture
def write_template(tmp_path: Path) -> WriteTemplate:
    """``write_template("demo", doc_or_text, folder=..., filename=..., files={...})``
    writes ``<tmp>/<folder>/<filename>`` (default ``templates/<name>/template.yaml``)."""

    def write(
        name: str,
        document: dict[str, Any] | str | None = None,
        *,
        folder: str | None = None,
        filename: str = "template.yaml",
        files: dict[str, str] | None = None,
    ) -> Path:
        base = tmp_path / (folder if folder is not None else f"templates/{name}")
        base.mkdir(parents=True, exist_ok=True)
        doc = template_doc(name) if document is None else document
        text = doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False)
        path = base / filename
        path.write_text(text, encoding="utf-8")
        for rel, content in (files or {}).items():
            target = base / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        return path

    return write
