"""Record what the real Backstage scaffolder answers to each case's dry-run.

    ORACLE_DIR=/tmp/compat-oracle PORT=7150 ../shared/tools/backstage-oracle/start.sh
    .venv/bin/python tests/support/compat/record.py --url http://127.0.0.1:7150 [CASE...]

The oracle must run with tests/support/compat/oracle-config.yaml's
`scaffolder.defaultEnvironment` merged into its app-config.yaml. Writes
tests/support/compat/oracle/<case>.json: the status and JSON body as they came.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from support.compat.oracle_cases import (
    CASES,
    HERE,
    RECORD_COMMAND,
    RECORDED,
    Case,
    construct_template,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="the oracle's base URL")
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    args = parser.parse_args()
    for name in args.cases or sorted(p.stem for p in CASES.glob("*.yaml")):
        status, body = _post(args.url, Case.load(name))
        body.pop("steps", None)  # the request's own steps, echoed back
        record = {
            "recordedWith": RECORD_COMMAND,
            "backstage": "@backstage/plugin-scaffolder-backend 4.3.0",
            "status": status,
            "body": body,
        }
        RECORDED.mkdir(exist_ok=True)
        target = RECORDED / f"{name}.json"
        target.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
        print(f"{name}: {status}")
    record_constructs(args.url)


def record_constructs(url: str) -> None:
    """Each construct of constructs.yaml rendered alone, as a one-file skeleton."""
    doc = yaml.safe_load((HERE / "constructs.yaml").read_text())
    answers: dict[str, dict[str, str]] = {}
    for item in doc["constructs"]:
        case = Case(
            name="construct",
            template=construct_template(doc["values"]),
            values={},
            files={"skeleton/c.txt": item["source"]},
        )
        status, body = _post(url, case)
        if status == 200:
            content = body["directoryContents"][0]["base64Content"]
            answers[item["source"]] = {"text": base64.b64decode(content).decode()}
        else:
            answers[item["source"]] = {"error": body["error"]["name"]}
    record = {"recordedWith": RECORD_COMMAND, "answers": answers}
    target = RECORDED / "constructs.json"
    target.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    print(f"constructs: {len(answers)}")


def _post(url: str, case: Case) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{url}/api/scaffolder/v2/dry-run",
        json.dumps(case.request()).encode(),
        {"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


if __name__ == "__main__":
    main()
