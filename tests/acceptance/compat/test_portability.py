"""`falsework templates validate --portable` warns about exactly the constructs that
the real Backstage fails on or renders otherwise (oracle/constructs.json), and
about none of those it renders the same; and through the CLI, for a template's
expressions and its skeleton files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from falsework.errors import FalseworkError
from falsework.templating import Renderer
from support.compat.oracle_cases import HERE, RECORDED
from support.paths import REPO

DOC = yaml.safe_load((HERE / "constructs.yaml").read_text())
ANSWERS: dict[str, dict[str, str]] = json.loads((RECORDED / "constructs.json").read_text())[
    "answers"
]
CONSTRUCTS = [pytest.param(c["source"], c["portable"], id=c["source"]) for c in DOC["constructs"]]


def _falsework(source: str) -> dict[str, str]:
    try:
        return {"text": Renderer().render_string(source, {"values": DOC["values"]})}
    except FalseworkError as exc:
        return {"error": exc.name}


@pytest.mark.parametrize(("source", "portable"), CONSTRUCTS)
def test_a_warning_exactly_where_backstage_differs(source: str, portable: bool) -> None:
    backstage, here = ANSWERS[source], _falsework(source)
    warnings = Renderer().portability(source)
    if portable:
        assert here == backstage
        assert warnings == []
    else:
        assert "error" not in here, here  # it works here...
        assert here != backstage  # ...and not the same there
        assert len(warnings) == 1, warnings


TEMPLATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: svc}
spec:
  type: service
  parameters:
    - properties:
        count: {type: integer}
  steps:
    - id: fetch
      action: fetch:template
      input:
        url: ./skeleton
        values:
          count: ${{ parameters.count | upper }}
        copyWithoutRender: ['x/*']
"""


def test_the_cli_warns_about_expressions_and_skeleton_files(tmp_path: Path) -> None:
    folder = tmp_path / "svc"
    (folder / "skeleton").mkdir(parents=True)
    (folder / "skeleton" / "README.md").write_text(
        "# ${{ values.name }}\n{% if True %}x{% endif %}\n"
    )
    (folder / "template.yaml").write_text(TEMPLATE)
    falsework = str(REPO / ".venv" / "bin" / "falsework")

    def validate(*args: str) -> Any:
        return subprocess.run(
            [falsework, "templates", "validate", *args, str(folder)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    plain = validate()
    assert plain.returncode == 0 and "portability" not in plain.stdout
    warned = validate("--portable")
    assert warned.returncode == 0, warned.stdout  # warnings alone do not fail
    lines = [line for line in warned.stdout.splitlines() if "portability:" in line]
    assert lines == [
        f"{folder}/template.yaml:13: spec.steps[0].input.url: portability: README.md: "
        "line 2: True is undefined on Backstage (Nunjucks spells it true)",
        f"{folder}/template.yaml:16: spec.steps[0].input.copyWithoutRender: portability: "
        "Backstage 2.0 and later ignore copyWithoutRender and render these files; "
        "copyWithoutTemplating is the spelling both honour",
        f"{folder}/template.yaml:15: spec.steps[0].input.values.count: portability: 'upper' "
        "of a number fails on Backstage (its input must be a string): write | string | upper",
    ]
    as_json = json.loads(validate("--portable", "--json").stdout)
    assert [p["kind"] for p in as_json] == ["portability"] * 3
