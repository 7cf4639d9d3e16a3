"""Routes serving the page: one HTML shell for every page URL, and its static files.

The page is plain ES modules and CSS under ``static/``; there is no build step. Every
page URL (Backstage's shapes under ``/create``) returns the same shell, and the
browser-side router picks the view.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

STATIC_DIR = Path(__file__).resolve().parent / "static"

# The shell and its assets are small and change with each release: the browser
# revalidates them (ETag / Last-Modified) instead of caching blindly.
_NO_CACHE = {"Cache-Control": "no-cache"}
_SHELL_HEADERS = {
    **_NO_CACHE,
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}

router = APIRouter(include_in_schema=False)


def _shell() -> HTMLResponse:
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return HTMLResponse(html, headers=_SHELL_HEADERS)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/create", status_code=307)


@router.get("/create")
async def gallery() -> HTMLResponse:
    return _shell()


@router.get("/create/templates/{namespace}/{name}")
async def template_form(namespace: str, name: str) -> HTMLResponse:
    del namespace, name  # the browser reads them from the URL
    return _shell()


@router.get("/create/tasks")
async def task_list() -> HTMLResponse:
    return _shell()


@router.get("/create/scaffolds")
async def scaffolds() -> HTMLResponse:
    return _shell()


@router.get("/edit")
async def editor() -> HTMLResponse:
    return _shell()


@router.get("/admin")
async def admin() -> HTMLResponse:
    # the shell for everyone: the API behind the page answers only admins
    return _shell()


@router.get("/create/tasks/{task_id}")
async def task_page(task_id: str) -> HTMLResponse:
    del task_id
    return _shell()


def static_file(path: str) -> Path:
    """The file under ``STATIC_DIR`` named by ``path``; 404 for anything outside it."""
    target = (STATIC_DIR / path).resolve()
    if not target.is_relative_to(STATIC_DIR) or not target.is_file():
        raise HTTPException(status_code=404, detail=f"No static file '{path}'")
    return target


@router.get("/static/{path:path}")
async def static(path: str) -> FileResponse:
    target = static_file(path)
    media_type = _MEDIA_TYPES.get(target.suffix, "application/octet-stream")
    return FileResponse(target, media_type=media_type, headers=_NO_CACHE)
