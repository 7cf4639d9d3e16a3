"""Driver errors are classified at one boundary, each store's, without a database:
lost (retry on a fresh connection) or refused (the statement's fault)."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest

from falsework.engine import postgres, sqlite


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.exceptions.AdminShutdownError(
            "terminating connection due to administrator command"
        ),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.exceptions.InvalidCatalogNameError('database "x" does not exist'),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        asyncpg.InterfaceError("pool is closing"),
        # raised by asyncpg's protocol after pg_terminate_backend on a pooled connection
        asyncpg.exceptions.InternalClientError(
            "cannot switch to state 15; another operation (2) is in progress"
        ),
        asyncpg.exceptions.ProtocolError("unexpected message in state 3"),
        # idle_in_transaction_session_timeout ended the session
        asyncpg.exceptions.IdleInTransactionSessionTimeoutError(
            "terminating connection due to idle-in-transaction timeout"
        ),
        # statement_timeout
        asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"),
        # a failover: the host we hold is a standby now, or none accepts writes yet
        asyncpg.exceptions.ReadOnlySQLTransactionError(
            "cannot execute UPDATE in a read-only transaction"
        ),
        asyncpg.exceptions.TargetServerAttributeNotMatched("None of the hosts match"),
    ],
)
def test_postgres_lost(exc: Exception) -> None:
    assert postgres.is_lost(exc)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.InvalidTextRepresentationError("invalid input syntax for type json"),
        asyncpg.exceptions.DataError("invalid input for query argument $1"),
        asyncpg.InterfaceError("the server expects 2 arguments for this query, 1 was passed"),
        ValueError("not a driver error"),
    ],
)
def test_postgres_refused(exc: Exception) -> None:
    assert not postgres.is_lost(exc)


@pytest.mark.parametrize(
    ("exc", "lost"),
    [
        (sqlite3.OperationalError("database is locked"), True),
        (sqlite3.OperationalError("unable to open database file"), True),
        (sqlite3.OperationalError("disk I/O error"), True),
        (ValueError("no active connection"), True),
        (sqlite3.ProgrammingError("Cannot operate on a closed database."), True),
        (sqlite3.ProgrammingError("Incorrect number of bindings supplied."), False),
        (sqlite3.OperationalError("malformed JSON"), False),
        (sqlite3.OperationalError("no such table: tasks"), False),
        (sqlite3.IntegrityError("UNIQUE constraint failed"), False),
        (ValueError("Expecting value: line 1 column 1"), False),
    ],
)
def test_sqlite_classification(exc: Exception, lost: bool) -> None:
    assert sqlite.is_lost(exc) is lost
