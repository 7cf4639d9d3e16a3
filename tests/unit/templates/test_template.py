"""The Template model: loading, TaskSpec, parameter schema, gallery summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from falsework.errors import TemplateError
from falsework.templates import Template, load_templates
from support.templates import WriteTemplate, template_doc

# Backstage's /parameter-schema answer for this very template (captured from a
# real Backstage backend, see the reference captures).
FETCH_TEMPLATE_YAML = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: fetch-template
  title: fetch:template over a local skeleton (oracle)
  description: fetch:template of ./skeleton, then debug:log listing the workspace with contents.
spec:
  owner: user:guest
  type: service
  parameters:
    - title: Input
      required: [name]
      properties:
        name:
          type: string
          title: Name
        description:
          type: string
          title: Description
          default: An example component
  steps:
    - id: fetch
      name: Fetch skeleton
      action: fetch:template
      input:
        url: ./skeleton
        values:
          name: ${{ parameters.name }}
          description: ${{ parameters.description }}
  output:
    text:
      - title: Name
        content: ${{ parameters.name }}
"""

BACKSTAGE_PARAMETER_SCHEMA = {
    "title": "fetch:template over a local skeleton (oracle)",
    "description": (
        "fetch:template of ./skeleton, then debug:log listing the workspace with contents."
    ),
    "steps": [
        {
            "title": "Input",
            "schema": {
                "title": "Input",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "title": "Name"},
                    "description": {
                        "type": "string",
                        "title": "Description",
                        "default": "An example component",
                    },
                },
            },
        }
    ],
}


def test_load_reads_metadata_and_spec(write_template: WriteTemplate) -> None:
    doc = template_doc("demo")
    doc["metadata"]["tags"] = ["python", "recommended"]
    doc["spec"]["secrets"] = {"schema": {"properties": {"TOKEN": {"type": "string"}}}}
    doc["spec"]["x-custom"] = {"kept": True}
    path = write_template("demo", doc)
    (template,) = load_templates(path)
    assert template.ref == "template:default/demo"
    assert (template.name, template.namespace) == ("demo", "default")
    assert template.title == "The demo template"
    assert template.description == "A demo."
    assert template.tags == ["python", "recommended"]
    assert (template.owner, template.type) == ("user:guest", "service")
    assert template.path == path.resolve()
    assert template.directory == path.parent.resolve()
    assert [s["id"] for s in template.steps] == ["log"]
    assert template.output == {"text": [{"title": "Name", "content": "${{ parameters.name }}"}]}
    assert template.secrets_schema == {"properties": {"TOKEN": {"type": "string"}}}
    assert template.raw["spec"]["x-custom"] == {"kept": True}
    assert len(template.parameters) == 1


def test_namespace_title_and_single_schema_parameters(write_template: WriteTemplate) -> None:
    doc = template_doc(
        "solo", parameters={"required": ["a"], "properties": {"a": {"type": "string"}}}
    )
    doc["metadata"] = {"name": "solo", "namespace": "team"}
    (template,) = load_templates(write_template("solo", doc))
    assert template.ref == "template:team/solo"
    assert template.title == "solo"  # no title: the name
    assert template.description == ""
    assert template.parameters == [{"required": ["a"], "properties": {"a": {"type": "string"}}}]


def test_not_a_template_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"metadata\.name is missing"):
        Template.from_document({"kind": "Template", "metadata": {}}, tmp_path / "t.yaml")
    with pytest.raises(TemplateError, match="not a Template"):
        Template.from_document({"kind": "Component"}, tmp_path / "t.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: Template\nmetadata: [unclosed\n")
    with pytest.raises(TemplateError, match="not valid YAML"):
        load_templates(broken)


def test_a_file_may_hold_several_documents(write_template: WriteTemplate) -> None:
    import yaml

    text = yaml.safe_dump_all(
        [template_doc("one"), {"kind": "Component", "metadata": {"name": "c"}}, template_doc("two")]
    )
    templates = load_templates(write_template("multi", text))
    assert [t.name for t in templates] == ["one", "two"]


def test_parameter_schema_matches_backstage(write_template: WriteTemplate) -> None:
    (template,) = load_templates(write_template("fetch-template", FETCH_TEMPLATE_YAML))
    assert template.parameter_schema() == BACKSTAGE_PARAMETER_SCHEMA


def test_parameter_schema_pages_keep_ui_keys_and_descriptions(
    write_template: WriteTemplate,
) -> None:
    pages = [
        {
            "title": "One",
            "description": "First",
            "properties": {"a": {"type": "string", "ui:field": "X"}},
        },
        {"properties": {"b": {"type": "string"}}},
    ]
    (template,) = load_templates(write_template("paged", template_doc("paged", parameters=pages)))
    schema = template.parameter_schema()
    assert schema["steps"][0] == {"title": "One", "description": "First", "schema": pages[0]}
    assert schema["steps"][1] == {
        "title": "Please enter the following information",
        "schema": pages[1],
    }


def test_task_spec_has_backstage_shape(write_template: WriteTemplate) -> None:
    doc = template_doc("demo", EXPERIMENTAL_recovery={"EXPERIMENTAL_strategy": "startOver"})
    path = write_template("demo", doc)
    (template,) = load_templates(path)
    values = {"name": "svc"}
    user = {"ref": "user:default/ann", "entity": {"metadata": {"name": "ann"}}}
    spec = template.task_spec(values, user)
    assert spec == {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "steps": doc["spec"]["steps"],
        "output": doc["spec"]["output"],
        "parameters": {"name": "svc"},
        "user": user,
        "templateInfo": {
            "entityRef": "template:default/demo",
            "baseUrl": path.resolve().as_uri(),
            "entity": {
                "metadata": {
                    "namespace": "default",
                    "name": "demo",
                    "title": "The demo template",
                    "description": "A demo.",
                }
            },
        },
        "EXPERIMENTAL_recovery": {"EXPERIMENTAL_strategy": "startOver"},
    }
    assert spec["templateInfo"]["baseUrl"].startswith("file:///")
    # a copy: changing the spec does not change the template
    spec["steps"][0]["input"]["message"] = "changed"
    values["name"] = "other"
    assert template.steps[0]["input"]["message"] == "Hello ${{ parameters.name }}"
    assert spec["parameters"] == {"name": "svc"}
    assert template.task_spec({}, None)["user"] == {}
    assert "EXPERIMENTAL_recovery" not in load_templates(write_template("plain"))[0].task_spec(
        {}, {}
    )
    # shared (the API's create, which serializes it at once): the same spec, made
    # of the template's own parts rather than copies of them
    shared = template.task_spec({"name": "svc"}, user, shared=True)
    assert shared == template.task_spec({"name": "svc"}, user)
    assert shared["steps"] is template.steps and shared["output"] is template.output
    assert shared["user"] is user


def test_summary(write_template: WriteTemplate) -> None:
    doc = template_doc("demo")
    doc["metadata"]["tags"] = ["a"]
    (template,) = load_templates(write_template("demo", doc))
    assert template.summary() == {
        "ref": "template:default/demo",
        "name": "demo",
        "namespace": "default",
        "title": "The demo template",
        "description": "A demo.",
        "tags": ["a"],
        "owner": "user:guest",
        "type": "service",
    }


def test_recovery_is_decided_by_the_template(write_template: WriteTemplate) -> None:
    # stored with each task at create time (the engine never reads the spec for it)
    def recovery(strategy: object) -> str:
        doc = template_doc("r", EXPERIMENTAL_recovery={"EXPERIMENTAL_strategy": strategy})
        (template,) = load_templates(write_template(f"r-{strategy}", doc))
        return template.recovery

    assert recovery("startOver") == "startOver"
    assert recovery("none") == "none"
    assert recovery("later") == "resume"
    assert load_templates(write_template("plain-r"))[0].recovery == "resume"


def test_yaml_is_read_as_backstage_reads_it(write_template: WriteTemplate) -> None:
    """YAML 1.2's core schema, as Backstage's parser: `yes`, `no`, `on`, dates, `1_000`
    are text (PyYAML's YAML 1.1 would make them booleans, dates and numbers, and a
    string parameter with `enum: [yes, no]` or a date default would refuse its own
    values); `010` is ten."""
    text = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: yaml12}
spec:
  type: service
  parameters:
    - properties:
        answer: {type: string, enum: [yes, no, on, off], default: no}
        since: {type: string, default: 2024-01-01}
        size: {type: string, default: 1_000}
        count: {type: integer, default: 010}
        flag: {type: boolean, default: true}
  steps:
    - {id: log, action: debug:log, input: {message: hi}}
"""
    (template,) = load_templates(write_template("yaml12", text))
    properties = template.raw["spec"]["parameters"][0]["properties"]
    assert properties["answer"] == {
        "type": "string",
        "enum": ["yes", "no", "on", "off"],
        "default": "no",
    }
    assert properties["since"]["default"] == "2024-01-01"
    assert properties["size"]["default"] == "1_000"
    assert properties["count"]["default"] == 10
    assert properties["flag"]["default"] is True
