"""The forge test server itself: it refuses what GitHub's OpenAPI description refuses
(and an unknown field), answers complete responses, and serves real git over HTTP
with token authentication. Every other forge test relies on this."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from openapi_spec_validator import validate

from support.forge import Contract, ForgeServer, GitHub
from support.forge.contract import LOCAL_SPECS, SPECS_DIR

TOKEN = "ghp_forge_test_token"


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[ForgeServer]:
    host = GitHub(
        tmp_path / "forge",
        tokens={TOKEN: "robot"},
        owners={"acme": "Organization", "robot": "User"},
        teams={"acme": ["platform"]},
    )
    server = ForgeServer(host).start()
    yield server
    server.stop()


def api(forge: ForgeServer) -> httpx.Client:
    return httpx.Client(
        base_url=forge.url + "/api/v3", headers={"Authorization": f"token {TOKEN}"}, timeout=30
    )


def test_a_valid_request_is_served_with_a_complete_response(forge: ForgeServer) -> None:
    with api(forge) as client:
        made = client.post("/orgs/acme/repos", json={"name": "svc", "private": True})
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["full_name"] == "acme/svc"
        assert body["clone_url"] == f"{forge.url}/acme/svc.git"
        assert body["visibility"] == "private"
        # fields the state does not know are filled from the schema (required ones)
        assert "archive_url" in body and "node_id" in body
        assert client.get("/repos/acme/svc").json()["private"] is True
    assert forge.take_violations() == []


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"name": "svc", "privat": True}, "privat"),  # a misspelt field
        ({"name": "svc", "private": "yes"}, "boolean"),  # a wrong type
        ({"private": True}, "name"),  # a missing required field
    ],
)
def test_a_request_the_spec_refuses_is_a_violation(
    forge: ForgeServer, body: dict[str, object], words: str
) -> None:
    with api(forge) as client:
        answer = client.post("/orgs/acme/repos", json=body)
    assert answer.status_code == 422
    found = forge.take_violations()
    assert len(found) == 1 and words in found[0] and "repos/create-in-org" in found[0]
    assert forge.host.repos == {}  # type: ignore[attr-defined]


def test_an_unknown_path_and_an_unimplemented_operation_are_violations(forge: ForgeServer) -> None:
    with api(forge) as client:
        assert client.get("/no/such/endpoint/at/all").status_code == 404
        assert client.delete("/repos/acme/svc").status_code == 501
    found = forge.take_violations()
    assert len(found) == 2
    assert "no operation" in found[0] and "repos/delete" in found[1]


def test_requests_without_a_known_token_are_refused(forge: ForgeServer) -> None:
    with httpx.Client(base_url=forge.url + "/api/v3", timeout=30) as client:
        assert client.get("/repos/acme/svc").status_code == 401
        bad = {"Authorization": "token wrong"}
        assert client.get("/repos/acme/svc", headers=bad).status_code == 401
    assert forge.take_violations() == []


def test_git_over_http_needs_the_token_and_keeps_what_was_pushed(
    forge: ForgeServer, tmp_path: Path
) -> None:
    with api(forge) as client:
        assert client.post("/orgs/acme/repos", json={"name": "svc"}).status_code == 201
    work = tmp_path / "work"
    work.mkdir()
    (work / "README.md").write_text("hello\n")
    env = {"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@x", "-C", str(work)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True, env=env)
    subprocess.run([*git, "add", "-A"], check=True, env=env)
    subprocess.run([*git, "commit", "-qm", "first"], check=True, env=env)
    anonymous = subprocess.run(
        [*git, "push", f"{forge.url}/acme/svc.git", "main"], capture_output=True, env=env
    )
    assert anonymous.returncode != 0
    authed = f"http://x-access-token:{TOKEN}@{forge.netloc}/acme/svc.git"
    subprocess.run([*git, "push", "-q", authed, "main"], check=True, env=env)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", authed, str(clone)], check=True, env=env)
    assert (clone / "README.md").read_text() == "hello\n"
    assert forge.pushes == [("acme/svc", "robot")]
    with api(forge) as client:
        assert client.get("/repos/acme/svc").json()["default_branch"] == "main"
    assert forge.take_violations() == []


@pytest.mark.parametrize("name", sorted(LOCAL_SPECS))
def test_the_descriptions_written_here_are_valid_openapi_with_strict_bodies(name: str) -> None:
    """The hosts whose official description no registry ships (see contract.py): ours
    must be a valid OpenAPI 3.0 document, and every request body is checked strictly."""
    validate(yaml.safe_load((SPECS_DIR / LOCAL_SPECS[name]).read_text()))
    host = Contract(name)
    for route, item in host.raw["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                errors = host.request_errors(
                    method.upper(),
                    _example(route),
                    {},
                    b'{"surely_unknown": 1}',
                    "application/json",
                )
                assert any("surely_unknown" in e for e in errors), (name, method, route)


def _example(route: str) -> str:
    """A concrete path of a templated one (``/projects/{id}`` -> ``/projects/1``)."""
    return re.sub(r"\{[^}]+\}", "1", route)
