"""`falsework serve`: the API, the page and one worker in one process."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
from types import FrameType
from typing import Annotated, Any

import typer
from fastapi import FastAPI

from falsework import logs
from falsework.config import Settings, load_settings
from falsework.errors import FalseworkError


def _loop() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:  # pragma: no cover - uvloop is not on Windows
        return "asyncio"
    return "uvloop"


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default 127.0.0.1, FALSEWORK_HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (default 7007, FALSEWORK_PORT).", min=0, max=65535)
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            help="Tasks this process runs at once (default 100); 0 serves the API only.",
            min=0,
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    log_format: Annotated[
        str | None,
        typer.Option(help="text or json: one JSON object per line (FALSEWORK_LOG_FORMAT)."),
    ] = None,
    access_log: Annotated[
        bool, typer.Option(help="Log every request (costs CPU under load).")
    ] = False,
) -> None:
    """Serve the scaffolder API, the page and a worker; SIGTERM drains and exits 0."""
    import uvicorn

    from falsework.api.app import create_app
    from falsework.engine.heap import freeze_startup_heap

    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if concurrency is not None:
        overrides["concurrency"] = concurrency
    if log_format is not None:
        overrides["log_format"] = log_format
    try:
        settings = load_settings(**overrides)
    except (OSError, ValueError) as exc:  # a missing or invalid config file
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        # Bound before anything else starts: a port in use is one clear line.
        # (It listens only once the app is ready: until then a connection is refused.)
        listener = _bind(settings.host, settings.port)
    except PortError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if settings.port == 0:  # the port the system chose
        settings = settings.model_copy(update={"port": int(listener.getsockname()[1])})
    logs.configure(log_level, settings.log_format)
    _announce(settings)
    _raise_file_limit()
    try:
        # Migrate and check the database once, so a wrong URL is one clear line
        # rather than a failed application startup.
        asyncio.run(_preflight(settings))
    except FalseworkError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop=_loop(),
        log_level=log_level,
        # JSON: uvicorn's lines go through the root handler like every other;
        # text: uvicorn's own format, as ever
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        access_log=access_log,
        lifespan="on",
        # Event streams stay open for as long as a task runs: give them a moment to
        # end on shutdown, then close them, so the worker's drain can begin.
        timeout_graceful_shutdown=3,
        proxy_headers=True,
        http=_http_protocol(settings.header_timeout),
        # request heads over 64 KiB are refused (h11's limit; httptools has its own)
        h11_max_incomplete_event_size=64 * 1024,
    )
    server = _server_class(app)(config)
    # uvicorn re-raises the signal it caught once it has shut down; a drained
    # shutdown is a clean exit, so the re-raised signal must not kill us.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    # Start-up done (the app built, the database checked): the GC's tuning for a
    # process that runs a worker and serves (engine/heap.py).
    freeze_startup_heap()
    try:
        listener.listen(2048)
    except OSError as exc:  # another process bound it meanwhile and listens first
        typer.echo(f"error: {_port_trouble(exc, settings.host, settings.port)}", err=True)
        raise typer.Exit(1) from None
    server.run(sockets=[listener])
    if not server.started:
        raise typer.Exit(1)


def _port_trouble(exc: OSError, host: str, port: int) -> str:
    """What went wrong with ``host:port``, and the way out."""
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    other = port + 1 if 0 < port < 65535 else 7008
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{shown} is already in use (another Falsework?). Stop what listens there, "
            f"or serve on another port: falsework serve --port {other} "
            f"(make run PORT={other}, or FALSEWORK_PORT={other})"
        )
    if exc.errno == errno.EACCES:
        return (
            f"no permission to listen on {shown} (ports below 1024 need privileges): "
            "choose another port, e.g. --port 7007"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {shown}: {host} is not an address of this machine (--host)"
    return f"cannot listen on {shown}: {exc.strerror}"


class PortError(Exception):
    """The address cannot be listened on; the message says why and what to do."""


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (uvicorn serves on it), or ``PortError``."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PortError(f"cannot listen on {host!r}: {exc.strerror} (--host)") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise PortError(_port_trouble(exc, host, port)) from None
    sock.set_inheritable(True)
    return sock


async def _preflight(settings: Settings) -> None:
    from falsework.wiring import open_broker

    broker = await open_broker(settings)
    await broker.close()


def _raise_file_limit() -> None:
    """Each event-stream client holds a socket: lift the soft limit to the hard one."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # pragma: no cover - a container may refuse
            pass


def _http_protocol(header_timeout: float) -> Any:
    """uvicorn's HTTP protocol with a time limit on each request's head.

    uvicorn waits for a request's headers for as long as the client likes: a client
    sending a byte now and then holds a connection (and a file descriptor) forever,
    before any authentication. Here a connection whose request head is not complete
    ``header_timeout`` seconds after the connection (or after the request's first
    byte) is closed. (The body has its own limit in the API's edge.)
    """
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools comes with uvicorn[standard]
        return "auto"

    class HeadTimeoutProtocol(HttpToolsProtocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def _arm(self) -> None:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(header_timeout, self._head_too_slow)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_too_slow(self) -> None:
            self._head_timer = None
            if not self.transport.is_closing():
                self.transport.close()

    return HeadTimeoutProtocol


def _server_class(app: FastAPI) -> type[Any]:
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            # End event streams and start the worker's drain at once, rather
            # than after uvicorn has waited for those streams to close.
            begin = getattr(app.state, "begin_shutdown", None)
            if callable(begin):
                begin()

    return Server


def _announce(settings: Settings) -> None:
    from falsework.api.auth import Authenticator

    def say(line: str, *, warning: bool = False) -> None:
        if settings.log_format == "json":  # every line of the process is JSON
            log = logging.getLogger("falsework.serve")
            log.log(logging.WARNING if warning else logging.INFO, line)
        else:
            typer.echo(line, err=True)

    url = f"http://{settings.host}:{settings.port}"
    where = "Postgres" if settings.resolved_database_url.startswith("postgres") else "SQLite"
    say(f"Falsework on {url} ({where}, concurrency {settings.concurrency})")
    if settings.local_mode:
        say("Local mode: no tokens configured, every caller is an admin guest.")
    for user in Authenticator(settings).malformed():
        say(
            f"The token of {user} is not a hex SHA-256 (64 digits): it can never match.",
            warning=True,
        )
    if not settings.local_mode and not settings.auth.tokens:
        say(
            "No tokens configured and not bound to loopback: every API call will get 401. "
            "Add auth.tokens to the config file.",
            warning=True,
        )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
