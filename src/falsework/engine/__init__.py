"""The durable task engine (layer 5): store, broker, worker, janitor, wake-ups.

See docs/engine.md for the protocol, the tables and every setting.
"""

from falsework.engine.broker import Broker
from falsework.engine.models import ClaimedTask, Event, NewTask, Task, WorkerInfo
from falsework.engine.store import is_unavailable
from falsework.engine.worker import Executor, TaskChannel, TaskWorker

__all__ = [
    "Broker",
    "ClaimedTask",
    "Event",
    "Executor",
    "NewTask",
    "Task",
    "TaskChannel",
    "TaskWorker",
    "WorkerInfo",
    "is_unavailable",
]
