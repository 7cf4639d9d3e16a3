"""Every kind of form field, the validator's agreement with the server, and server-side
errors placed next to their fields."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Page, expect

from falsework.templates.values import validator_for

from .conftest import Server, assert_labelled, shot

pytestmark = pytest.mark.browser


def test_every_field_kind(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/create/templates/default/form-showcase")
    expect(page.get_by_role("heading", name="Basics")).to_be_visible()

    # ui:order: title, email, then the rest, notes last
    labels = page.locator(".fields > .field").evaluate_all(
        "els => els.map(e => e.querySelector('label, legend')?.textContent)"
    )
    assert labels[:2] == ["Title", "Email"] and labels[-1] == "Notes"
    # hidden fields are not shown; const and ui:readonly ones are read-only
    expect(page.get_by_label("Internal id")).to_have_count(0)
    expect(page.get_by_label("API version")).to_have_value("v1")
    expect(page.get_by_label("API version")).to_have_attribute("readonly", "")
    expect(page.get_by_label("Region")).to_have_attribute("readonly", "")
    expect(page.get_by_label("Title")).to_have_attribute("placeholder", "Starts with a capital")
    expect(page.get_by_label("PIN")).to_have_attribute("type", "password")
    expect(page.get_by_label("Notes")).to_have_attribute("rows", "2")

    title = page.get_by_label("Title")
    title_field = page.locator(".field", has=title)
    title.fill("ab")
    expect(title_field.locator(".field-error")).to_have_text("Must be at least 3 characters.")
    title.fill("abc")
    expect(title_field.locator(".field-error")).to_contain_text("Must match the pattern")
    title.fill("Abc")
    expect(title_field.locator(".field-error")).to_be_hidden()
    page.get_by_label("Email").fill("nobody")
    expect(page.locator(".field", has=page.get_by_label("Email"))).to_contain_text(
        "Must be an email address."
    )
    page.get_by_label("Email").fill("dev@example.test")
    page.get_by_label("Count").fill("0")
    expect(page.locator(".field", has=page.get_by_label("Count"))).to_contain_text(
        "Must be at least 1."
    )
    page.get_by_label("Count").fill("4")
    page.get_by_label("Ratio").fill("0.5")
    page.get_by_label("Public").check()
    page.get_by_label("Language").select_option(label="Go")
    page.get_by_label("Tier").select_option(label="Silver")
    page.get_by_label("Medium").check()
    page.get_by_label("PIN").fill("1234")
    page.get_by_label("Notes").fill("not on the review page")
    assert_labelled(page)
    page.get_by_role("button", name="Next").click()

    # page 2: arrays, checkboxes, nested object, dependencies and if/then
    expect(page.get_by_role("heading", name="Details")).to_be_visible()
    page.get_by_role("button", name="Add Labels").click()
    expect(page.get_by_label("Label 1", exact=True)).to_be_focused()
    page.get_by_label("Label 1", exact=True).fill("x")
    expect(page.locator("[data-path='labels.0']")).to_contain_text("Must be at least 2 characters.")
    page.get_by_label("Label 1", exact=True).fill("alpha")
    page.get_by_role("button", name="Add Labels").click()
    page.get_by_label("Label 2", exact=True).fill("beta")
    page.get_by_role("button", name="Add Labels").click()
    page.get_by_label("Label 3", exact=True).fill("gamma")
    page.get_by_role("button", name="Remove Label 2").click()
    expect(page.get_by_label("Label 2", exact=True)).to_have_value("gamma")
    page.get_by_label("Metrics").check()
    page.get_by_label("Continuous integration").check()
    page.get_by_label("Engine").select_option("postgres")
    page.get_by_label("Size (GB)").fill("10")

    expect(page.get_by_label("Environment")).to_have_count(0)
    page.get_by_label("Deploy").check()  # dependencies: oneOf branch shows Environment
    environment = page.get_by_label("Environment")
    expect(environment).to_be_visible()
    expect(page.get_by_label("Deploy")).to_be_focused()
    page.get_by_role("button", name="Review").click()
    expect(page.locator(".field", has=environment).locator(".field-error")).to_have_text(
        "This field is required."
    )
    environment.select_option("staging")
    page.get_by_label("Kind").select_option("website")  # if/then shows Domain
    page.get_by_label("Domain").fill("docs.example.test")
    page.get_by_label("Kind").select_option("library")
    expect(page.get_by_label("Domain")).to_have_count(0)
    assert_labelled(page)
    shot(page, "form-showcase-details")
    page.get_by_role("button", name="Review").click()

    main = page.locator("main")
    expect(page.get_by_role("heading", name="Review", exact=True)).to_be_visible()
    expect(main).to_contain_text("Continuous integration, Metrics")
    expect(main).to_contain_text("alpha, gamma")
    expect(main).to_contain_text("Medium")
    expect(page.locator("dt", has_text="Tier").locator("+ dd")).to_have_text("Silver")
    expect(main).to_contain_text("Database › Engine")
    expect(main).not_to_contain_text("not on the review page")  # review.show: false
    expect(page.locator("dt", has_text="PIN").locator("+ dd")).to_have_text("****")  # mask
    expect(main).not_to_contain_text("Domain")  # hidden again, so not sent

    page.get_by_role("button", name="Create").click()
    expect(page.locator("#task-status")).to_have_text(re.compile("completed"))
    task_id = page.url.rsplit("/", 1)[1]
    with server.client() as client:
        values = client.get(f"/api/scaffolder/v2/tasks/{task_id}").json()["spec"]["parameters"]
    assert values == {
        "title": "Abc",
        "email": "dev@example.test",
        "count": 4,
        "ratio": 0.5,
        "public": True,
        "language": "go",
        "tier": "silver",
        "size": "m",
        "apiVersion": "v1",
        "internalId": "fixed-42",
        "region": "eu-west",
        "pin": "1234",
        "notes": "not on the review page",
        "labels": ["alpha", "gamma"],
        "features": ["ci", "metrics"],
        "database": {"engine": "postgres", "size": 10},
        "deploy": True,
        "environment": "staging",
        "kind": "library",
    }


# (schema, value) pairs the page's validator and the server's must judge alike
# (the form explains a failing dependency `oneOf` by its chosen branch's errors, so for that
# case only the verdict is compared, not where the errors point)
VERDICT_ONLY = 32
PARITY_CASES: list[tuple[dict[str, Any], Any]] = [
    ({"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}}, {}),
    ({"properties": {"a": {"type": "string"}}}, {"a": 5}),
    ({"properties": {"a": {"type": "integer"}}}, {"a": 1.5}),
    ({"properties": {"a": {"type": "integer"}}}, {"a": 2}),
    ({"properties": {"a": {"type": "number"}}}, {"a": True}),
    ({"properties": {"a": {"type": "string", "minLength": 3}}}, {"a": "ab"}),
    ({"properties": {"a": {"type": "string", "minLength": 2}}}, {"a": "é😀"}),
    ({"properties": {"a": {"type": "string", "maxLength": 2}}}, {"a": "abc"}),
    ({"properties": {"a": {"type": "string", "pattern": "^[a-z]+$"}}}, {"a": "abc1"}),
    ({"properties": {"a": {"type": "string", "pattern": "b"}}}, {"a": "abc"}),
    ({"properties": {"a": {"format": "email"}}}, {"a": "nobody"}),
    ({"properties": {"a": {"format": "email"}}}, {"a": "a@b"}),
    ({"properties": {"a": {"format": "date"}}}, {"a": "2024-02-30"}),
    ({"properties": {"a": {"format": "date"}}}, {"a": "2024-02-29"}),
    ({"properties": {"a": {"format": "ipv4"}}}, {"a": "10.0.0.256"}),
    ({"properties": {"a": {"format": "ipv6"}}}, {"a": "fe80::1"}),
    ({"properties": {"a": {"format": "uri"}}}, {"a": "not a uri"}),
    ({"properties": {"a": {"format": "hostname"}}}, {"a": "bad host"}),
    ({"properties": {"a": {"minimum": 1, "maximum": 5}}}, {"a": 6}),
    ({"properties": {"a": {"exclusiveMinimum": 1}}}, {"a": 1}),
    ({"properties": {"a": {"multipleOf": 0.5}}}, {"a": 1.5}),
    ({"properties": {"a": {"multipleOf": 2}}}, {"a": 3}),
    ({"properties": {"a": {"enum": ["x", "y"]}}}, {"a": "z"}),
    ({"properties": {"a": {"enum": [1]}}}, {"a": True}),
    ({"properties": {"a": {"const": "v1"}}}, {"a": "v2"}),
    ({"properties": {"a": {"type": "array", "items": {"type": "string"}}}}, {"a": ["x", 2]}),
    ({"properties": {"a": {"type": "array", "uniqueItems": True}}}, {"a": [1, True]}),
    ({"properties": {"a": {"type": "array", "uniqueItems": True}}}, {"a": ["x", "x"]}),
    ({"properties": {"a": {"type": "array", "minItems": 2}}}, {"a": ["x"]}),
    (
        {"properties": {"o": {"type": "object", "required": ["k"], "properties": {"k": {}}}}},
        {"o": {}},
    ),
    ({"additionalProperties": False, "properties": {"a": {}}}, {"a": 1, "b": 2}),
    ({"dependencies": {"a": ["b"]}}, {"a": 1}),
    (
        {
            "properties": {"d": {"type": "boolean"}},
            "dependencies": {
                "d": {
                    "oneOf": [
                        {"properties": {"d": {"const": True}, "e": {}}, "required": ["e"]},
                        {"properties": {"d": {"const": False}}},
                    ]
                }
            },
        },
        {"d": True},
    ),
    (
        {
            "if": {"properties": {"k": {"const": "w"}}, "required": ["k"]},
            "then": {"required": ["dom"]},
            "else": {"properties": {"dom": {"maxLength": 1}}},
        },
        {"k": "w"},
    ),
    ({"allOf": [{"required": ["a"]}, {"required": ["b"]}]}, {"a": 1}),
    ({"anyOf": [{"required": ["a"]}, {"required": ["b"]}]}, {}),
    ({"not": {"required": ["a"]}}, {"a": 1}),
    (
        {
            "definitions": {"n": {"type": "string"}},
            "properties": {"a": {"$ref": "#/definitions/n"}},
        },
        {"a": 1},
    ),
]


def _server_paths(schema: dict[str, Any], value: Any) -> list[list[Any]]:
    paths = []
    for error in validator_for(schema).iter_errors(value):
        path = list(error.absolute_path)
        if error.validator in ("required", "dependencies"):
            path.append(re.findall(r"'([^']*)'", error.message)[0])
        paths.append(path)
    return sorted(paths, key=json.dumps)


def test_the_page_validates_like_the_server(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/create")
    expect(page.locator("main[data-ready=true]")).to_have_count(1)
    results = page.evaluate(
        """async (cases) => {
            const { validate } = await import('/static/js/schema.js');
            return cases.map(([schema, value]) => validate(schema, value).map((e) => e.path));
        }""",
        PARITY_CASES,
    )
    for i, ((schema, value), client_paths) in enumerate(zip(PARITY_CASES, results, strict=True)):
        server_paths = _server_paths(schema, value)
        client = sorted({json.dumps(p) for p in client_paths})
        server_side = sorted({json.dumps(p) for p in server_paths})
        if i == VERDICT_ONLY:
            assert bool(client) == bool(server_side) is True
            assert client == ['["e"]'], client
        else:
            assert client == server_side, f"{schema} {value}: page {client} server {server_side}"


def _write_template(folder: Path, max_length: int | None) -> None:
    name: dict[str, Any] = {"title": "Project", "type": "string"}
    if max_length is not None:
        name["maxLength"] = max_length
    doc = {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {"name": "server-check", "title": "Server check"},
        "spec": {
            "owner": "group:default/platform",
            "type": "tool",
            "parameters": [
                {"title": "First", "properties": {"project": name}},
                {
                    "title": "Second",
                    "properties": {"flavour": {"title": "Flavour", "type": "string"}},
                },
            ],
            "steps": [
                {"id": "log", "name": "Log", "action": "debug:log", "input": {"message": "hi"}}
            ],
        },
    }
    path = folder / "server-check" / "template.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")


def _wait_for_template(server: Server, name: str) -> None:
    url = f"/api/scaffolder/v2/templates/default/template/{name}/parameter-schema"
    deadline = time.monotonic() + 15
    with server.client() as client:
        while client.get(url).status_code != 200:
            assert time.monotonic() < deadline, f"the server did not pick up {name}"
            time.sleep(0.2)


def _wait_for_schema(server: Server, has_max_length: bool) -> None:
    url = "/api/scaffolder/v2/templates/default/template/server-check/parameter-schema"
    deadline = time.monotonic() + 15
    with server.client() as client:
        while time.monotonic() < deadline:
            response = client.get(url)
            if response.status_code == 200:
                project = response.json()["steps"][0]["schema"]["properties"]["project"]
                if ("maxLength" in project) == has_max_length:
                    return
            time.sleep(0.2)
    raise AssertionError("the server did not pick up the template change")


def test_server_errors_are_shown_next_to_their_fields(page: Page, server: Server) -> None:
    folder = server.extra_templates
    _write_template(folder, None)
    _wait_for_schema(server, has_max_length=False)
    try:
        page.goto(f"{server.url}/create/templates/default/server-check")
        page.get_by_label("Project").fill("much-too-long")
        page.get_by_role("button", name="Next").click()
        page.get_by_label("Flavour").fill("vanilla")
        page.get_by_role("button", name="Review").click()
        expect(page.get_by_role("button", name="Create")).to_be_visible()

        # the template tightens while the form is open: only the server knows
        _write_template(folder, 3)
        path = folder / "server-check" / "template.yaml"
        later = time.time() + 5
        os.utime(path, (later, later))
        _wait_for_schema(server, has_max_length=True)
        page.get_by_role("button", name="Create").click()

        # back on the page holding the field, the server's message beside it
        expect(page.get_by_role("heading", name="First")).to_be_visible()
        project = page.get_by_label("Project")
        error = page.locator(".field", has=project).locator(".field-error")
        expect(error).to_contain_text("maximum length of 3")
        expect(project).to_have_attribute("aria-invalid", "true")
        expect(page.locator(".page-errors")).to_contain_text("The server did not accept")
        expect(project).to_be_focused()
        shot(page, "form-server-error")
        project.fill("ok")
        expect(error).to_be_hidden()

        # fixed, the task is created
        page.get_by_role("button", name="Next").click()
        page.get_by_role("button", name="Review").click()
        expect(page.locator(".page-errors")).to_be_hidden()
        page.get_by_role("button", name="Create").click()
        expect(page.locator("#task-status")).to_have_text(re.compile("completed"))
    finally:
        (folder / "server-check" / "template.yaml").unlink()


def test_ansi_colours(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/create")
    expect(page.locator("main[data-ready=true]")).to_have_count(1)
    html = page.evaluate(
        """async () => {
            const { ansiToFragment } = await import('/static/js/ansi.js');
            const div = document.createElement('div');
            div.append(ansiToFragment(
                '\\u001b[1;31mbad\\u001b[0m plain \\u001b[38;5;208morange\\u001b[39m' +
                ' \\u001b[42m<b>x</b>\\u001b[49m\\u001b[2K end'));
            return div.innerHTML;
        }"""
    )
    assert html == (
        '<span class="ansi-fg-red ansi-bold">bad</span> plain '
        '<span style="color: rgb(255, 135, 0);">orange</span> '
        '<span class="ansi-bg-green">&lt;b&gt;x&lt;/b&gt;</span> end'
    )


def test_a_template_without_parameters_goes_straight_to_review(page: Page, server: Server) -> None:
    doc = {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {"name": "no-parameters", "title": "No parameters"},
        "spec": {
            "owner": "group:default/platform",
            "type": "tool",
            "steps": [
                {"id": "log", "name": "Log", "action": "debug:log", "input": {"message": "hi"}}
            ],
        },
    }
    path = server.extra_templates / "no-parameters" / "template.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    _wait_for_template(server, "no-parameters")
    try:
        page.goto(f"{server.url}/create/templates/default/no-parameters")
        expect(page.get_by_role("heading", name="Review", exact=True)).to_be_visible()
        expect(page.locator("main")).to_contain_text("Check the values")
        page.get_by_role("button", name="Create").click()
        expect(page.locator("#task-status")).to_have_text(re.compile("completed"))
    finally:
        path.unlink()


def test_template_secrets_have_a_page_of_their_own(page: Page, server: Server) -> None:
    """`spec.secrets.schema`: a last page of password inputs, masked on review, sent only
    as `secrets` (the step sees it, redacted in its log), never in the values."""
    doc = {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {"name": "with-secrets", "title": "With secrets"},
        "spec": {
            "owner": "group:default/platform",
            "type": "tool",
            "parameters": [
                {
                    "title": "Target",
                    "properties": {"host": {"title": "Host name", "type": "string"}},
                }
            ],
            "secrets": {
                "schema": {
                    "title": "Credentials",
                    "required": ["apiKey"],
                    "properties": {
                        "apiKey": {"title": "API key", "type": "string", "minLength": 4}
                    },
                }
            },
            "steps": [
                {
                    "id": "use",
                    "name": "Use the key",
                    "action": "debug:log",
                    "input": {"message": "key=${{ secrets.apiKey }}"},
                }
            ],
        },
    }
    path = server.extra_templates / "with-secrets" / "template.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    _wait_for_template(server, "with-secrets")
    try:
        page.goto(f"{server.url}/create/templates/default/with-secrets")
        page.get_by_label("Host name").fill("db.example.test")
        page.get_by_role("button", name="Next").click()
        expect(page.get_by_role("heading", name="Credentials")).to_be_visible()
        api_key = page.get_by_label("API key")
        expect(api_key).to_have_attribute("type", "password")
        page.get_by_role("button", name="Review").click()
        expect(page.locator(".field", has=api_key)).to_contain_text("This field is required.")
        api_key.fill("key-123456")
        page.get_by_role("button", name="Review").click()
        expect(page.locator("dt", has_text="API key").locator("+ dd")).to_have_text("••••••••")
        expect(page.locator("main")).not_to_contain_text("key-123456")
        page.get_by_role("button", name="Create").click()
        expect(page.locator("#task-status")).to_have_text(re.compile("completed"))
        expect(page.get_by_role("log", name="Log of Use the key")).to_contain_text("key=***")
        task_id = page.url.rsplit("/", 1)[1]
        with server.client() as client:
            task = client.get(f"/api/scaffolder/v2/tasks/{task_id}").json()
        assert task["spec"]["parameters"] == {"host": "db.example.test"}
        assert "key-123456" not in json.dumps(task)
    finally:
        path.unlink()
