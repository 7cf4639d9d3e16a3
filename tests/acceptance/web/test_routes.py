"""The routes serving the page, through the real server (no browser needed)."""

from __future__ import annotations

import re

import httpx
import pytest

from falsework.web import STATIC_DIR

from .conftest import Server

SHELL_PATHS = [
    "/create",
    "/create/templates/default/publish-service",
    "/create/tasks",
    "/create/tasks/00000000-0000-0000-0000-000000000000",
]


def test_root_redirects_to_create(server: Server) -> None:
    response = httpx.get(f"{server.url}/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/create"


@pytest.mark.parametrize("path", SHELL_PATHS)
def test_page_urls_serve_the_shell(server: Server, path: str) -> None:
    response = httpx.get(server.url + path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/js/app.js">' in response.text
    assert "default-src 'self'" in response.headers["content-security-policy"]


def test_every_module_the_shell_loads_is_served(server: Server) -> None:
    """app.js and everything it imports, transitively, with a JavaScript media type."""
    seen: set[str] = set()
    todo = ["js/app.js"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        response = httpx.get(f"{server.url}/static/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"].startswith("text/javascript"), name
        todo += [f"js/{m}" for m in re.findall(r"from '\./([\w-]+\.js)'", response.text)]
        todo += [
            f"vendor/{m}" for m in re.findall(r"from '\.\./vendor/([\w.-]+\.js)'", response.text)
        ]
    on_disk = {f"js/{p.name}" for p in (STATIC_DIR / "js").glob("*.js")}
    on_disk |= {f"vendor/{p.name}" for p in (STATIC_DIR / "vendor").glob("*.js")}
    assert seen == on_disk  # no module is dead weight, none is missing
    css = httpx.get(f"{server.url}/static/style.css")
    assert css.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize(
    "path",
    ["/static/nope.js", "/static/../routes.py", "/static/%2e%2e/routes.py", "/static/js"],
)
def test_nothing_outside_the_static_folder(server: Server, path: str) -> None:
    response = httpx.get(server.url + path)
    assert response.status_code == 404
    assert "STATIC_DIR" not in response.text
