"""The process's log lines (falsework.logs.configure): made with less work per line
than logging's generic path, with the same text, the task's fields on each record
and every line flushed as it is written."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from falsework import logs
from support.logconfig import kept_logging


class _Stream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushed: list[str] = []

    def flush(self) -> None:
        self.flushed.append(self.getvalue())


def _record(msg: Any, args: Any = None, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("falsework.x", logging.WARNING, "f.py", 3, msg, args, None)
    record.__dict__.update(extra)
    return record


def _failing() -> Any:
    try:
        raise ValueError("boom")
    except ValueError:
        return sys.exc_info()


RECORDS = [
    lambda: _record("plain"),
    lambda: _record("task %s started: %s%s", ("t1", "who", "")),
    lambda: _record("%(a)s and %(b)d", {"a": "x", "b": 2}),
    lambda: _record(ValueError("not a string")),
    lambda: _record("100% done"),
    lambda: _record("line one\nline two"),
    lambda: _record("with trace", exc_info=_failing()),
    lambda: _record("with text", exc_text="Traceback: earlier"),
    lambda: _record("with stack", stack_info="Stack (most recent call last): here"),
]


@pytest.mark.parametrize("make", RECORDS)
def test_a_text_line_is_the_standard_formatters(make: Any) -> None:
    expected = logging.Formatter(logs.TEXT_FORMAT).format(make())
    record = make()
    assert logs.formatter("text").format(record) == expected
    assert record.message == make().getMessage()


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    with kept_logging() as root:
        yield root


def test_each_line_is_written_and_flushed_with_the_task_fields(
    root: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = _Stream()
    monkeypatch.setattr(sys, "stderr", stream)
    logs.configure("info", "text")
    assert len(root.handlers) == 1  # ours alone
    records: list[logging.LogRecord] = []
    catch = logging.Handler()
    catch.emit = records.append  # type: ignore[method-assign]
    root.addHandler(catch)
    log = logging.getLogger("falsework.test.lines")
    log.info("outside %s", "a task")
    logs.bind_task("t-1", attempt=2, template="template:default/x", user="u", worker_id="w")
    try:
        log.warning("inside, see https://u:secret@h.example/p?token=abc")
        log.info("named", extra={"task_id": "t-other"})
    finally:
        logs._fields.set(None)
    assert stream.getvalue() == (
        "INFO falsework.test.lines: outside a task\n"
        "WARNING falsework.test.lines: inside, see https://***@h.example/p?token=***\n"
        "INFO falsework.test.lines: named\n"
    )
    # one flush per line, after its write
    assert stream.flushed == [
        stream.getvalue()[: i + 1] for i, c in enumerate(stream.getvalue()) if c == "\n"
    ]
    fields = [{name: getattr(r, name) for name in logs.TASK_FIELDS} for r in records]
    assert fields[0] == dict.fromkeys(logs.TASK_FIELDS)
    bound = {
        "task_id": "t-1",
        "step_id": None,
        "attempt": 2,
        "worker_id": "w",
        "template": "template:default/x",
        "user": "u",
    }
    assert fields[1] == bound
    assert fields[2] == {**bound, "task_id": "t-other"}


def test_a_line_that_cannot_be_written_is_reported_not_raised(
    root: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("disk full")

    reported: list[logging.LogRecord] = []
    monkeypatch.setattr(sys, "stderr", Broken())
    logs.configure("info", "text")
    (handler,) = root.handlers
    monkeypatch.setattr(handler, "handleError", reported.append)
    logging.getLogger("falsework.test.lines").info("lost")
    assert [r.getMessage() for r in reported] == ["lost"]
