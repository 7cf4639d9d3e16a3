"""``catalog:write`` — write a catalog-info.yaml from an entity object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from falsework.actions.context import ActionContext
from falsework.actions.contract import ActionInput, action


class WriteInput(ActionInput):
    file_path: str = Field("catalog-info.yaml", description="Workspace path of the file.")
    entity: dict[str, Any] = Field(description="The entity to write (any catalog kind).")


@action(
    id="catalog:write",
    rebuilds_workspace=True,
    description="Writes the catalog-info.yaml for your template",
    input=WriteInput,
    dry_run=True,
    examples=[
        (
            "Write a catalog-info.yaml file",
            "steps:\n  - action: catalog:write\n    id: create-catalog-info-file\n"
            "    name: Create catalog file\n    input:\n      entity:\n"
            "        apiVersion: backstage.io/v1alpha1\n        kind: Component\n"
            "        metadata:\n          name: test\n          annotations: {}\n"
            "        spec:\n          type: service\n          lifecycle: production\n"
            "          owner: default/owner\n",
        ),
        (
            "Write into a sub-folder",
            "steps:\n  - action: catalog:write\n    id: create-catalog-info-file\n"
            "    name: Create catalog file\n    input:\n      filePath: service/catalog-info.yaml\n"
            "      entity:\n        apiVersion: backstage.io/v1alpha1\n"
            "        kind: Component\n        metadata:\n          name: test\n",
        ),
    ],
)
async def catalog_write(ctx: ActionContext[WriteInput]) -> None:
    ctx.logger.info(f"Writing {ctx.input.file_path}")
    path = ctx.resolve_path(ctx.input.file_path)
    text = yaml.safe_dump(ctx.input.entity, sort_keys=False, allow_unicode=True)
    await ctx.in_thread(_write, path, text)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
