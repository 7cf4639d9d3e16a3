"""falsework.templates: the v1beta3 Template model, loading from folders, parameter
validation and template-file validation (layer 2; see docs/internals.md)."""

from falsework.templates.catalog import TemplateCatalog, parse_ref
from falsework.templates.template import API_VERSION, Template, load_templates
from falsework.templates.validation import Problem, validate_template_file
from falsework.templates.values import (
    ParameterValidationError,
    apply_defaults,
    validate_values,
)

__all__ = [
    "API_VERSION",
    "ParameterValidationError",
    "Problem",
    "Template",
    "TemplateCatalog",
    "apply_defaults",
    "load_templates",
    "parse_ref",
    "validate_template_file",
    "validate_values",
]
