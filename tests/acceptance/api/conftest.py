"""Fixtures of the API tests: real `falsework serve` processes on loopback ports.

A server module gets one server per database dialect (a fresh SQLite file or a
fresh Postgres database per module), started as a subprocess and stopped with
SIGTERM, which must end it with exit code 0. They live in support.servers, shared
with the security tests.
"""

from __future__ import annotations

from support.servers import (
    FALSEWORK,
    SECRET_KEY,
    TEMPLATES,
    TOKENS,
    Server,
    ServerFactory,
    auth_config,
    module_database,
    pg_database,
    server,
    servers,
    sse_messages,
    start_server,
    token_of,
    wait_for_status,
)

__all__ = [
    "FALSEWORK",
    "SECRET_KEY",
    "TEMPLATES",
    "TOKENS",
    "Server",
    "ServerFactory",
    "auth_config",
    "module_database",
    "pg_database",
    "server",
    "servers",
    "sse_messages",
    "start_server",
    "token_of",
    "wait_for_status",
]
