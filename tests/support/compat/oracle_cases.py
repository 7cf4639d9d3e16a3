"""Compatibility cases: one request, sent to the real Backstage scaffolder once
(recorded by ``record.py`` into ``oracle/``) and to Falsework in every test run.

A case (``cases/<name>.yaml``) is a dry-run request: ``template`` (the body),
``values``, optional ``secrets`` and ``files`` (the template folder, path → text).
What the oracle answered is kept as it came (status and JSON body) with the
command that recorded it, so the tests need no Node.js. Both answers go through
:func:`normalise` — only what differs by nature (the temporary workspace path,
a Node.js stack trace's frames, base64) — and must then be equal, but for the
differences named in :data:`KNOWN_DIFFERENCES`, each with its reason.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
CASES = HERE / "cases"
RECORDED = HERE / "oracle"
RECORD_COMMAND = (
    "PORT=7150 ../shared/tools/backstage-oracle/start.sh (scaffolder.defaultEnvironment "
    "from tests/support/compat/oracle-config.yaml), then "
    ".venv/bin/python tests/support/compat/record.py --url http://127.0.0.1:7150"
)

# Where each side writes a dry-run's workspace: Backstage's working directory
# holds `dry-run-<uuid>`, Falsework's a temporary folder.
_WORKSPACE = re.compile(r"/tmp/(?:dry-run-[0-9a-f-]{36}|falsework-dry-run-[^/\s\"]+/workspace)")

KNOWN_DIFFERENCES: dict[str, str] = {
    "Starting up task with": (
        "Backstage counts the hidden step that collects a dry-run's files "
        "(dry-run:extract) in 'Starting up task with N steps'; Falsework counts the "
        "template's steps"
    ),
}


@dataclass
class Case:
    name: str
    template: dict[str, Any]
    values: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    real_run: bool = True  # a real run shows what the dry run showed
    differs: str | None = None  # why Falsework answers otherwise (a test of its own)

    @classmethod
    def load(cls, name: str) -> Case:
        doc = yaml.safe_load((CASES / f"{name}.yaml").read_text())
        return cls(
            name=name,
            template=doc["template"],
            values=doc.get("values") or {},
            secrets=doc.get("secrets") or {},
            files=doc.get("files") or {},
            real_run=doc.get("realRun", True),
            differs=doc.get("differs"),
        )

    def directory_contents(self) -> list[dict[str, Any]]:
        return [
            {"path": path, "base64Content": base64.b64encode(text.encode()).decode()}
            for path, text in self.files.items()
        ]

    def request(self) -> dict[str, Any]:
        """The body of ``POST /api/scaffolder/v2/dry-run``."""
        return {
            "template": self.template,
            "values": self.values,
            "secrets": self.secrets,
            "directoryContents": self.directory_contents(),
        }

    def recorded(self) -> tuple[int, dict[str, Any]]:
        data = json.loads((RECORDED / f"{self.name}.json").read_text())
        return int(data["status"]), data["body"]


def construct_template(values: dict[str, Any]) -> dict[str, Any]:
    """The template that renders one construct (constructs.yaml) as a skeleton file."""
    return {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {"name": "construct"},
        "spec": {
            "type": "service",
            "steps": [
                {
                    "id": "fetch",
                    "action": "fetch:template",
                    "input": {"url": "./skeleton", "values": values},
                }
            ],
        },
    }


def oracle_environment() -> dict[str, dict[str, str]]:
    """The oracle's ``scaffolder.defaultEnvironment`` (``oracle-config.yaml``)."""
    doc = yaml.safe_load((HERE / "oracle-config.yaml").read_text())
    section: dict[str, dict[str, str]] = doc["scaffolder"]["defaultEnvironment"]
    return section


def case_names() -> list[str]:
    """The cases Falsework must answer as Backstage did (not those it ``differs`` on)."""
    return sorted(p.stem for p in CASES.glob("*.yaml") if Case.load(p.stem).differs is None)


def real_run_names() -> list[str]:
    """The cases a real run must answer as the dry run did: those that succeed
    and say nothing against it (``realRun: false``)."""
    return [n for n in case_names() if Case.load(n).real_run and Case.load(n).recorded()[0] == 200]


def _message(text: str) -> str:
    text = _WORKSPACE.sub("<workspace>", text)
    # Falsework's API shows its server's workspace folder as "." (runner.isolation)
    text = re.sub(r"(?<=: Template result written to )\.(?=/|$)", "<workspace>", text)
    # A failed step's log line is Node's err.stack: keep the message, not the frames.
    return re.sub(r"\n    at .*", "", text)


def normalise(status: int, body: dict[str, Any]) -> dict[str, Any]:
    """The parts of a dry-run answer a template or a client can see, comparable."""
    out: dict[str, Any] = {"status": status}
    if "error" in body and status != 200:
        out["error"] = {"name": body["error"].get("name")}
        return out
    out["log"] = [
        {**entry["body"], "message": _message(str(entry["body"].get("message", "")))}
        for entry in body.get("log", [])
    ]
    out["files"] = {
        f["path"]: base64.b64decode(f["base64Content"]).decode("utf-8", "replace")
        for f in body.get("directoryContents", [])
    }
    out["output"] = body.get("output")
    return out


def without_known_differences(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in log if not any(e["message"].startswith(k) for k in KNOWN_DIFFERENCES)]
