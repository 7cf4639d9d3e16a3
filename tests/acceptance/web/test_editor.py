"""The template editor (issue 13, item 7): for template authors only; a catalog template,
a pasted YAML or an uploaded folder; the live form preview as the YAML changes; the
messages of `falsework templates validate` with their lines; a dry run's log and files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from .conftest import FALSEWORK, Server, shot, signed_in, start_server

pytestmark = pytest.mark.browser

TOKENS = {
    "alice": {"user": "user:default/alice", "groups": ["group:default/team-a"], "admin": False},
    "carol": {
        "user": "user:default/carol",
        "groups": ["group:default/platform"],
        "admin": False,
        "roles": ["templates:author"],
    },
}
TEMPLATE = textwrap.dedent(
    """\
    apiVersion: scaffolder.backstage.io/v1beta3
    kind: Template
    metadata:
      name: with-skeleton
      title: With a skeleton
      description: Renders a skeleton folder.
    spec:
      owner: group:default/platform
      type: service
      parameters:
        - title: Basics
          required: [name]
          properties:
            name:
              title: Name
              type: string
      steps:
        - id: fetch
          name: Render
          action: fetch:template
          input:
            url: ./skeleton
            values:
              name: ${{ parameters.name }}
        - id: log
          name: Log
          action: debug:log
          input:
            message: made ${{ parameters.name }}
      output:
        text:
          - title: Done
            content: Made **${{ parameters.name }}**.
    """
)
SKELETON = {"README.md": "# ${{ values.name }}\n", "src/app.py": "NAME = '${{ values.name }}'\n"}


def token_of(who: str) -> str:
    return f"editor-{who}-token"


def write_template(folder: Path, text: str = TEMPLATE) -> Path:
    (folder / "skeleton" / "src").mkdir(parents=True, exist_ok=True)
    (folder / "template.yaml").write_text(text, encoding="utf-8")
    for name, content in SKELETON.items():
        (folder / "skeleton" / name).write_text(content, encoding="utf-8")
    return folder / "template.yaml"


@pytest.fixture(scope="module")
def editor_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("web-editor")
    write_template(workdir / "templates" / "with-skeleton")
    config = {
        "auth": {
            "tokens": [
                {"sha256": hashlib.sha256(token_of(who).encode()).hexdigest(), **identity}
                for who, identity in TOKENS.items()
            ]
        }
    }
    srv = start_server(workdir, config=config)
    yield srv
    srv.stop()


@pytest.fixture
def carol(browser: Browser) -> Iterator[Page]:
    yield from signed_in(browser, token_of("carol"))


@pytest.fixture
def alice(browser: Browser) -> Iterator[Page]:
    yield from signed_in(browser, token_of("alice"))


def cli_problems(tmp_path: Path, text: str) -> list[dict[str, object]]:
    """What `falsework templates validate --json` says of the same template folder."""
    path = write_template(tmp_path / "cli", text)
    done = subprocess.run(
        [str(FALSEWORK), "templates", "validate", "--json", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return [{**p, "file": Path(str(p["file"])).name} for p in json.loads(done.stdout)]


def test_only_template_authors_get_the_editor(alice: Page, editor_server: Server) -> None:
    alice.goto(f"{editor_server.url}/edit")
    expect(alice.get_by_role("alert")).to_contain_text("needs the templates:author role")
    expect(alice.get_by_role("link", name="Editor")).to_have_count(0)
    answer = httpx.post(
        f"{editor_server.url}/api/falsework/v1/templates/validate",
        headers={"Authorization": f"Bearer {token_of('alice')}"},
        json={"template": TEMPLATE},
    )
    assert answer.status_code == 403
    assert "templates:author" in answer.json()["error"]["message"]
    source = httpx.get(
        f"{editor_server.url}/api/falsework/v1/templates/default/with-skeleton/source",
        headers={"Authorization": f"Bearer {token_of('alice')}"},
    )
    assert source.status_code == 403


def test_edit_preview_validate_and_dry_run(
    carol: Page, editor_server: Server, tmp_path: Path
) -> None:
    page = carol
    page.goto(f"{editor_server.url}/create")
    page.get_by_role("link", name="Editor").click()
    page.get_by_label("Start from").select_option("template:default/with-skeleton")
    yaml_box = page.get_by_label("template.yaml")
    expect(yaml_box).to_have_value(TEMPLATE)
    expect(page.locator(".files-note")).to_contain_text("2 file(s)")
    problems = page.get_by_role("list", name="Problems")
    expect(problems).to_contain_text("No problems")
    preview = page.locator("#editor-preview")
    expect(preview.get_by_label("Name", exact=True)).to_be_visible()

    # a field typed into the YAML appears in the preview
    yaml_box.focus()
    edited = TEMPLATE.replace(
        "          type: string\n",
        "          type: string\n"
        "        team:\n          title: Team\n          type: string\n"
        "          enum: [web, data]\n",
        1,
    )
    assert edited != TEMPLATE
    yaml_box.fill(edited)
    expect(preview.get_by_label("Team")).to_be_visible()
    expect(yaml_box).to_be_focused()  # the preview never takes the author's focus

    # a mistake: the validator's messages, with lines, as the CLI prints them
    broken = edited.replace("action: debug:log", "action: debug:lgo").replace(
        "type: string\n", "type: strng\n", 1
    )
    yaml_box.fill(broken)
    expect(problems.locator(".problem")).to_have_count(2)
    expected = cli_problems(tmp_path, broken)
    shown = problems.locator(".problem").all_inner_texts()
    assert len(expected) == 2
    for problem in expected:
        where = f"template.yaml:{problem['line']} {problem['path']}"
        assert any(where in line and str(problem["message"]) in line for line in shown), (
            problem,
            shown,
        )
    expect(problems).to_contain_text("unknown action 'debug:lgo' (did you mean debug:log?)")
    line = next(p["line"] for p in expected if "debug:lgo" in str(p["message"]))
    page.get_by_role("button", name=f"Go to line {line}").click()
    caret_line = yaml_box.evaluate("el => el.value.slice(0, el.selectionStart).split('\\n').length")
    assert caret_line == line
    shot(page, "editor-problems")

    # fixed again, then a dry run from the preview: the log and every file with its content
    yaml_box.fill(edited)
    expect(problems).to_contain_text("No problems")
    preview.get_by_label("Name", exact=True).fill("demo")
    preview.get_by_label("Team").select_option(label="data")
    preview.get_by_role("button", name="Review").click()
    preview.get_by_role("button", name="Dry run").click()
    result = page.locator(".dry-run")
    expect(result.get_by_role("log", name="Dry-run log")).to_contain_text("made demo")
    files = result.get_by_role("list", name="Files")
    expect(files.locator("summary")).to_have_count(2)
    files.locator("summary", has_text="README.md").click()
    expect(result.get_by_label("Content of README.md")).to_have_text("# demo\n")
    files.locator("summary", has_text="app.py").click()
    expect(result.get_by_label("Content of src/app.py")).to_have_text("NAME = 'demo'\n")
    expect(result.locator(".output-text strong")).to_have_text("demo")
    shot(page, "editor-dry-run")


def test_pasted_yaml_and_an_uploaded_folder(
    carol: Page, editor_server: Server, tmp_path: Path
) -> None:
    page = carol
    page.goto(f"{editor_server.url}/edit")
    yaml_box = page.get_by_label("template.yaml")
    expect(page.get_by_role("list", name="Problems")).to_contain_text("No problems")  # starter

    # pasted: anything typed or pasted is checked; aliases are refused, not expanded
    yaml_box.fill("kind: Template\nmetadata: &m {name: x}\nother: *m\n")
    expect(page.get_by_role("list", name="Problems")).to_contain_text("aliases")

    # an uploaded folder: its template and skeleton (a file in a sub-folder too)
    folder = tmp_path / "upload" / "my-template"
    write_template(folder, TEMPLATE.replace("with-skeleton", "uploaded"))
    page.get_by_label("Upload a template folder").set_input_files(str(folder))
    expect(yaml_box).to_have_value(TEMPLATE.replace("with-skeleton", "uploaded"))
    expect(page.locator(".files-note")).to_contain_text("2 file(s)")
    expect(page.locator(".files-note")).to_contain_text("skeleton/src/app.py")
    expect(page.get_by_role("list", name="Problems")).to_contain_text("No problems")
    preview = page.locator("#editor-preview")
    preview.get_by_label("Name", exact=True).fill("up")
    preview.get_by_role("button", name="Review").click()
    preview.get_by_role("button", name="Dry run").click()
    page.locator(".dry-run summary", has_text="README.md").click()
    expect(page.get_by_label("Content of README.md")).to_have_text("# up\n")
