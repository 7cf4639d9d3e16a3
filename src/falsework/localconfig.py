"""The settings of ``falsework run`` read without pydantic (issue 17: the command
line's start).

``falsework.config.Settings`` is a pydantic-settings model of ~30 models; building
it costs a local run a third of its start. A local run needs a dozen scalars, so
``read_local`` reads the ``FALSEWORK_*`` variables itself, and only when it can
give exactly what ``Settings`` would: no YAML file (``FALSEWORK_CONFIG`` unset and
no ``./falsework.yaml``), and every ``FALSEWORK_*`` variable a scalar setting of
``FIELDS`` whose text it parses the way pydantic does (plain decimal numbers, the
bool words) within the same bounds. Anything else (a file, a section given as
JSON, an unknown variable, a value out of bounds, ``1e3``, `` 2``) returns
``None`` and the caller builds ``Settings``, which then reads it or rejects it with
its own message. A test checks that both agree on every variable listed here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

from falsework.actions import policies
from falsework.actions.integrations import Integrations

PACKAGE_ROOT = Path(__file__).resolve().parent


def _examples_dir() -> Path:
    """The example templates: inside the package when installed from a wheel
    (``pipx install``), else examples/templates/ beside src/ in a clone."""
    packaged = PACKAGE_ROOT / "examples" / "templates"
    return packaged if packaged.is_dir() else PACKAGE_ROOT.parent.parent / "examples" / "templates"


EXAMPLES_DIR = _examples_dir()

DEFAULT_DATA_DIR = Path(".falsework")

PREFIX = "falsework_"

Kind = Literal["str", "path", "bool", "int", "float", "log_format"]


@dataclass(frozen=True)
class Scalar:
    """A scalar setting as ``Settings`` declares it: its type, default and bounds."""

    kind: Kind
    default: object
    optional: bool = False  # `T | None`: the default is None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None


def _f(default: float | None, **bounds: float) -> Scalar:
    return Scalar("float", default, optional=default is None, **bounds)


def _i(default: int | None, **bounds: float) -> Scalar:
    return Scalar("int", default, optional=default is None, **bounds)


# Every scalar field of falsework.config.Settings (the sections, lists and the
# config file's own field are left to Settings); the test holds both equal.
FIELDS: dict[str, Scalar] = {
    "database_url": Scalar("str", ""),
    "data_dir": Scalar("path", DEFAULT_DATA_DIR),
    "work_dir": Scalar("path", Path("")),
    "templates": Scalar("str", ""),
    "publish_roots": Scalar("str", ""),
    "git_timeout": _f(120.0, gt=0),
    "git_allow_http": Scalar("bool", False),
    "update_parallel": _i(2, ge=1, le=64),
    "update_host_interval": _f(1.0, ge=0),
    "concurrency": _i(100, ge=0, le=10_000),
    "heartbeat_interval": _f(2.0, gt=0),
    "stale_timeout": _f(15.0, gt=0),
    "lease": _f(None, gt=0),
    "lease_margin": _f(None, gt=0),
    "db_statement_timeout": _f(None, gt=0),
    "db_connect_timeout": _f(5.0, gt=0),
    "db_keepalive": _i(2, ge=1),
    "poll_interval": _f(1.0, gt=0),
    "max_poll_interval": _f(5.0, gt=0),
    "max_claim_delay": _f(0.05, ge=0),
    "janitor_interval": _f(2.0, gt=0),
    "shutdown_grace": _f(30.0, ge=0),
    "max_running_per_user": _i(None, ge=1),
    "max_rss_mb": _i(None, ge=1),
    "secret_key": Scalar("str", None, optional=True),
    "secret_retention": _f(86_400.0, ge=0),
    "retention_completed": _f(30 * 86_400.0, ge=0),
    "retention_failed": _f(90 * 86_400.0, ge=0),
    "retention_cancelled": _f(7 * 86_400.0, ge=0),
    "retention_audit": _f(365 * 86_400.0, ge=0),
    "retention_interval": _f(60.0, gt=0),
    "retention_batch": _i(500, ge=1, le=100_000),
    "step_timeout": _f(3600.0, gt=0),
    "keep_workspace_on_failure": Scalar("bool", False),
    "render_timeout": _f(2.0, gt=0),
    "render_max_output": _i(10_000_000, gt=0),
    "render_threads": _i(2, ge=1, le=64),
    "max_each": _i(1_000, ge=1),
    "max_log_line": _i(65_536, ge=80),
    "max_task_log": _i(10_000_000, ge=1_000),
    "dry_run_max_files": _i(1_000, ge=0),
    "dry_run_max_bytes": _i(7_000_000, ge=0),
    "log_format": Scalar("log_format", "text"),
    "task_log": Scalar("bool", True),
    "cluster_metrics_interval": _f(15.0, gt=0),
    "cluster_metrics_lag": _f(30.0, ge=0),
    "host": Scalar("str", "127.0.0.1"),
    "port": _i(7007),
    "max_open_tasks_per_user": _i(None, ge=1),
    "long_poll_timeout": _f(30.0, gt=0),
    "sse_keepalive": _f(15.0, gt=0),
    "header_timeout": _f(10.0, gt=0),
    "body_timeout": _f(60.0, gt=0),
    "max_json_depth": _i(64, ge=4, le=200),
    "max_streams_per_user": _i(20, ge=1),
    "dry_run_workers": _i(2, ge=1, le=64),
    "dry_run_queue": _i(8, ge=0),
    "dry_run_timeout": _f(60.0, gt=0),
    "dry_run_memory_mb": _i(1024, ge=64),
    "dry_run_max_result": _i(10_000_000, gt=0),
    "dry_runs_per_user": _i(2, ge=1),
    "dry_runs_per_minute": _i(30, ge=1),
    "webhook_timeout": _f(10.0, gt=0),
    "webhook_max_tries": _i(12, ge=1),
    "webhook_retry_base": _f(10.0, gt=0),
    "webhook_retry_max": _f(3600.0, gt=0),
}

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
    if field.kind == "log_format":
        return text if text in ("text", "json") else None
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
    return Integrations(egress=egress, git=git)


@dataclass(frozen=True)
class LocalSettings:
    """What ``falsework run`` reads of the settings (the same names and meanings
    as ``Settings``, without sections: no integrations, no default environment),
    and in ``values`` every scalar setting, each checked."""

    values: Mapping[str, object]
    data_dir: Path
    work_dir: Path
    templates: str
    git_timeout: float
    update_parallel: int
    step_timeout: float
    keep_workspace_on_failure: bool
    render_timeout: float
    render_max_output: int
    render_threads: int
    max_each: int
    max_log_line: int
    max_task_log: int
    dry_run_max_files: int
    dry_run_max_bytes: int

    @classmethod
    def of(cls, values: Mapping[str, object]) -> LocalSettings:
        read = {f.name: values[f.name] for f in fields(cls) if f.name != "values"}
        return cls(values, **read)  # type: ignore[arg-type]  # FIELDS holds the types

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
        if name in given or name not in FIELDS:
            return None
        given[name] = text
    values: dict[str, object] = {}
    for name, field in FIELDS.items():
        if name not in given:
            values[name] = field.default
            continue
        parsed = _parse(field, given[name])
        if parsed is None:
            return None
        values[name] = parsed
    return LocalSettings.of(values)
