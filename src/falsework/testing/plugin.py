"""The pytest plugin (registered as ``falsework`` in the ``pytest11`` entry points):
the ``render_template`` fixture, for teams that prefer writing asserts to
keeping snapshots (the pytest-copie habit)::

    def test_no_dockerfile(render_template):
        result = render_template("templates/python-service", {"name": "svc", ...})
        assert result.status == "completed"
        assert "Dockerfile" not in result.files
        assert result.files["README.md"].text.startswith("# svc")

It runs what ``falsework templates test`` runs for one case: the answers checked
page by page (a list of mappings: one per page), then a rehearsal (recorded
pushes, canned HTTP answers, a fixed user and seed). With ``upgrade_from=REF``
it runs an upgrade case: a repository made at that ref of the template's git
repository, with the team's ``edits`` and ``deleted`` files, updated to the
working copy; ``result.files`` is the updated repository and ``result.update``
says the conflicts. Nothing heavy is imported until the fixture is used.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from falsework.testing.cases import Case
    from falsework.testing.rehearse import File, LocalRehearser, Rendered
    from falsework.testing.upgrade import Upgrader


class TemplateRenderer:
    """Renders templates with given answers; see the module's docstring."""

    def __init__(self, rehearser: LocalRehearser, upgrader: Upgrader | None = None) -> None:
        self._rehearser = rehearser
        self._upgrader = upgrader

    def __call__(
        self,
        template: str | Path,
        values: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        secrets: Mapping[str, str] | None = None,
        http: Sequence[Mapping[str, Any]] = (),
        user: Mapping[str, Any] | None = None,
        seed: str = "pytest",
        upgrade_from: str | None = None,
        edits: Mapping[str, str | bytes] | None = None,
        deleted: Sequence[str] = (),
        overrides: Mapping[str, Any] | None = None,
    ) -> Rendered:
        """``template``: a template.yaml or its folder. ``values``: the answers
        (a list: one mapping per page). ``http``: canned answers for http:request
        (``{request: {method, url}, response: {status, headers, body}}``).
        ``upgrade_from``: a ref of the template's git repository, the version the
        repository was made at (``values`` its answers); ``edits`` (path: text or
        bytes) and ``deleted``: what its team changed since; ``overrides``:
        answers the working copy needs (``falsework update --set``)."""
        from falsework.actions.rehearsal import HttpAnswer
        from falsework.testing.cases import Case, Expect
        from falsework.testing.rehearse import File, rehearse
        from falsework.testing.upgrade import Upgrader

        paged = isinstance(values, Sequence) and not isinstance(values, str | bytes | Mapping)
        pages = [dict(p) for p in values] if paged else [dict(values or {})]  # type: ignore[union-attr, arg-type]
        case = Case(
            template=_load(Path(template)),
            name="pytest",
            pages=pages,
            secrets=dict(secrets or {}),
            expect=Expect(user=dict(user) if user is not None else None, seed=seed),
            http=[HttpAnswer.from_json(a, f"http[{i}]") for i, a in enumerate(http)],
            paged=paged,
        )
        if upgrade_from is not None:
            case.expect = Expect.model_validate(
                {"upgrade-from": upgrade_from, "deleted": list(deleted), "set": overrides or {}}
            )
            files = {
                path: File(data.encode() if isinstance(data, str) else data)
                for path, data in (edits or {}).items()
            }
            upgrader = self._upgrader or Upgrader()
            work = _upgrade(upgrader, case, files)
        else:
            work = rehearse(case, self._rehearser)
        # in a thread of its own: the test may be running an event loop already
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, work).result()


async def _upgrade(upgrader: Upgrader, case: Case, edits: Mapping[str, File]) -> Rendered:
    """One upgrade, nothing kept for the next (the test may change the template)."""
    try:
        return await upgrader.upgrade(case, edits)
    finally:
        await upgrader.aclose()


def _load(path: Path) -> Any:
    from falsework.errors import FalseworkError
    from falsework.templates import load_templates
    from falsework.templates.catalog import candidate_files

    found = [t for f in candidate_files(path) for t in load_templates(f)]
    if len(found) != 1:
        what = "no Template" if not found else f"{len(found)} Templates"
        raise FalseworkError(f"{path}: {what} found; name one template.yaml or its folder")
    return found[0]


@pytest.fixture(scope="session")
def _falsework_rehearser() -> Iterator[LocalRehearser]:
    from falsework.testing.rehearse import LocalRehearser

    rehearser = LocalRehearser(cache=False)
    try:
        yield rehearser
    finally:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, rehearser.aclose()).result()


@pytest.fixture(scope="session")
def _falsework_upgrader() -> Upgrader:
    from falsework.testing.upgrade import Upgrader

    return Upgrader()  # its runner made once; each upgrade cleans up after itself


@pytest.fixture
def render_template(
    _falsework_rehearser: LocalRehearser, _falsework_upgrader: Upgrader
) -> TemplateRenderer:
    """Render a template with given answers: ``render_template(path, values)``
    returns its status, files, output, steps, events and recorded calls."""
    return TemplateRenderer(_falsework_rehearser, _falsework_upgrader)
