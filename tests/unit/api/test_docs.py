"""The API and operations documents cannot drift from the code."""

from __future__ import annotations

from falsework.api.apidoc import current
from falsework.config import Settings
from support.paths import DOCS


def test_api_md_is_generated_from_the_openapi_document() -> None:
    assert (DOCS / "api.md").read_text(encoding="utf-8") == current(), (
        "docs/api.md is stale: run `python -m falsework.api.apidoc > docs/api.md`"
    )


def test_operations_md_lists_every_setting() -> None:
    text = (DOCS / "operations.md").read_text(encoding="utf-8")
    for name in Settings.model_fields:
        if name in ("auth", "integrations", "scaffolder", "backstage"):
            assert f"`{name}` (file only)" in text, name
        else:
            assert f"`FALSEWORK_{name.upper()}`" in text, name
