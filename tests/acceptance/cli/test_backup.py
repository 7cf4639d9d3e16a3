"""`falsework db backup` of a live system and `falsework db restore` into a fresh
database (SQLite: the online backup API; Postgres: pg_dump/pg_restore): the restored
database has every task, a task's secrets still decrypt with the same key (and not
with another), and a task that was running when the backup was taken is recovered
by the janitor of the restored system and completes, its secret in hand. And
`falsework db vacuum`, which gives an old SQLite file incremental auto-vacuum."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet

from falsework.engine.crypto import SecretBox
from falsework.engine.migrate import head
from falsework.errors import FalseworkError
from support.postgres import create_database, drop_database, url_of
from support.serve import clean_env
from support.servers import (
    FALSEWORK,
    SECRET_KEY,
    TEMPLATES,
    auth_config,
    start_server,
    wait_for_status,
)

pytestmark = pytest.mark.slow

PROBE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: backup-probe
  title: Backup probe
spec:
  owner: group:default/team-a
  type: service
  parameters:
    - properties:
        seconds:
          type: number
  steps:
    - id: wait
      name: Wait
      action: debug:wait
      input:
        # the first run waits (the backup is taken meanwhile); the restored system's
        # run, a later attempt, need not wait again
        seconds: ${{ parameters.seconds if context.task.attempt == 1 else 0 }}
    - id: use
      name: Use the secret
      action: debug:log
      input:
        message: the password is ${{ secrets.password }}
"""


@pytest.fixture(params=["sqlite", "postgres"])
def two_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A database to back up and a fresh one to restore into (nothing in it yet)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'live.db'}", f"sqlite:///{tmp_path / 'restored' / 'fw.db'}"
        return
    names = [create_database("fw_bk") for _ in range(2)]
    try:
        live, fresh = (url_of(n) for n in names)
        yield live, fresh
    finally:
        for name in names:
            drop_database(name)


def db(database_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**clean_env(), "FALSEWORK_DATABASE_URL": database_url}
    return subprocess.run(
        [str(FALSEWORK), "db", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def sealed_secrets(database_url: str, task_id: str) -> tuple[str, str]:
    """(status, sealed secrets) of a task, read straight from the database."""
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        try:
            row = conn.execute(
                "SELECT status, secrets FROM tasks WHERE id = ?", (task_id,)
            ).fetchone()
        finally:
            conn.close()
    else:
        with psycopg.connect(database_url) as pg:
            row = pg.execute(
                "SELECT status, secrets FROM tasks WHERE id = %s", (task_id,)
            ).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


def test_backup_of_a_live_system_restores_with_its_secrets_and_running_tasks(
    two_databases: tuple[str, str], tmp_path: Path
) -> None:
    live, fresh = two_databases
    templates = tmp_path / "templates" / "backup-probe"
    templates.mkdir(parents=True)
    (templates / "template.yaml").write_text(PROBE)
    env = {"FALSEWORK_TEMPLATES": f"{TEMPLATES}:{templates.parent}"}
    # its run is still waiting when it stops: released at once, not after 5 s of grace
    first = start_server(
        live,
        tmp_path / "first",
        config=auth_config(),
        env={**env, "FALSEWORK_SHUTDOWN_GRACE": "0"},
    )
    try:
        alice = first.client("alice")
        done = alice.post(
            "/api/scaffolder/v2/tasks",
            json={"templateRef": "template:default/hello", "values": {"name": "before"}},
        ).json()["id"]
        wait_for_status(alice, done, ("completed",))
        made = alice.post(
            "/api/scaffolder/v2/tasks",
            json={
                "templateRef": "template:default/backup-probe",
                # long enough that it still runs when a backup on a loaded machine
                # (3.5 s seen) has been taken
                "values": {"seconds": 12},
                "secrets": {"password": "hunter2-backup"},
            },
        )
        assert made.status_code == 201, made.text
        running = made.json()["id"]
        wait_for_status(alice, running, ("processing",))

        backup = tmp_path / "backups" / "falsework.backup"
        taken = db(live, tmp_path, "backup", str(backup))
        assert taken.returncode == 0, taken.stderr
        assert str(backup) in taken.stdout and "secret.key" in taken.stdout
        assert backup.is_file() and backup.stat().st_size > 0
        again = db(live, tmp_path, "backup", str(backup))
        assert again.returncode == 1 and "exists" in again.stderr
    finally:
        first.stop()

    loaded = db(fresh, tmp_path, "restore", str(backup))
    assert loaded.returncode == 0, loaded.stderr
    # the task was running at backup time; its secrets open with the same key only
    status, sealed = sealed_secrets(fresh, running)
    assert status == "processing"
    assert SecretBox(SECRET_KEY).open(sealed) == {"password": "hunter2-backup"}
    with pytest.raises(FalseworkError, match="cannot be decrypted"):
        SecretBox(Fernet.generate_key()).open(sealed)
    # a restore never lands on a database in use
    twice = db(fresh, tmp_path, "restore", str(backup))
    assert twice.returncode == 1, twice.stdout

    second = start_server(
        fresh,
        tmp_path / "second",
        config=auth_config(),
        env={**env, "FALSEWORK_STALE_TIMEOUT": "1", "FALSEWORK_JANITOR_INTERVAL": "0.3"},
    )
    try:
        alice = second.client("alice")
        assert alice.get(f"/api/scaffolder/v2/tasks/{done}").json()["status"] == "completed"
        task = wait_for_status(alice, running, ("completed", "failed"), timeout=60)
        assert task["status"] == "completed", task
        events = alice.get(f"/api/scaffolder/v2/tasks/{running}/events").json()
        types = [e["type"] for e in events]
        assert "recovered" in types
        messages = [str(e["body"].get("message", "")) for e in events]
        # the restored run had the secret (redacted in its log), so it was decrypted
        assert any("the password is ***" in m for m in messages), messages
        assert not any("hunter2" in m for m in messages)
    finally:
        assert second.stop() == 0


def test_backup_of_nothing_is_one_line(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'nothing.db'}"
    done = db(missing, tmp_path, "backup", str(tmp_path / "out.db"))
    assert done.returncode == 1
    assert done.stderr.startswith("error: No SQLite database at") and "Traceback" not in done.stderr
    not_a_backup = tmp_path / "junk.db"
    not_a_backup.write_text("hello")
    bad = db(missing, tmp_path, "restore", str(not_a_backup))
    assert bad.returncode == 1 and "not a" in bad.stderr


def test_pg_dump_failure_says_which_database(tmp_path: Path) -> None:
    gone = url_of(f"fw_missing_{uuid.uuid4().hex[:8]}")
    gone = gone.replace("postgres@", "postgres:topsecret@", 1)
    done = db(gone, tmp_path, "backup", str(tmp_path / "out.dump"))
    assert done.returncode == 1
    assert "pg_dump of postgresql://postgres:***@" in done.stderr, done.stderr
    assert "topsecret" not in done.stderr
    assert not (tmp_path / "out.dump").exists()


# -- falsework db vacuum -------------------------------------------------------------
def old_style_database(path: Path) -> None:
    """A migrated database whose file has no auto-vacuum (as older versions made
    them), with a few MiB of deleted rows in its free pages."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA auto_vacuum=NONE")
        conn.execute("CREATE TABLE filler (x TEXT)")
    made = db(f"sqlite:///{path}", path.parent, "upgrade")
    assert made.returncode == 0, made.stderr
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
        conn.execute(
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 1000) "
            "INSERT INTO filler SELECT hex(randomblob(4000)) FROM g"
        )
        conn.execute("DELETE FROM filler")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def test_vacuum_turns_incremental_auto_vacuum_on_and_shrinks_the_file(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_style_database(path)
    before = path.stat().st_size
    done = db(f"sqlite:///{path}", tmp_path, "vacuum")
    assert done.returncode == 0, done.stderr
    assert "now uses incremental auto-vacuum" in done.stdout
    after = path.stat().st_size
    assert after < before / 2, (before, after)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head()
    again = db(f"sqlite:///{path}", tmp_path, "vacuum")
    assert again.returncode == 0 and "already used" in again.stdout


def test_vacuum_of_a_missing_file_says_so(tmp_path: Path) -> None:
    done = db(f"sqlite:///{tmp_path / 'nothing.db'}", tmp_path, "vacuum")
    assert done.returncode == 1
    assert "No SQLite database at" in done.stderr


def test_vacuum_on_postgres_has_nothing_to_do(tmp_path: Path) -> None:
    done = db("postgresql://postgres@127.0.0.1:5432/postgres", tmp_path, "vacuum")
    assert done.returncode == 0
    assert "autovacuum" in done.stdout
