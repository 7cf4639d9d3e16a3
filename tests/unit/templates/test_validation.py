"""validate_template_file: every problem at once, with file, line and YAML path."""

from __future__ import annotations

from pathlib import Path

import pytest

from falsework.actions import ActionRegistry
from falsework.config import EXAMPLES_DIR
from falsework.templates import validate_template_file
from falsework.templates.catalog import candidate_files
from support.templates import WriteTemplate, template_doc

KNOWN = set(ActionRegistry.default().ids())

BROKEN = """\
apiVersion: scaffolder.backstage.io/v1beta2
kind: Template
metadata:
  name: -bad name-
  tags: [Python, ok]
spec:
  owner: user:guest
  parameters:
    - title: One
      properties:
        name:
          type: strin
    - 42
  steps:
    - id: fetch
      action: fetch:template
      input:
        url: ./skeleton
        values:
          name: ${{ parameters.name + }}
    - id: fetch
      action: debug:log
      if: ${{ parameters.x === }}
    - id: third
      action: fetch:tmplate
      each: ${{ parameters.list | nosuchfilter }}
    - id: fourth
      action: debug:log
      input:
        message: ${{ steps.later.output.x }} ${{ steps['fetch'].output.y }}
    - name: no action
    - id: later
      action: debug:log
      input:
        message: ${{ parameters.__class__ }}
  output:
    links:
      - title: nowhere
    text:
      - title: no content
"""


def messages(path: Path) -> list[str]:
    return [f"{p.path}: {p.message}" for p in validate_template_file(path, KNOWN)]


def test_every_problem_is_reported_at_once(write_template: WriteTemplate) -> None:
    path = write_template("broken", BROKEN)
    found = messages(path)
    expected_prefixes = [
        "apiVersion: expected 'scaffolder.backstage.io/v1beta3', "
        "got 'scaffolder.backstage.io/v1beta2'",
        "metadata.name: '-bad name-' is not a valid name",
        "metadata.tags[0]: 'Python' is not a valid tag",
        "spec.type: missing required field",
        "spec.parameters[0].properties.name.type: not valid JSON Schema",
        "spec.parameters[1]: a parameter page must be a JSON Schema object",
        "spec.steps[0].input.url: './skeleton': no such folder next to the template",
        "spec.steps[0].input.values.name: cannot parse template",
        "spec.steps[1].id: duplicate step id 'fetch' (also spec.steps[0])",
        "spec.steps[1].if: cannot parse template",
        "spec.steps[2].action: unknown action 'fetch:tmplate' (did you mean fetch:template?)",
        "spec.steps[2].each: cannot parse template",
        "spec.steps[3].input.message: refers to steps.later, which is not an earlier step's id",
        "spec.steps[4].action: missing required field",
        "spec.steps[5].input.message: template expressions may not access '__class__'",
        "spec.output.links[0]: a link needs a 'url' or an 'entityRef'",
        "spec.output.text[0].content: missing required field",
    ]
    for prefix in expected_prefixes:
        assert any(m.startswith(prefix) for m in found), f"{prefix!r} not in {found}"
    assert len(found) == len(expected_prefixes)
    # steps['fetch'] is an earlier step: no problem for it
    assert not any("steps.fetch" in m for m in found)


def test_problems_carry_file_and_line(write_template: WriteTemplate) -> None:
    path = write_template("broken", BROKEN)
    problems = {p.path: p for p in validate_template_file(path, KNOWN)}
    action = problems["spec.steps[2].action"]
    assert action.file == path
    assert action.line == 25
    assert str(action) == (
        f"{path}:25: spec.steps[2].action: "
        "unknown action 'fetch:tmplate' (did you mean fetch:template?)"
    )
    assert problems["spec.steps[1].id"].line == 21
    assert problems["spec.type"].line == 7  # missing: the line of its parent


def test_yaml_errors_have_a_line(write_template: WriteTemplate) -> None:
    path = write_template("bad", "kind: Template\nmetadata:\n  name: [x\n")
    (problem,) = validate_template_file(path, KNOWN)
    assert problem.path == ""
    # the line where the '[' is left open, in words (acceptance/templates/test_keys.py: more)
    assert problem.line == 3
    assert problem.message.startswith("a '[' opened on this line is not closed")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty"),
        ("- a list\n", "the document is not a mapping"),
        ("kind: Component\n", "apiVersion: missing required field"),
        (
            "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Component\nmetadata: {name: x}\n"
            "spec: {type: t, steps: []}\n",
            "kind: expected 'Template', got 'Component'",
        ),
        (
            "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {name: x}\n",
            "spec: missing required field",
        ),
        (
            "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {name: x}\n"
            "spec: {type: t}\n",
            "spec.steps: missing required field",
        ),
        (
            "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {title: x}\n"
            "spec: {type: t, steps: []}\n",
            "metadata.name: missing required field",
        ),
        (
            "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {name: x}\n"
            "spec: {type: t, steps: [], secrets: {schema: {type: nope}}}\n",
            "spec.secrets.schema.type: not valid JSON Schema",
        ),
        (
            "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {name: x}\n"
            "spec: {type: t, steps: [], EXPERIMENTAL_recovery: {EXPERIMENTAL_strategy: later}}\n",
            "spec.EXPERIMENTAL_recovery: EXPERIMENTAL_strategy must be one of none, startOver",
        ),
    ],
)
def test_structural_problems(write_template: WriteTemplate, text: str, expected: str) -> None:
    path = write_template("t", text)
    found = [str(p) for p in validate_template_file(path, KNOWN)]
    assert any(expected in m for m in found), found


def test_skeletons_are_checked(write_template: WriteTemplate) -> None:
    doc = template_doc(
        "skel",
        steps=[
            {
                "id": "fetch",
                "action": "fetch:template",
                "input": {
                    "url": "./skeleton",
                    "copyWithoutTemplating": [".github/workflows/*"],
                    "copyWithoutRender": ["raw/"],
                },
            },
            {"id": "plain", "action": "fetch:plain", "input": {"url": "./nowhere"}},
            {"id": "file", "action": "fetch:plain:file", "input": {"url": "./skeleton/ok.txt"}},
            {"id": "remote", "action": "fetch:plain", "input": {"url": "https://x/y.git"}},
            {"id": "dynamic", "action": "fetch:plain", "input": {"url": "${{ parameters.u }}"}},
        ],
    )
    path = write_template(
        "skel",
        doc,
        files={
            "skeleton/ok.txt": "Hello ${{ values.name }}\n{% if values.x %}x{% endif %}\n",
            "skeleton/bad.txt": "Hello ${{ values.name + }}\n",
            "skeleton/${{ values.name | nosuch }}.txt": "fine\n",
            "skeleton/.github/workflows/ci.yaml": "run: ${{ github.sha }} ${{ }}\n",
            "skeleton/raw/${{ broken": "${{ broken\n",
        },
    )
    (path.parent / "skeleton" / "image.bin").write_bytes(bytes(range(256)))
    found = messages(path)
    assert found == [
        "spec.steps[0].input.url: ${{ values.name | nosuch }}.txt: file name: cannot parse "
        "template '${{ values.name | nosuch }}.txt': No filter named 'nosuch'.",
        "spec.steps[0].input.url: bad.txt: cannot parse template 'Hello ${{ values.name + }}\\n'"
        " (line 1): unexpected 'end of print statement'",
        "spec.steps[1].input.url: './nowhere': no such folder next to the template",
    ]


def test_skeleton_globs_match_as_fetch_template_does(write_template: WriteTemplate) -> None:
    # globby's `*.txt` is top-level only: fetch:template renders sub/b.txt, so
    # validation checks it too (and skips the top-level a.txt, copied verbatim)
    doc = template_doc(
        "globs",
        steps=[
            {
                "id": "fetch",
                "action": "fetch:template",
                "input": {"url": "./skeleton", "copyWithoutTemplating": ["*.txt"]},
            }
        ],
    )
    path = write_template(
        "globs",
        doc,
        files={"skeleton/a.txt": "${{ a + }}\n", "skeleton/sub/b.txt": "${{ b + }}\n"},
    )
    found = messages(path)
    assert len(found) == 1 and found[0].startswith("spec.steps[0].input.url: sub/b.txt: ")


def test_secrets_outside_input_and_each(write_template: WriteTemplate) -> None:
    doc = template_doc(
        "s",
        steps=[
            {
                "id": "a",
                "action": "debug:log",
                "if": "${{ secrets.TOKEN }}",
                "each": "${{ secrets.LIST }}",
                "input": {"message": "${{ secrets.TOKEN | length }} secrets in text are fine"},
            }
        ],
        output={"text": [{"title": "t", "content": "${{ secrets.TOKEN }}"}]},
    )
    assert messages(write_template("s", doc)) == [
        "spec.steps[0].if: secrets are only available in a step's input and each",
        "spec.output.text[0].content: secrets are only available in a step's input and each",
    ]


def test_a_valid_template_has_no_problems(write_template: WriteTemplate) -> None:
    doc = template_doc("ok")
    doc["spec"]["x-unknown-key"] = "kept, not a problem"
    doc["spec"]["steps"].append(
        {
            "id": "each",
            "action": "debug:log",
            "if": "${{ steps.log.output.x === 1 and always() }}",
            "each": "${{ parameters.items }}",
            "input": {"message": "${{ each.value }} {% if each.key %}x{% endif %}"},
        }
    )
    assert validate_template_file(write_template("ok", doc), KNOWN) == []


def test_actions_are_not_checked_without_a_registry(write_template: WriteTemplate) -> None:
    doc = template_doc("ok", steps=[{"id": "a", "action": "custom:thing"}])
    path = write_template("ok", doc)
    assert validate_template_file(path, None) == []
    assert [p.message for p in validate_template_file(path, KNOWN)] == [
        "unknown action 'custom:thing'"
    ]


def test_other_documents_in_a_file_are_ignored(write_template: WriteTemplate) -> None:
    import yaml

    text = yaml.safe_dump_all([{"kind": "Component", "metadata": {"name": "c"}}, template_doc("t")])
    assert validate_template_file(write_template("multi", text), KNOWN) == []


def test_shipped_examples_validate_clean() -> None:
    files = list(candidate_files(EXAMPLES_DIR))
    names = {f.parent.name for f in files}
    assert {"hello-world", "python-service", "wait", "fail"} <= names
    for path in files:
        assert validate_template_file(path, KNOWN) == [], path
