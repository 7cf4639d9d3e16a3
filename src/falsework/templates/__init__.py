"""falsework.templates: the v1beta3 Template model, loading from folders, parameter
validation and template-file validation (layer 2; see docs/internals.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from falsework.templates.catalog import TemplateCatalog, parse_ref
from falsework.templates.template import API_VERSION, Template, load_templates
from falsework.templates.values import (
    ParameterValidationError,
    apply_defaults,
    quick_values,
    validate_values,
)

if TYPE_CHECKING:
    from falsework.templates.validation import Problem, validate_template_file


def __getattr__(name: str) -> Any:
    # the template-file checks (difflib, the key tables) are imported when first
    # asked for: running a template does not check its file
    if name in ("Problem", "validate_template_file"):
        from falsework.templates import validation

        return getattr(validation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "API_VERSION",
    "ParameterValidationError",
    "Problem",
    "Template",
    "TemplateCatalog",
    "apply_defaults",
    "load_templates",
    "parse_ref",
    "quick_values",
    "validate_template_file",
    "validate_values",
]
