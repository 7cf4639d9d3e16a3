"""A worker given a mistyped secret key fails with one clear line before it opens
the database (both dialects): no store thread is left to keep the process alive."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from falsework.config import Settings
from falsework.engine import Broker
from falsework.errors import InputError
from falsework.wiring import broker_options


async def test_a_bad_secret_key_fails_before_the_database_is_opened(
    database_url: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    # An open SQLite store's thread once kept the failing process (falsework
    # worker with a mistyped FALSEWORK_SECRET_KEY) alive after the traceback.
    if database_url.startswith("sqlite"):  # a file not there yet, which no open may make
        database_url = f"sqlite:///{tmp_path / 'never.db'}"
    threads = threading.active_count()
    settings = make_settings(database_url=database_url, secret_key="not-a-key")
    with pytest.raises(InputError, match="not a Fernet key"):
        await Broker.open(database_url, broker_options(settings))
    assert threading.active_count() == threads
    if database_url.startswith("sqlite"):
        assert not _exists(database_url.split("sqlite:///", 1)[1])


def _exists(path: str) -> bool:
    return Path(path).exists()
