"""The process's log lines: plain text or one JSON object per line, and the task a
line is about.

``configure`` sets up the root logger once, at the edge (``falsework serve``,
``falsework worker``), in the format of ``--log-format`` / ``FALSEWORK_LOG_FORMAT``.
Where a task runs, ``bind_task`` (and ``bind_step`` for each step) put the task's
fields in a context variable: every line logged from that run (the runner, its
actions, the engine's lines about it) carries ``task_id``, ``step_id``, ``attempt``,
``worker_id``, ``template`` and ``user``, added by the ``TaskFields`` filter. A
line elsewhere may name its task with ``extra={"task_id": ...}``.

Each run is an asyncio task of its own with a copy of the context, so what is
bound there stays with that run and vanishes with it.

Every line passes ``RedactUrls`` on its way out: a URL's user information and its
query's values become ``***`` (httpx logs each request's full URL, and a webhook's
or an ``http:request`` step's query may carry a token).
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from typing import Any, Literal

from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

TASK_FIELDS = ("task_id", "step_id", "attempt", "worker_id", "template", "user")
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"

_fields: ContextVar[dict[str, Any] | None] = ContextVar("falsework_task_fields", default=None)


def bind_task(
    task_id: str, *, attempt: int, template: str | None, user: str | None, worker_id: str | None
) -> None:
    """The fields of the task running in this context (a run's own asyncio task)."""
    _fields.set(
        {
            "task_id": task_id,
            "attempt": attempt,
            "template": template,
            "user": user,
            "worker_id": worker_id,
            "step_id": None,
        }
    )


def bind_step(step_id: str | None) -> None:
    """The step of the bound task now running (None between steps)."""
    current = _fields.get()
    if current is not None:
        _fields.set({**current, "step_id": step_id})


def task_fields() -> dict[str, Any]:
    """The fields bound in this context (empty outside a task)."""
    return dict(_fields.get() or {})


_UNBOUND: dict[str, Any] = {}


class TaskFields(logging.Filter):
    """Puts the bound task's fields on every record (None where there is none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        bound = _fields.get() or _UNBOUND
        # (a record's attributes are its __dict__: no class attribute has these names)
        fields = record.__dict__
        for name in TASK_FIELDS:
            if fields.get(name) is None:
                fields[name] = bound.get(name)
        return True


_URL = re.compile(
    r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s\"'<>]+@)?"
    r"(?P<rest>[^?#\s\"'<>]*)(?P<query>\?[^#\s\"'<>]*)?"
)
_QUERY_VALUE = re.compile(r"([?&;][^=&;#]*=)[^&;#]*")


def _redact_url(match: re.Match[str]) -> str:
    userinfo = "***@" if match["userinfo"] else ""
    query = _QUERY_VALUE.sub(r"\1***", match["query"] or "")
    return f"{match['scheme']}{userinfo}{match['rest']}{query}"


def redact(text: str) -> str:
    """``text`` with every URL's user information and query values as ``***``:
    ``https://u:t@host/p?token=t&a=1`` → ``https://***@host/p?token=***&a=***``."""
    if "://" not in text:
        return text  # no URL (the common line): no regular expression run
    return _URL.sub(_redact_url, text)


class RedactUrls(logging.Filter):
    """Redacts the URLs in a line's message (its arguments merged in first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class _Json(JsonFormatter):
    """One JSON object per line: time, level, logger, message, the task's fields
    that are set, whatever a call gave as ``extra``, and the traceback if any."""

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        for name in TASK_FIELDS:
            if log_data.get(name) is None:
                log_data.pop(name, None)


class _Text(logging.Formatter):
    """``TEXT_FORMAT``, a line without a traceback or a stack made in one step:
    the same text as ``logging.Formatter(TEXT_FORMAT)`` gives."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text or record.stack_info:
            return super().format(record)
        record.message = record.getMessage()
        return "%s %s: %s" % (record.levelname, record.name, record.message)  # noqa: UP031


class _Lines(logging.StreamHandler):  # type: ignore[type-arg]
    """``StreamHandler`` writing and flushing each line under the one hold of its
    lock that ``handle`` takes (its ``flush`` takes the lock a second time)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
            stream = self.stream
            stream.write(line)
            stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def formatter(log_format: LogFormat) -> logging.Formatter:
    if log_format == "json":
        return _Json(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",  # ISO 8601, UTC
            json_ensure_ascii=False,
        )
    return _Text()


def configure(level: str, log_format: LogFormat) -> None:
    """One handler on stderr for the whole process (uvicorn's loggers included)."""
    handler = _Lines(sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(TaskFields())
    handler.addFilter(RedactUrls())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # What no line of ours shows is not gathered for every record (the logging
    # HOWTO's "Optimization"): the caller's file and line, the thread, the process.
    # A server logs three lines per task (issue 17, target 3).
    # ``_srcfile`` is private, but setting it to None is the HOWTO's documented
    # way to skip the caller's frame walk, and the only one that reaches every
    # logger: a Logger subclass with a cheap findCaller (``setLoggerClass``) is as
    # fast (13.2 against 12.7 µs a line, 7 alternating rounds of 20,000 lines)
    # but only reaches loggers made after it, not the root nor those made at
    # import (ours, uvicorn's, httpx's), whose lines would still walk the stack.
    # Were it gone from a later Python, this line would set a name nothing reads.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's own handlers (when it set them up) would print a second,
        # unformatted copy: its lines go through ours
        uv = logging.getLogger(name)
        for old in list(uv.handlers):
            uv.removeHandler(old)
        uv.propagate = True
    if level.lower() != "debug":
        logging.getLogger("alembic").setLevel(logging.WARNING)
    # the audit trail is a record, not chatter: a quieter --log-level keeps it
    logging.getLogger("falsework.audit").setLevel(logging.INFO)


def parse_format(value: str) -> LogFormat:
    lowered = value.strip().lower()
    for known in LOG_FORMATS:
        if lowered == known:
            return known
    raise ValueError(f"Unknown log format {value!r}: use text or json")
