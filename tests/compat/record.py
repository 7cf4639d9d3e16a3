"""Record what the real Backstage scaffolder answers to each case's dry-run.

    ORACLE_DIR=/tmp/compat-oracle PORT=7150 ../shared/tools/backstage-oracle/start.sh
    .venv/bin/python tests/compat/record.py --url http://127.0.0.1:7150 [CASE...]

The oracle must run with tests/compat/oracle-config.yaml's
`scaffolder.defaultEnvironment` merged into its app-config.yaml. Writes
tests/compat/oracle/<case>.json: the status and JSON body as they came.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compat.oracle_cases import RECORD_COMMAND, RECORDED, Case, case_names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="the oracle's base URL")
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    args = parser.parse_args()
    for name in args.cases or case_names():
        case = Case.load(name)
        request = urllib.request.Request(
            f"{args.url}/api/scaffolder/v2/dry-run",
            json.dumps(case.request()).encode(),
            {"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                status, body = response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            status, body = exc.code, json.loads(exc.read())
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


if __name__ == "__main__":
    main()
