"""The settings of ``falsework run`` read without pydantic (issue 17: the command
line's start).

``falsework.config.Settings`` is a pydantic-settings model of ~30 models; building
it costs a local run a third of its start. A local run needs a dozen scalars, so
``read_local`` reads the ``FALSEWORK_*`` variables itself, and only when it can
give exactly what ``Settings`` would: no YAML file (``FALSEWORK_CONFIG`` unset and
no ``./falsework.yaml``), and every ``FALSEWORK_*`` variable a scalar setting
(``falsework.settingtable``, the table ``Settings`` makes its fields of) whose text
it parses the way pydantic does (plain decimal numbers, the bool words) within the
same bounds. Anything else (a file, a section given as JSON, an unknown variable, a
value out of bounds, ``1e3``, `` 2``) returns ``None`` and the caller builds
``Settings``, which then reads it or rejects it with its own message. A test checks
that both readers agree on every scalar setting.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from falsework.settingtable import SCALARS, Scalar, Scalars

if TYPE_CHECKING:
    # imported where the policies are built: a local run whose actions take no
    # settings never builds them (``wiring.workflow_runner``)
    from falsework.actions import policies
    from falsework.actions.integrations import Integrations

PACKAGE_ROOT = Path(__file__).resolve().parent


def _examples_dir() -> Path:
    """The example templates: inside the package when installed from a wheel
    (``pipx install``), else examples/templates/ beside src/ in a clone."""
    packaged = PACKAGE_ROOT / "examples" / "templates"
    return packaged if packaged.is_dir() else PACKAGE_ROOT.parent.parent / "examples" / "templates"


EXAMPLES_DIR = _examples_dir()

PREFIX = "falsework_"

_INT = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


def _parse(field: Scalar, text: str) -> object | None:
    """``text`` as ``Settings`` reads it, or None when not sure it would."""
    number: float
    if field.kind == "str":
        return text
    if field.kind == "path":
        return Path(text) if text else None
    if field.kind == "choice":
        return text if text in field.choices else None
    if field.kind == "bool":
        return True if text in _TRUE else False if text in _FALSE else None
    if field.kind == "int" and _INT.fullmatch(text):
        number = int(text)
    elif field.kind == "float" and _FLOAT.fullmatch(text):
        number = float(text)
    else:
        return None
    if field.ge is not None and not number >= field.ge:
        return None
    if field.gt is not None and not number > field.gt:
        return None
    if field.le is not None and not number <= field.le:
        return None
    return number


def config_file(environ: Mapping[str, str]) -> Path | None:
    """The YAML file ``Settings`` reads: ``FALSEWORK_CONFIG``, else ``./falsework.yaml``."""
    named = environ.get("FALSEWORK_CONFIG")
    if named:
        return Path(named)
    local = Path("falsework.yaml")
    return local if local.exists() else None


def work_dir_of(work_dir: Path, data_dir: Path) -> Path:
    return work_dir if str(work_dir) not in ("", ".") else data_dir / "work"


def paths(value: str) -> list[Path]:
    """A ``:``-separated list of folders (empty entries skipped)."""
    return [Path(p) for p in value.split(":") if p]


def template_dirs_of(templates: str) -> list[Path]:
    return paths(templates) or [Path("templates"), EXAMPLES_DIR]


def local_policies(
    *,
    data_dir: Path,
    git_timeout: float,
    update_parallel: int,
    credentials: tuple[policies.GitCredential, ...],
    forges: Callable[[policies.EgressPolicy, policies.GitPolicy], Integrations],
) -> tuple[object, ...]:
    """The action families' settings for ``falsework run``: the user's own machine,
    where fetch:* reads and publish:git writes any folder the user can, and no
    egress policy applies (git uses the user's own configuration)."""
    from falsework.actions import policies

    remotes = Path(os.path.abspath(data_dir / "remotes"))
    egress = policies.EgressPolicy.unrestricted()
    git = policies.GitPolicy.local(timeout=git_timeout, credentials=credentials)
    everywhere = (Path("/"),)
    publish = policies.PublishPolicy(remotes_dir=remotes, roots=everywhere, git=git)
    integrations = forges(egress, git)
    source = policies.SourcePolicy(roots=everywhere, git=git)
    mine = (egress, git, source, publish, integrations)
    return (*mine, policies.UpdatePolicy(publish, integrations, None, mine, update_parallel))


def _no_forges(egress: policies.EgressPolicy, git: policies.GitPolicy) -> Integrations:
    from falsework.actions.integrations import Integrations

    return Integrations(egress=egress, git=git)


class LocalSettings(Scalars):
    """What ``falsework run`` reads of the settings: every scalar setting, each
    checked (attributes of the same names and meanings as ``Settings``'), without
    sections: no integrations, no default environment."""

    def __init__(self, values: Mapping[str, object]) -> None:
        self.values = dict(values)
        vars(self).update(self.values)

    @property
    def resolved_work_dir(self) -> Path:
        return work_dir_of(self.work_dir, self.data_dir)

    @property
    def template_dirs(self) -> list[Path]:
        return template_dirs_of(self.templates)

    def default_environment(self) -> tuple[dict[str, str], dict[str, str]]:
        """``scaffolder.defaultEnvironment``: a section, so none here."""
        return {}, {}

    def action_policies(self, *, local: bool = False) -> tuple[object, ...]:
        """As ``Settings.action_policies`` (local only: no section, no credential)."""
        assert local, "LocalSettings is for falsework run"
        return local_policies(
            data_dir=self.data_dir,
            git_timeout=self.git_timeout,
            update_parallel=self.update_parallel,
            credentials=(),
            forges=_no_forges,
        )


def read_local(environ: Mapping[str, str] | None = None) -> LocalSettings | None:
    """The settings of ``environ`` (default ``os.environ``) when ``Settings``
    would read exactly these (see the module's docstring), else None."""
    env = os.environ if environ is None else environ
    if config_file(env) is not None:
        return None
    given: dict[str, str] = {}
    for key, text in env.items():
        lower = key.lower()  # Settings reads the variables case-insensitively
        if not lower.startswith(PREFIX):
            continue
        name = lower.removeprefix(PREFIX)
        if name in given or name not in SCALARS:
            return None
        given[name] = text
    values: dict[str, object] = {}
    for name, field in SCALARS.items():
        if name not in given:
            values[name] = field.default
            continue
        parsed = _parse(field, given[name])
        if parsed is None:
            return None
        values[name] = parsed
    return LocalSettings(values)
