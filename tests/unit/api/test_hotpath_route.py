"""The create's lean path (api/hotpath.py) resolves by hand what FastAPI's route
would solve: these tests pin the route's dependencies to the lean path's list, so a
dependency added to the route (to its signature, its router or the app) and not to
the lean path fails here rather than being skipped by every well-formed create."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.dependencies.models import Dependant

from falsework.api import hotpath, tasks
from falsework.api.app import PREFIX, create_app
from falsework.config import Settings

PATH = f"{PREFIX}/v2/tasks"


def _routes(routes: Iterable[Any]) -> Iterator[Any]:
    """The routes as FastAPI matches them: an included router (FastAPI >= 0.165
    keeps it nested) stands for its routes with what the include added to each."""
    for route in routes:
        if hasattr(route, "effective_candidates"):
            yield from _routes(route.effective_candidates())
        else:
            yield route


def _create_route(routes: Iterable[Any], path: str = PATH) -> Any:
    (route,) = [
        r
        for r in _routes(routes)
        if getattr(r, "path", None) == path and "POST" in (getattr(r, "methods", None) or ())
    ]
    return route


def _app_route() -> Any:
    return _create_route(create_app(Settings(auth={"tokens": []})).router.routes)


def _calls(dependant: Dependant) -> list[Any]:
    """Every dependency the route solves, depth first, as FastAPI solves them."""
    calls: list[Any] = []
    for sub in dependant.dependencies:
        calls.extend(_calls(sub))
        calls.append(sub.call)
    return calls


def _params(dependant: Dependant) -> list[str]:
    """What FastAPI would extract from the request for the route or any of its
    dependencies (path, query, header, cookie parameters)."""
    names = [
        f"{kind}:{param.name}"
        for kind, params in (
            ("path", dependant.path_params),
            ("query", dependant.query_params),
            ("header", dependant.header_params),
            ("cookie", dependant.cookie_params),
        )
        for param in params
    ]
    for sub in dependant.dependencies:
        names.extend(_params(sub))
    return names


def test_the_lean_path_stands_for_the_create_route() -> None:
    assert _app_route().endpoint is tasks.create_task


def test_the_route_solves_no_dependency_the_lean_path_skips() -> None:
    assert _calls(_app_route().dependant) == list(hotpath.DEPENDENCIES)


def test_the_route_extracts_no_parameter_the_lean_path_skips() -> None:
    # the Idempotency-Key header is read by tasks.create itself, in both paths
    assert _params(_app_route().dependant) == []


def test_the_route_validates_the_body_the_lean_path_validates() -> None:
    body = _app_route().dependant.body_params
    assert [param.field_info.annotation for param in body] == [hotpath.BODY]


def test_a_dependency_added_where_the_route_is_included_breaks_the_pin() -> None:
    # the pin can fail: a dependency added on the way to the route reaches its dependant
    async def extra() -> None:
        return None

    outer = APIRouter()
    outer.include_router(tasks.router, prefix=PREFIX, dependencies=[Depends(extra)])
    calls = _calls(_create_route(outer.routes).dependant)
    assert extra in calls
    assert calls != list(hotpath.DEPENDENCIES)
