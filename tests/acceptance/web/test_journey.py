"""The page as a person meets it (issue 13, items 1-6): the form survives Back, Forward and
reload; a repository on the server's disk is a `git clone` command; Markdown rendered and
an XSS corpus inert; broken templates hidden from users and shown to admins; cancelled and
retried tasks read as finished; the gallery's order, array labels, pattern messages and
the task list's results.

One server for the module with its own templates (tokens: alice a plain user, admin) so
the other modules' galleries stay as they are."""

from __future__ import annotations

import hashlib
import re
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from .conftest import PageErrors, Server, new_context, shot, start_server, watch

pytestmark = pytest.mark.browser

TOKENS = {
    "alice": {"user": "user:default/alice", "groups": ["group:default/team-a"], "admin": False},
    "admin": {"user": "user:default/root", "groups": [], "admin": True},
}
SECRET = "s3cr3t-never-stored"


def token_of(who: str) -> str:
    return f"journey-{who}-token"


TEMPLATES: dict[str, str] = {
    "journey-form": """
        apiVersion: scaffolder.backstage.io/v1beta3
        kind: Template
        metadata:
          name: journey-form
          title: Journey form
          description: Three pages and a secret.
          tags: [forms]
        spec:
          owner: group:default/web
          type: service
          parameters:
            - title: Service
              required: [name]
              properties:
                name:
                  title: Name
                  type: string
                  pattern: '^[a-z][a-z0-9-]+$'
                  description: Lowercase letters, digits and dashes.
                language:
                  title: Language
                  type: string
                  enum: [python, go]
                  default: python
                tags:
                  title: Tags
                  type: array
                  items: {type: string}
            - title: Access
              required: [token]
              properties:
                token:
                  title: Token
                  type: string
                  ui:field: Secret
                repoUrl:
                  title: Repository
                  type: string
                  ui:field: RepoUrlPicker
                  ui:options: {allowedHosts: [github.com]}
            - title: Extra
              properties:
                note:
                  title: Note
                  type: string
          steps:
            - id: log
              name: Log
              action: debug:log
              input:
                message: ${{ parameters.name }}
        """,
    "local-remote": """
        apiVersion: scaffolder.backstage.io/v1beta3
        kind: Template
        metadata:
          name: local-remote
          title: Local remote
          description: Pushes to a bare repository in the server's remotes folder.
          tags: [recommended, git]
        spec:
          owner: group:default/web
          type: service
          parameters:
            - title: Repository
              required: [name]
              properties:
                name: {title: Name, type: string}
          steps:
            - id: write
              name: Write the catalog entry
              action: catalog:write
              input:
                entity:
                  apiVersion: backstage.io/v1alpha1
                  kind: Component
                  metadata: {name: '${{ parameters.name }}'}
            - id: publish
              name: Push
              action: publish:git
              input:
                remoteUrl: ${{ parameters.name }}.git
                branch: main
          output:
            links:
              - title: Repository
                url: ${{ steps.publish.output.repoContentsUrl }}
        """,
    "markdown-xss": """
        apiVersion: scaffolder.backstage.io/v1beta3
        kind: Template
        metadata:
          name: markdown-xss
          title: Markdown and hostile text
          description: |
            Renders **bold** and `falsework run --values v.yaml`.
            <img src=x onerror="window.__pwned=1">
            [click](javascript:window.__pwned=2)
          tags: [docs]
        spec:
          owner: group:default/web
          type: documentation
          parameters:
            - title: Page
              description: "A *page* description with a [link](https://example.test/docs)."
              properties:
                field:
                  title: Field
                  type: string
                  description: |
                    Help with `code` and a list:
                    - one
                    - <script>window.__pwned=3</script>
          steps:
            - id: log
              name: Log
              action: debug:log
              input:
                message: hello
          output:
            text:
              - title: Next steps
                content: |
                  ## Clone

                  ```
                  git clone --branch main --single-branch /srv/git/a-very-long-name.git
                  ```

                  - [docs](https://example.test/docs "Docs")
                  - <a href="javascript:window.__pwned=4">raw link</a>
                  - [data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)
                  - [spaced]( javascript:window.__pwned=5)
                  - [entity](&#106;avascript:window.__pwned=6)
                  - <javascript:window.__pwned=7>
                  - ![pic](https://example.test/x.png)
                  - <iframe src="https://example.test"></iframe>
                  - <svg onload="window.__pwned=8"></svg>
                  - <style>body{display:none}</style>
        """,
    "broken-schema": """
        apiVersion: scaffolder.backstage.io/v1beta3
        kind: Template
        metadata:
          name: broken-schema
          title: Broken schema
          description: Its parameter schema is not JSON Schema.
        spec:
          owner: group:default/web
          type: service
          parameters:
            - title: Page
              properties:
                name:
                  type: 12
          steps:
            - id: log
              action: debug:log
              input: {message: hi}
        """,
    "broken-action": """
        apiVersion: scaffolder.backstage.io/v1beta3
        kind: Template
        metadata:
          name: broken-action
          title: Broken action
          description: Uses an action that does not exist.
        spec:
          owner: group:default/web
          type: service
          steps:
            - id: nope
              action: debug:lgo
              input: {message: hi}
        """,
    "cancel-me": """
        apiVersion: scaffolder.backstage.io/v1beta3
        kind: Template
        metadata:
          name: cancel-me
          title: Cancel me
          description: A long wait, then two steps that never run when it is cancelled.
        spec:
          owner: group:default/web
          type: tool
          steps:
            - id: wait
              name: Wait
              action: debug:wait
              input: {seconds: 60}
            - id: second
              name: Second
              action: debug:log
              input: {message: never}
            - id: third
              name: Third
              action: debug:log
              input: {message: never}
        """,
    "retry-me": """
        apiVersion: scaffolder.backstage.io/v1beta3
        kind: Template
        metadata:
          name: retry-me
          title: Retry me
          description: A step that takes a second, a call that fails, a clean-up step.
        spec:
          owner: group:default/web
          type: tool
          parameters:
            - title: Endpoint
              required: [endpoint]
              properties:
                endpoint: {title: Endpoint, type: string}
          steps:
            - id: prepare
              name: Prepare
              action: debug:wait
              input: {seconds: 1}
            - id: call
              name: Call
              action: http:request
              input:
                method: GET
                url: ${{ parameters.endpoint }}
                timeout: 5
            - id: cleanup
              name: Clean up
              if: ${{ always() }}
              action: debug:log
              input: {message: cleaning up}
        """,
}


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("web-journey")
    for name, text in TEMPLATES.items():
        folder = workdir / "templates" / name
        folder.mkdir(parents=True)
        (folder / "template.yaml").write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    config = {
        "auth": {
            "tokens": [
                {"sha256": hashlib.sha256(token_of(who).encode()).hexdigest(), **identity}
                for who, identity in TOKENS.items()
            ]
        },
        "egress": {"allow": ["127.0.0.1"]},
    }
    srv = start_server(workdir, config=config)
    srv.token = token_of("admin")
    yield srv
    srv.stop()


def signed_in(browser: Browser, who: str, errors: PageErrors) -> Page:
    """A page whose tab already holds `who`'s token (as after the sign-in prompt)."""
    context = new_context(browser)
    context.add_init_script(f"sessionStorage.setItem('falsework.token', '{token_of(who)}')")
    return watch(context.new_page(), errors)


@pytest.fixture
def admin(browser: Browser) -> Iterator[Page]:
    errors = PageErrors()
    page = signed_in(browser, "admin", errors)
    yield page
    page.context.close()
    assert errors.messages == [], errors.messages


@pytest.fixture
def alice(browser: Browser) -> Iterator[Page]:
    errors = PageErrors()
    page = signed_in(browser, "alice", errors)
    yield page
    page.context.close()
    assert errors.messages == [], errors.messages


class Endpoint(ThreadingHTTPServer):
    status = 503


class _Handler(BaseHTTPRequestHandler):
    server: Endpoint

    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        del format, args


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    srv = Endpoint(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


# ----- 1. Back, Forward and reload ------------------------------------------------------------
def test_the_form_survives_back_forward_and_reload(admin: Page, journey: Server) -> None:
    page = admin
    page.goto(f"{journey.url}/create/templates/default/journey-form")
    page.get_by_label("Name", exact=True).fill("my-svc")
    page.get_by_label("Language").select_option(label="go")
    page.get_by_role("button", name="Next").click()
    expect(page).to_have_url(re.compile(r"\?step=2$"))
    page.get_by_label("Token").fill(SECRET)
    page.get_by_label("Owner").fill("acme")
    page.get_by_label("Repository", exact=True).fill("my-svc")
    page.get_by_role("button", name="Next").click()
    expect(page).to_have_url(re.compile(r"\?step=3$"))
    page.get_by_label("Note").fill("a note")

    # browser Back and Forward walk the pages, answers (and the secret in memory) kept
    page.go_back()
    expect(page).to_have_url(re.compile(r"\?step=2$"))
    expect(page.get_by_label("Token")).to_have_value(SECRET)
    page.go_back()
    expect(page.get_by_label("Name", exact=True)).to_have_value("my-svc")
    expect(page.get_by_label("Language")).to_have_value("1")
    page.go_forward()
    expect(page.get_by_label("Repository", exact=True)).to_have_value("my-svc")
    page.go_forward()
    expect(page.get_by_label("Note")).to_have_value("a note")

    # a reload keeps the answers but not the secret: the form stops on the secret's page
    page.reload()
    expect(page).to_have_url(re.compile(r"\?step=2$"))
    expect(page.get_by_label("Token")).to_have_value("")
    expect(page.get_by_label("Owner")).to_have_value("acme")
    stored = page.evaluate("() => JSON.stringify([sessionStorage, localStorage, history.state])")
    assert "my-svc" in stored and SECRET not in stored and SECRET not in page.url
    page.get_by_label("Token").fill(SECRET)
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_label("Note")).to_have_value("a note")
    page.get_by_role("button", name="Review").click()
    expect(page).to_have_url(re.compile(r"\?step=review$"))
    expect(page.locator("dl.review").first).to_contain_text("my-svc")
    page.reload()  # the review page reloads as the review page... but for the secret
    expect(page).to_have_url(re.compile(r"\?step=2$"))
    page.get_by_label("Token").fill(SECRET)
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Review").click()
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/create/tasks/[0-9a-f-]{36}$"))
    expect(page.locator("#task-status")).to_have_text(re.compile("completed"))

    # Back from the task page returns to the filled form (the secret is typed again)
    page.go_back()
    expect(page).to_have_url(re.compile(r"/create/templates/default/journey-form\?step=2$"))
    expect(page.get_by_label("Token")).to_have_value("")
    expect(page.get_by_label("Repository", exact=True)).to_have_value("my-svc")
    page.get_by_role("button", name="Back").click()
    expect(page.get_by_label("Name", exact=True)).to_have_value("my-svc")
    page.reload()
    expect(page.get_by_label("Name", exact=True)).to_have_value("my-svc")
    expect(page.get_by_label("Language")).to_have_value("1")
    assert SECRET not in page.evaluate("() => JSON.stringify([sessionStorage, localStorage])")


def test_a_step_in_the_url_needs_the_pages_before_it(admin: Page, journey: Server) -> None:
    """A link to ?step=3 in a fresh tab starts where the answers end: the first page."""
    admin.goto(f"{journey.url}/create/templates/default/journey-form?step=3")
    expect(admin.get_by_role("heading", name="Service")).to_be_visible()
    expect(admin).to_have_url(re.compile(r"/journey-form$"))


# ----- 2. a local remote is a git clone command ------------------------------------------------
def test_a_local_remote_is_a_clone_command(admin: Page, journey: Server, tmp_path: Path) -> None:
    page = admin
    page.goto(f"{journey.url}/create/templates/default/local-remote")
    page.get_by_label("Name", exact=True).fill("clone-me")
    page.get_by_role("button", name="Review").click()
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#task-status")).to_have_text(re.compile("completed"))
    output = page.locator(".output")
    expect(output.get_by_role("link")).to_have_count(0)  # no relative link that 404s
    command = output.locator("code.clone-command")
    expect(command).to_have_text(re.compile(r"^git clone -b main /\S+/remotes/clone-me\.git$"))
    text = command.inner_text()

    # the command works as shown
    target = tmp_path / "clone"
    subprocess.run([*text.split(), str(target)], check=True, capture_output=True)
    assert (target / "catalog-info.yaml").is_file()
    # Copy puts it on the clipboard
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    output.get_by_role("button", name=re.compile("^Copy the command")).click()
    expect(output.locator(".copy-status")).to_have_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == text

    # the task list shows what the task created
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    row = page.locator("tbody tr", has_text="Local remote").first
    expect(row.locator("td[data-label=Result] code")).to_have_text(text)


# ----- 3. Markdown, and an XSS corpus stays inert ----------------------------------------------
def test_markdown_is_rendered_and_hostile_text_is_inert(admin: Page, journey: Server) -> None:
    page = admin
    page.goto(f"{journey.url}/create")
    card = page.locator(".template-card", has_text="Markdown and hostile text")
    expect(card.locator(".description strong")).to_have_text("bold")
    expect(card.locator(".description code")).to_have_text("falsework run --values v.yaml")
    expect(card).to_contain_text('<img src=x onerror="window.__pwned=1">')  # shown as text
    card.get_by_role("link", name="Choose Markdown and hostile text").click()
    expect(page.locator(".form .markdown em")).to_have_text("page")
    doc_link = page.get_by_role("link", name="link")
    expect(doc_link).to_have_attribute("href", "https://example.test/docs")
    expect(doc_link).to_have_attribute("rel", "noopener noreferrer")
    help_box = page.locator("#field-field-help")
    expect(help_box.locator("li")).to_have_count(2)
    expect(help_box).to_contain_text("<script>window.__pwned=3</script>")
    expect(page.get_by_label("Field")).to_have_attribute("aria-describedby", re.compile("help"))
    page.get_by_role("button", name="Review").click()
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#task-status")).to_have_text(re.compile("completed"))

    text = page.locator(".output-text .markdown")
    expect(text.locator("h2")).to_have_text("Clone")
    block = text.locator("pre code")
    expect(block).to_contain_text("git clone --branch main --single-branch")
    # the command keeps its line: it scrolls instead of wrapping mid-flag
    assert block.evaluate("el => getComputedStyle(el).whiteSpace") == "pre"
    expect(text.get_by_role("link", name="docs")).to_have_attribute(
        "href", "https://example.test/docs"
    )
    expect(text.get_by_role("link", name="pic")).to_have_attribute(
        "href", "https://example.test/x.png"
    )
    shot(page, "task-markdown")

    # nothing ran, nothing was injected: no script, handler, frame, style or unsafe link
    assert page.evaluate("() => window.__pwned") is None
    for where in (".output", "main"):
        found = page.locator(where).first.evaluate(
            """el => {
                const all = [...el.querySelectorAll('*')];
                return {
                    tags: all.map((e) => e.tagName.toLowerCase())
                        .filter((t) => ['script', 'iframe', 'svg', 'style', 'img', 'object']
                            .includes(t)),
                    handlers: all.flatMap((e) => [...e.attributes].map((a) => a.name))
                        .filter((n) => n.startsWith('on')),
                    hrefs: [...el.querySelectorAll('a[href]')].map((a) => a.href)
                        .filter((h) => !/^(https?:|mailto:)/.test(h) && h !== location.href + '#'
                            && !h.endsWith('#')),
                };
            }"""
        )
        assert found == {"tags": [], "handlers": [], "hrefs": []}, (where, found)
    expect(text).to_contain_text('<a href="javascript:window.__pwned=4">raw link</a>')


# ----- 4. broken templates ---------------------------------------------------------------------
def test_broken_templates_are_hidden_from_users_and_shown_to_admins(
    alice: Page, admin: Page, journey: Server
) -> None:
    alice.goto(f"{journey.url}/create")
    expect(alice.locator(".template-card", has_text="Journey form")).to_have_count(1)
    expect(alice.locator(".template-card", has_text="Broken")).to_have_count(0)

    admin.goto(f"{journey.url}/create")
    for title, problem in (
        ("Broken schema", "not valid JSON Schema"),
        ("Broken action", "unknown action 'debug:lgo' (did you mean debug:log?)"),
    ):
        card = admin.locator(".template-card", has_text=title)
        expect(card.locator(".badge-broken")).to_have_text("broken")
        expect(card.locator(".broken-problems")).to_contain_text(problem)
        expect(card.locator(".broken-problems")).to_contain_text("template.yaml:")
        expect(card.get_by_role("link", name=re.compile("^Choose"))).to_have_count(0)
        expect(card.get_by_role("link", name=f"Fix {title} in the editor")).to_be_visible()
    shot(admin, "gallery-broken")

    # the API says the same, and the server's log names them
    with journey.client() as client:
        listed = {t["name"]: t for t in client.get("/api/scaffolder/v2/templates").json()}
    assert listed["broken-action"]["broken"] is True
    problem = listed["broken-action"]["problems"][0]
    assert (problem["file"], problem["line"], problem["path"]) == (
        "template.yaml",
        12,
        "spec.steps[0].action",
    )
    assert "broken" not in listed["journey-form"]
    alice_list = httpx.get(
        f"{journey.url}/api/scaffolder/v2/templates",
        headers={"Authorization": f"Bearer {token_of('alice')}"},
    ).json()
    assert {"broken-schema", "broken-action"}.isdisjoint(t["name"] for t in alice_list)
    log = journey.log.read_text()
    assert "broken template template:default/broken-action" in log
    assert "broken template template:default/broken-schema" in log


# ----- 5. cancelled and retried tasks ---------------------------------------------------------
def test_a_cancelled_task_looks_finished(admin: Page, journey: Server) -> None:
    page = admin
    page.goto(f"{journey.url}/create/templates/default/cancel-me")
    page.get_by_role("button", name="Create").click()
    wait = page.locator(".steps li", has_text="Wait")
    expect(wait.locator(".step-status")).to_have_text("processing")
    page.get_by_role("button", name="Cancel", exact=True).click()
    expect(page.locator("#task-status")).to_have_text(re.compile("cancelled"))
    expect(wait.locator(".step-status")).to_have_text("cancelled")
    for name in ("Second", "Third"):
        step = page.locator(".steps li", has_text=name)
        expect(step.locator(".step-status")).to_have_text("skipped")
        expect(step.locator(".duration")).to_have_text("")
    expect(page.locator(".task-meta .took")).to_have_text(re.compile(r"^ · took \d+ s$"))

    # opened afresh, the same
    page.reload()
    expect(page.locator("#task-status")).to_have_text(re.compile("cancelled"))
    expect(page.locator(".steps li", has_text="Third").locator(".step-status")).to_have_text(
        "skipped"
    )
    expect(page.locator(".task-meta .took")).to_have_text(re.compile(r"^ · took \d+ s$"))


def test_a_retried_task_keeps_honest_durations(
    admin: Page, journey: Server, endpoint: Endpoint
) -> None:
    page = admin
    page.goto(f"{journey.url}/create/templates/default/retry-me")
    page.get_by_label("Endpoint").fill(f"http://127.0.0.1:{endpoint.server_address[1]}/x")
    page.get_by_role("button", name="Review").click()
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#task-status")).to_have_text(re.compile("failed"))
    call = page.locator(".steps li", has_text="Call")
    cleanup = page.locator(".steps li", has_text="Clean up")
    prepare = page.locator(".steps li", has_text="Prepare")
    expect(cleanup.locator(".step-status")).to_have_text("completed")
    # the log opens on the step that failed, not on the clean-up after it
    expect(call).to_have_class(re.compile(r"\bselected\b"))
    expect(page.get_by_role("log", name="Log of Call")).to_be_visible()
    expect(prepare.locator(".duration")).to_have_text(re.compile(r"^\d+ s$"))
    before = prepare.locator(".duration").inner_text()

    time.sleep(2.5)  # the gap between the attempts, which no step duration may include
    page.get_by_role("button", name="Retry").click()
    cleanup_log = page.get_by_role("log", name="Log of Clean up", include_hidden=True)
    # the clean-up ran again for the second attempt
    expect(cleanup_log.locator(".line", has_text="Beginning step Clean up")).to_have_count(2)
    expect(page.locator("#task-status")).to_have_text(re.compile("failed"))
    expect(prepare.locator(".duration")).to_have_text(before)
    expect(call).to_have_class(re.compile(r"\bselected\b"))

    endpoint.status = 200
    page.get_by_role("button", name="Retry").click()
    expect(page.locator("#task-status")).to_have_text(re.compile("completed"))
    expect(prepare.locator(".duration")).to_have_text(before)
    page.reload()
    expect(page.locator("#task-status")).to_have_text(re.compile("completed"))
    expect(prepare.locator(".duration")).to_have_text(before)


# ----- 6. polish -----------------------------------------------------------------------------
def test_gallery_order_labels_and_messages(admin: Page, journey: Server) -> None:
    page = admin
    page.goto(f"{journey.url}/create")
    expect(page.locator(".template-card")).to_have_count(len(TEMPLATES) + 5)  # + this folder's
    titles = page.locator(".template-card h2").all_inner_texts()
    # tagged recommended (this module's and tests/acceptance/web's publish-service), then by title
    assert titles[:2] == ["Local remote", "Publish a service"]
    rest = titles[2:]
    assert rest == sorted(rest, key=str.lower), rest

    page.goto(f"{journey.url}/create/templates/default/journey-form")
    page.get_by_role("button", name="Add Tags").click()
    expect(page.get_by_label("Tag 1", exact=True)).to_be_focused()
    expect(page.get_by_role("button", name="Remove Tag 1")).to_be_visible()
    page.get_by_label("Tag 1", exact=True).fill("web")
    name = page.get_by_label("Name", exact=True)
    name.fill("Not Valid")
    expect(page.locator(".field", has=name).locator(".field-error")).to_have_text(
        "Not in the expected form: Lowercase letters, digits and dashes."
    )
    name.fill("ok-name")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Owner").fill("acme")
    repo = page.get_by_label("Repository", exact=True)
    repo.fill("bad name!")
    group = page.locator("fieldset", has=repo)
    expect(group.locator(".field-error")).to_contain_text("A repository name may contain")
    expect(repo).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Owner")).not_to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Host")).not_to_have_attribute("aria-invalid", "true")
