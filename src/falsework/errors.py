"""One exception root for Falsework.

Each class's docstring is its default message. ``name`` is what the API puts in
Backstage's error body (``{"error": {"name", "message"}}``); ``status_code`` is the
HTTP status the API layer maps it to. Lower layers never import the API: they only
raise these.
"""

from __future__ import annotations


class FalseworkError(Exception):
    """Falsework failed."""

    status_code: int = 500

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__class__.__doc__ or self.__class__.__name__).strip())

    @property
    def name(self) -> str:
        return self.__class__.__name__

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class InputError(FalseworkError):
    """The input is not valid."""

    status_code = 400


class NotFoundError(FalseworkError):
    """Not found."""

    status_code = 404


class ConflictError(FalseworkError):
    """The request conflicts with the current state."""

    status_code = 409


class AuthenticationError(FalseworkError):
    """Missing or unknown credentials."""

    status_code = 401


class NotAllowedError(FalseworkError):
    """Not allowed."""

    status_code = 403


class TooLargeError(InputError):
    """The request, or what it would send back, is larger than this server allows."""

    status_code = 413


class TooManyRequestsError(FalseworkError):
    """Too many requests."""

    status_code = 429

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        # seconds after which trying again may succeed (the API's Retry-After)
        self.retry_after = retry_after


class DatabaseError(FalseworkError):
    """The database refused the statement."""


class DatabaseUnavailableError(DatabaseError):
    """The database cannot be reached."""

    status_code = 503


class LeaseLostError(FalseworkError):
    """This worker no longer owns the task (its claim token was superseded)."""

    status_code = 409


class TaskWriteError(FalseworkError):
    """The database refused this task's writes (events, step state or checkpoints)."""


class TaskFailedError(FalseworkError):
    """A task's run failed (a step's error, as Backstage names it: ``name``)."""

    def __init__(self, message: str | None = None, name: str = "Error") -> None:
        super().__init__(message)
        self._name = name

    @property
    def name(self) -> str:
        return self._name


class TemplateError(InputError):
    """The template is not valid."""


class TemplateSyntaxError(TemplateError):
    """A template expression does not parse."""


class TemplateSecurityError(TemplateError):
    """A template expression tried to reach Python internals."""


class TemplateRenderError(TemplateError):
    """A template expression failed to render."""


class ActionError(FalseworkError):
    """An action failed."""


class UnsafePathError(ActionError):
    """A path leaves the workspace."""

    # Where it reaches HTTP (a dry run's uploaded files), the request was at fault.
    status_code = 400


class StepTimeoutError(ActionError):
    """A step ran longer than its timeout."""


class UnreachableError(ActionError):
    """A host could not be reached.

    One message for every reason (refused by the egress policy, no such name,
    connection refused, reset or timed out), so a failure never tells a user
    whether a port is open or a name resolves; the reason goes to the log."""


class ActionSkipped(FalseworkError):
    """The action had nothing to do here; the step ends ``skipped`` with this message as a
    warning (catalog:register with no Backstage configured)."""


class SettingsError(ValueError):
    """Settings that cannot be read, said in one line (``falsework.config``
    builds it): each bad setting, what is wrong with it and, unless it may hold a
    secret, the value given. Every command prints it as one line and exits 2."""
