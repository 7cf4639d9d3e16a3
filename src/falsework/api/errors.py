"""Backstage-shaped error bodies for every failure the API reports.

Backstage answers errors with ``{error: {name, message}, request: {method, url},
response: {statusCode}}``, where ``url`` is relative to the plugin's mount
(``/v2/tasks/...``). Parameter validation is the one exception: it answers 400
with ``{errors: [...]}``, one entry per failing field.
"""

from __future__ import annotations

import errno
import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from falsework.api.outage import OUTAGES, RETRY_AFTER
from falsework.errors import (
    AuthenticationError,
    DatabaseUnavailableError,
    FalseworkError,
    NotAllowedError,
    TooManyRequestsError,
)
from falsework.types import JSONObject

log = logging.getLogger("falsework.api")

MOUNT = "/api/scaffolder"

_HTTP_NAMES = {
    400: "InputError",
    401: "AuthenticationError",
    403: "NotAllowedError",
    404: "NotFoundError",
    405: "MethodNotAllowedError",
    408: "RequestTimeoutError",
    409: "ConflictError",
    413: "PayloadTooLargeError",
    415: "UnsupportedMediaTypeError",
    421: "MisdirectedRequestError",
    422: "InputError",
    429: "TooManyRequestsError",
    503: "ServiceUnavailableError",
}


def _relative_url(path: str, query: str) -> str:
    url = path[len(MOUNT) :] if path.startswith(MOUNT + "/") else path
    return f"{url}?{query}" if query else url


def error_body(
    method: str, path: str, query: str, status: int, name: str, message: str
) -> JSONObject:
    return {
        "error": {"name": name, "message": message},
        "request": {"method": method, "url": _relative_url(path, query)},
        "response": {"statusCode": status},
    }


def error_response(
    request: Request,
    status: int,
    name: str,
    message: str,
    headers: dict[str, str] | None = None,
    extra: JSONObject | None = None,
) -> JSONResponse:
    """Backstage's error body; ``extra``: fields of the error's own beside it."""
    body = error_body(request.method, request.url.path, request.url.query, status, name, message)
    body.update(extra or {})
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse(body, status_code=status, headers=headers)


def _describe(errors: list[Any]) -> str:
    parts = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else str(err.get("msg")))
    return "; ".join(parts) or "The request is malformed."


async def _audit_refusal(request: Request, exc: FalseworkError) -> None:
    """A refusal's audit entry: 403s and hidden templates of a known caller (table
    and log), 401s (log only)."""
    from falsework.api import audit
    from falsework.api.auth import HiddenTemplateError

    services = getattr(request.app.state, "services", None)
    where = f"{request.method} {request.url.path}"
    if isinstance(exc, AuthenticationError):
        client = request.client.host if request.client else None
        audit.say(
            audit.ANONYMOUS, audit.AUTH_FAILED, where, {"client": client, "reason": exc.message}
        )
        return
    if services is None or not isinstance(exc, NotAllowedError | HiddenTemplateError):
        return
    identity = getattr(request.state, "identity", None)
    actor = identity.ref if identity is not None else audit.ANONYMOUS
    if isinstance(exc, HiddenTemplateError):
        await services.audit.record(actor, audit.DENIED, exc.template, route=where)
    else:
        await services.audit.record(actor, audit.DENIED, where, reason=exc.message)


async def _falsework_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FalseworkError)
    if exc.status_code in (401, 403, 404):
        await _audit_refusal(request, exc)
    field_errors = getattr(exc, "errors", None)
    if exc.status_code == 400 and isinstance(field_errors, list):
        return JSONResponse({"errors": field_errors}, status_code=400)
    if isinstance(exc, DatabaseUnavailableError):
        # the store's detail (driver, host) goes to the log, once per outage, not
        # to the caller
        OUTAGES.note(f"{request.method} {request.url.path}", exc)
        return error_response(
            request,
            503,
            exc.name,
            "The database cannot be reached.",
            {"Retry-After": str(RETRY_AFTER)},
        )
    if exc.status_code >= 500:
        log.error("%s on %s %s: %s", exc.name, request.method, request.url.path, exc.message)
    headers = None
    if isinstance(exc, TooManyRequestsError) and exc.retry_after is not None:
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    extra = getattr(exc, "extra", None)  # e.g. the answers an update needs (updates/answers.py)
    return error_response(
        request, exc.status_code, exc.name, exc.message, headers, extra if extra else None
    )


async def _malformed(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(request, 422, "InputError", _describe(list(exc.errors())))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    name = _HTTP_NAMES.get(exc.status_code, "Error")
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"No route for {request.method} {request.url.path}"
    return error_response(request, exc.status_code, name, message)


# errno values of a file operation failing (a name too long, a full disk): no
# database outage (the stores raise DatabaseUnavailableError for those).
_FILE_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ENAMETOOLONG",
        "ENOENT",
        "EACCES",
        "EPERM",
        "ENOSPC",
        "EDQUOT",
        "EROFS",
        "EEXIST",
        "ENOTDIR",
        "EISDIR",
        "ELOOP",
        "ENOTEMPTY",
        "EFBIG",
        "EXDEV",
        "EMFILE",
        "ENFILE",
    )
    if hasattr(errno, name)
)


def is_file_error(exc: BaseException) -> bool:
    """An OSError of the file system, not of a connection."""
    if not isinstance(exc, OSError) or isinstance(exc, ConnectionError | TimeoutError):
        return False
    return exc.filename is not None or exc.errno in _FILE_ERRNOS


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if is_file_error(exc):
        assert isinstance(exc, OSError)
        # Logged with its path for the operator; the caller learns only the kind.
        log.error("file error on %s %s: %s", request.method, request.url.path, exc)
        reason = exc.strerror or type(exc).__name__
        return error_response(
            request, 500, "FileSystemError", f"A file operation on the server failed: {reason}."
        )
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, 500, "Error", "Internal server error")


def install(app: FastAPI) -> None:
    """Route every error through the Backstage shape."""
    app.add_exception_handler(FalseworkError, _falsework_error)
    app.add_exception_handler(RequestValidationError, _malformed)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
