"""The durable task engine (layer 5): store, broker, worker, janitor, wake-ups.

See docs/engine.md for the protocol, the tables and every option.
"""

from falsework.engine.broker import Broker
from falsework.engine.channel import TaskChannel
from falsework.engine.models import ClaimedTask, Event, NewTask, Task, WorkerInfo
from falsework.engine.options import BrokerOptions, StoreOptions, WorkerOptions
from falsework.engine.worker import TaskWorker

__all__ = [
    "Broker",
    "BrokerOptions",
    "ClaimedTask",
    "Event",
    "NewTask",
    "StoreOptions",
    "Task",
    "TaskChannel",
    "TaskWorker",
    "WorkerInfo",
    "WorkerOptions",
]
