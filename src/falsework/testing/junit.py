"""A suite's outcomes as JUnit XML, the report format CI systems read (Jenkins,
GitLab, GitHub Actions' test reporters): one ``testsuite`` per template, one
``testcase`` per case; a failed case carries a ``failure`` with its problems
and diffs, a case that could not run an ``error``.

Written with the standard library's ElementTree: the format is a handful of
elements, and a library for it would add a dependency for nothing else.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from falsework.testing.suite import Outcome

# XML 1.0 cannot hold most control characters, even escaped.
_ILLEGAL = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF])


def _clean(text: str) -> str:
    return text.translate(_ILLEGAL)


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def report(outcomes: Sequence[Outcome], name: str = "falsework templates test") -> bytes:
    suites: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        suites.setdefault(outcome.template or "(unreadable)", []).append(outcome)
    root = ET.Element(
        "testsuites",
        {
            "name": name,
            "tests": str(len(outcomes)),
            "failures": str(sum(o.verdict == "failed" for o in outcomes)),
            "errors": str(sum(o.verdict == "broken" for o in outcomes)),
            "time": _seconds(sum(o.seconds for o in outcomes)),
        },
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    host = socket.gethostname()
    for suite_name, members in suites.items():
        suite = ET.SubElement(
            root,
            "testsuite",
            {
                "name": _clean(suite_name),
                "tests": str(len(members)),
                "failures": str(sum(o.verdict == "failed" for o in members)),
                "errors": str(sum(o.verdict == "broken" for o in members)),
                "skipped": "0",
                "time": _seconds(sum(o.seconds for o in members)),
                "timestamp": stamp,
                "hostname": host,
            },
        )
        for outcome in members:
            template, _, case = outcome.id.partition("/")
            attrs = {
                "name": _clean(case or outcome.id),
                "classname": _clean(template),
                "time": _seconds(outcome.seconds),
            }
            testcase = ET.SubElement(suite, "testcase", attrs)
            if outcome.verdict != "passed":
                tag = "error" if outcome.verdict == "broken" else "failure"
                first = outcome.problems[0] if outcome.problems else None
                element = ET.SubElement(
                    testcase,
                    tag,
                    {
                        "message": _clean(first.message if first else outcome.verdict),
                        "type": _clean(first.kind if first else outcome.verdict),
                    },
                )
                element.text = _clean(
                    "\n".join(
                        f"{p.kind}: {p.message}" + (f"\n{p.diff}" if p.diff else "")
                        for p in outcome.problems
                    )
                )
            if outcome.notes:
                ET.SubElement(testcase, "system-out").text = _clean("\n".join(outcome.notes))
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def write_report(path: Path, outcomes: Sequence[Outcome]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(report(outcomes))
