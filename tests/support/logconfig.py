"""The root logger and logging's flags as a test found them, put back after it
(``falsework.logs.configure`` changes both for the whole process)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

# what configure() stops gathering for every record
FLAGS = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing")


@contextmanager
def kept_logging() -> Iterator[logging.Logger]:
    """The root logger, its handlers, level and logging's flags restored on exit."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    saved = {name: getattr(logging, name) for name in FLAGS}
    try:
        yield root
    finally:
        for name, value in saved.items():
            setattr(logging, name, value)
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
