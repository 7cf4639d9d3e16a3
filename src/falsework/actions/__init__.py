"""Actions (layer 3): the contract, the registry and the built-ins."""

from falsework.actions.context import ActionContext, StepLogger, Workspace
from falsework.actions.contract import Action, ActionInput, Example, action, example_output
from falsework.actions.paths import resolve_safe_path
from falsework.actions.registry import ActionRegistry
from falsework.confine import Tree

__all__ = [
    "Action",
    "ActionContext",
    "ActionInput",
    "ActionRegistry",
    "Example",
    "StepLogger",
    "Tree",
    "Workspace",
    "action",
    "example_output",
    "resolve_safe_path",
]
