"""`templates validate` on the mistakes an author makes by hand: misspelt keys and
action inputs (with the key probably meant), keys given twice, and YAML syntax errors
told at the line of the mistake, in words rather than the parser's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from falsework.actions import ActionRegistry
from falsework.config import EXAMPLES_DIR
from falsework.templates import validate_template_file
from falsework.templates.catalog import candidate_files
from falsework.templates.keys import input_keys_of
from support.templates import WriteTemplate

ACTIONS = ActionRegistry.default().list()
KNOWN = {a.id for a in ACTIONS}
INPUTS = input_keys_of({a.id: a.input_schema for a in ACTIONS})
FALSEWORK = str(Path(sys.executable).with_name("falsework"))

MISSPELT = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: typos
  descripton: A template with typos.
spec:
  type: service
  owner: group:default/team
  paramaters:
    - title: One
      properties:
        name: {type: string}
  steps:
    - id: fetch
      action: fetch:template
      input:
        url: ./skeleton
        valuez:
          name: x
        x-ours: kept
    - id: log
      action: debug:log
      parameters:
        message: hi
  x-team: platform
"""


def check(path: Path, **kwargs: bool) -> list[str]:
    return [
        f"{p.line}: {p.path}: {p.message}"
        for p in validate_template_file(path, KNOWN, action_inputs=INPUTS, **kwargs)
    ]


def test_misspelt_keys_and_inputs_are_problems_with_the_key_meant(
    write_template: WriteTemplate,
) -> None:
    path = write_template("typos", MISSPELT, files={"skeleton/a.txt": "a\n"})
    assert check(path) == [
        "5: metadata.descripton: unknown key 'descripton' (did you mean description?)",
        "9: spec.paramaters: unknown key 'paramaters' (did you mean parameters?)",
        "18: spec.steps[0].input.valuez: unknown input 'valuez' of fetch:template "
        "(did you mean values?)",
        "23: spec.steps[1].parameters: unknown key 'parameters' "
        "(an action's inputs go under input:)",
    ]


def test_unknown_keys_may_be_allowed(write_template: WriteTemplate) -> None:
    path = write_template("typos", MISSPELT, files={"skeleton/a.txt": "a\n"})
    assert check(path, allow_unknown_keys=True) == []
    doc = yaml.safe_load(MISSPELT)
    doc["metadata"]["annotations"] = {"falsework.dev/allow-unknown-keys": "true"}
    annotated = write_template("annotated", doc, files={"skeleton/a.txt": "a\n"})
    assert check(annotated) == []


def test_an_action_whose_schema_takes_any_input_is_not_checked(
    write_template: WriteTemplate,
) -> None:
    doc = yaml.safe_load(MISSPELT)
    del doc["spec"]["paramaters"], doc["metadata"]["descripton"]
    doc["spec"]["steps"] = [{"id": "c", "action": "custom:open", "input": {"anything": 1}}]
    path = write_template("open", doc)
    found = validate_template_file(
        path, {*KNOWN, "custom:open"}, action_inputs={**INPUTS, "custom:open": None}
    )
    assert found == []


def test_shipped_examples_have_no_unknown_keys() -> None:
    for path in candidate_files(EXAMPLES_DIR):
        assert check(path) == [], path


def test_a_key_given_twice(write_template: WriteTemplate) -> None:
    text = MISSPELT.replace("  owner: group:default/team\n", "  owner: a\n  type: library\n")
    path = write_template("twice", text, files={"skeleton/a.txt": "a\n"})
    assert "9: : the key 'type' is given twice (also line 7); the last one would win" in check(
        path, allow_unknown_keys=True
    )


GOOD = "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata:\n  name: y\n"


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        # a key indented one space too far
        ("spec:\n  type: a\n   owner: b\n", 7, "indented further than the key above it"),
        # one space too little
        ("spec:\n  type: a\n owner: b\n", 7, "indentation does not match"),
        ("spec:\n  type: a\n  owner\n  steps: []\n", 7, "without 'key: value'"),
        ("spec:\n\ttype: a\n", 6, "a tab character"),
        ("spec:\n  type: 'service\n  steps: []\n", 6, "quote opened on this line is never closed"),
        ("spec:\n  type: [a, b\n  steps: []\n", 6, "'[' opened on this line is not closed"),
        ("spec:\n  type: {a: 1\n  steps: []\n", 6, "'{' opened on this line is not closed"),
        ("spec:\n  type: {{ parameters.kind }}\n", 6, "quote it"),
        ("spec:\n  type: @service\n", 6, "cannot start with '@'"),
        ("spec:\n  type: *service\n", 6, "anchor '&service' defined nowhere"),
        ('spec:\n  type: "a\\qb"\n', 6, "is not an escape"),
        (
            "spec:\n  steps:\n    - id: a\n      action: x\n     - id: b\n",
            9,
            "indentation does not match",
        ),
    ],
)
def test_yaml_mistakes_are_told_at_their_line_in_words(
    write_template: WriteTemplate, body: str, line: int, words: str
) -> None:
    path = write_template("y", GOOD + body)
    (problem,) = validate_template_file(path, KNOWN)
    assert problem.line == line, problem
    assert words in problem.message, problem.message
    for internal in ("<block", "while parsing", "while scanning", "found character", "<scalar>"):
        assert internal not in problem.message


def test_the_cli_exits_1_and_allows_unknown_keys_when_asked(
    write_template: WriteTemplate,
) -> None:
    path = write_template("typos", MISSPELT, files={"skeleton/a.txt": "a\n"})
    plain = subprocess.run(
        [FALSEWORK, "templates", "validate", str(path)], capture_output=True, text=True, timeout=60
    )
    assert plain.returncode == 1
    assert f"{path}:9: spec.paramaters: unknown key 'paramaters' (did you mean parameters?)" in (
        plain.stdout
    )
    as_json = subprocess.run(
        [FALSEWORK, "templates", "validate", "--json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = {p["path"]: p for p in json.loads(as_json.stdout)}
    assert found["spec.steps[0].input.valuez"]["line"] == 18
    allowed = subprocess.run(
        [FALSEWORK, "templates", "validate", "--allow-unknown-keys", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert allowed.returncode == 0, allowed.stdout
