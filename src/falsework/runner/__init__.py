"""Runs one task's steps (layer 4)."""

from falsework.errors import TaskFailedError
from falsework.runner.memory import LocalTask, MemoryTaskIO
from falsework.runner.outcome import BACKSTAGE, BackstageWording, as_executor
from falsework.runner.redaction import Redactor
from falsework.runner.workflow import DefaultEnvironment, WorkflowRunner
from falsework.taskio import TaskInput, TaskIO

__all__ = [
    "BACKSTAGE",
    "BackstageWording",
    "DefaultEnvironment",
    "LocalTask",
    "MemoryTaskIO",
    "Redactor",
    "TaskFailedError",
    "TaskIO",
    "TaskInput",
    "WorkflowRunner",
    "as_executor",
]
