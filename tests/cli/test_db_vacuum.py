"""`falsework db vacuum`: an SQLite file made before incremental auto-vacuum is
rewritten with it (its free pages given back), through the real command."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
from pathlib import Path

from falsework.engine.migrate import head
from support.serve import clean_env
from support.servers import FALSEWORK


def run_db(url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**clean_env(), "FALSEWORK_DATABASE_URL": url}
    return subprocess.run(
        [str(FALSEWORK), "db", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def old_style_database(path: Path) -> None:
    """A migrated database whose file has no auto-vacuum (as older versions made
    them), with a few MiB of deleted rows in its free pages."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA auto_vacuum=NONE")
        conn.execute("CREATE TABLE filler (x TEXT)")
    made = run_db(f"sqlite:///{path}", path.parent, "upgrade")
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
    done = run_db(f"sqlite:///{path}", tmp_path, "vacuum")
    assert done.returncode == 0, done.stderr
    assert "now uses incremental auto-vacuum" in done.stdout
    after = path.stat().st_size
    assert after < before / 2, (before, after)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head()
    again = run_db(f"sqlite:///{path}", tmp_path, "vacuum")
    assert again.returncode == 0 and "already used" in again.stdout


def test_vacuum_of_a_missing_file_says_so(tmp_path: Path) -> None:
    done = run_db(f"sqlite:///{tmp_path / 'nothing.db'}", tmp_path, "vacuum")
    assert done.returncode == 1
    assert "No SQLite database at" in done.stderr


def test_vacuum_on_postgres_has_nothing_to_do(tmp_path: Path) -> None:
    done = run_db("postgresql://postgres@127.0.0.1:5432/postgres", tmp_path, "vacuum")
    assert done.returncode == 0
    assert "autovacuum" in done.stdout
