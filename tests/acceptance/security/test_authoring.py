"""The page's own routes (issue 13: the template editor, the pickers, broken templates),
attacked as plain users through a real `falsework serve`: validating a template body and
reading a template's source are a template author's; a restricted template's source
stays invisible; a body cannot write outside its scratch folder nor expand YAML aliases;
broken templates never reach users' galleries.

alice and bob are plain users; carol is a template author through her group (platform),
which may not run the restricted api-vault template; admin may do everything.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest

from support.servers import TEMPLATES, Server, ServerFactory, auth_config, token_of

OWN = "/api/falsework/v1"
API = "/api/scaffolder"
SECURITY_TEMPLATES = Path(__file__).resolve().parent / "templates"
pytestmark = pytest.mark.slow

BODY = textwrap.dedent(
    """\
    apiVersion: scaffolder.backstage.io/v1beta3
    kind: Template
    metadata: {name: body}
    spec:
      type: service
      steps:
        - id: log
          action: debug:log
          input: {message: hi}
    """
)
BROKEN = textwrap.dedent(
    """\
    apiVersion: scaffolder.backstage.io/v1beta3
    kind: Template
    metadata: {name: authoring-broken, title: Broken on purpose}
    spec:
      type: service
      parameters:
        - properties:
            name: {type: 12}
      steps:
        - id: log
          action: debug:nope
    """
)
LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


def _token(name: str, user: str, **extra: Any) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(token_of(name).encode()).hexdigest(), "user": user, **extra}


@pytest.fixture(scope="module")
def server(
    module_database: str, servers: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> Server:
    broken = tmp_path_factory.mktemp("authoring-templates") / "authoring-broken"
    broken.mkdir()
    (broken / "template.yaml").write_text(BROKEN, encoding="utf-8")
    config = auth_config()
    config["auth"]["tokens"].append(
        _token("carol", "user:default/carol", groups=["group:default/platform"])
    )
    config["auth"]["roles"] = {"templates:author": ["group:default/platform"]}
    return servers(
        module_database,
        config=config,
        env={"FALSEWORK_TEMPLATES": f"{TEMPLATES}:{SECURITY_TEMPLATES}:{broken.parent}"},
    )


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_the_authoring_routes_need_the_author_role(server: Server) -> None:
    for who in ("alice", "bob"):
        client = server.client(who)
        refused = client.post(f"{OWN}/templates/validate", json={"template": BODY})
        assert refused.status_code == 403, refused.text
        assert "templates:author" in refused.json()["error"]["message"]
        source = client.get(f"{OWN}/templates/default/hello/source")
        assert source.status_code == 403, source.text
    for who in ("carol", "admin"):
        client = server.client(who)
        done = client.post(f"{OWN}/templates/validate", json={"template": BODY})
        assert done.status_code == 200, done.text
        assert done.json()["problems"] == []
        assert client.get(f"{OWN}/templates/default/hello/source").status_code == 200
    assert (
        server.client().post(f"{OWN}/templates/validate", json={"template": BODY}).status_code
        == 401
    )


def test_a_restricted_templates_source_stays_invisible(server: Server) -> None:
    # carol is an author, but her groups may not run api-vault: to her it does not exist
    hidden = server.client("carol").get(f"{OWN}/templates/default/api-vault/source")
    unknown = server.client("carol").get(f"{OWN}/templates/default/no-such/source")
    assert hidden.status_code == unknown.status_code == 404
    assert "api-vault" in hidden.json()["error"]["message"]
    assert (
        server.client("admin").get(f"{OWN}/templates/default/api-vault/source").status_code == 200
    )


@pytest.mark.parametrize("path", ["../../escape-authoring.txt", "/tmp/escape-authoring.txt"])
def test_a_body_writes_nothing_outside_its_scratch_folder(server: Server, path: str) -> None:
    answer = server.client("carol").post(
        f"{OWN}/templates/validate",
        json={"template": BODY, "directoryContents": [{"path": path, "base64Content": _b64("x")}]},
    )
    assert answer.status_code == 400, answer.text
    assert "directoryContents" in answer.json()["error"]["message"]
    for where in (Path(tempfile.gettempdir()), Path("/tmp"), Path(tempfile.gettempdir()).parent):
        assert not (where / "escape-authoring.txt").exists()


def test_yaml_aliases_are_refused_not_expanded(server: Server) -> None:
    answer = server.client("carol").post(f"{OWN}/templates/validate", json={"template": LAUGHS})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "template" not in body
    assert [p["line"] for p in body["problems"]] == [2]
    assert "aliases" in body["problems"][0]["message"]


def test_broken_templates_never_reach_users(server: Server) -> None:
    for who in ("alice", "bob"):
        names = {t["name"] for t in server.client(who).get(f"{API}/v2/templates").json()}
        assert "hello" in names and "authoring-broken" not in names
    for who in ("carol", "admin"):
        listed = {t["name"]: t for t in server.client(who).get(f"{API}/v2/templates").json()}
        broken = listed["authoring-broken"]
        assert broken["broken"] is True
        messages = " ".join(p["message"] for p in broken["problems"])
        assert "not valid JSON Schema" in messages and "unknown action 'debug:nope'" in messages
        assert all(p["file"] == "template.yaml" for p in broken["problems"])  # no server path
        assert "broken" not in listed["hello"]
    assert "broken template template:default/authoring-broken" in server.log.read_text()
