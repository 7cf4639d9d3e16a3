"""Runs one task's steps (layer 4)."""

from falsework.runner.io import TaskInput, TaskIO
from falsework.runner.memory import LocalTask, MemoryTaskIO
from falsework.runner.redaction import Redactor
from falsework.runner.workflow import TaskFailedError, WorkflowRunner

__all__ = [
    "LocalTask",
    "MemoryTaskIO",
    "Redactor",
    "TaskFailedError",
    "TaskIO",
    "TaskInput",
    "WorkflowRunner",
]
