"""Build hook: the example templates go into the wheel as package data.

They live in examples/templates/ beside src/ so a clone shows them where the docs
say; a wheel (``pipx install``, ``uv tool install``) carries them as
``falsework/examples/templates/``, where ``falsework.config.EXAMPLES_DIR`` finds them.
An editable install reads them in place, so nothing is copied for it.
"""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class ExamplesHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version != "editable":
            build_data["force_include"]["examples/templates"] = "falsework/examples/templates"
