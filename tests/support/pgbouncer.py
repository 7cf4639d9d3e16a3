"""A real PgBouncer (the Debian package, installed by scripts/ensure-postgres.sh) in
front of the test Postgres, on a free loopback port, in a pool mode of the test's
choosing. It runs as the ``postgres`` user (PgBouncer refuses root)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from support.serve import free_port


@dataclass
class Bouncer:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def url(self, database_url: str) -> str:
        """``database_url`` (on the test Postgres) through this PgBouncer."""
        parts = urlsplit(database_url)
        user = parts.netloc.rpartition("@")[0]
        return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{self.port}"))


@contextmanager
def pgbouncer(upstream: str, pool_mode: str = "session") -> Iterator[Bouncer]:
    """PgBouncer on 127.0.0.1 forwarding every database to ``upstream``'s server."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    target = urlsplit(upstream)
    # a folder the postgres user can reach (pytest's are root's alone)
    root = Path(tempfile.mkdtemp(prefix="fw-pgbouncer-"))
    root.chmod(0o755)
    port = free_port()
    log = root / "pgbouncer.log"
    (root / "userlist.txt").write_text('"postgres" ""\n')
    (root / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={target.hostname} port={target.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {root / 'userlist.txt'}\n"
        f"pool_mode = {pool_mode}\nmax_client_conn = 500\ndefault_pool_size = 100\n"
        f"logfile = {log}\npidfile = {root / 'pgbouncer.pid'}\n"
    )
    for path in (root, *root.iterdir()):
        shutil.chown(path, "postgres", "postgres")
    command = [binary, str(root / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    with (root / "stderr.log").open("wb") as out:
        # its own process group: runuser does not pass a signal on to pgbouncer
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 20
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                text = "".join(p.read_text() for p in (log, root / "stderr.log") if p.exists())
                raise RuntimeError(f"pgbouncer did not start:\n{text}")
            time.sleep(0.05)
        yield Bouncer(port, process, log)
    finally:
        _stop_group(process)
        shutil.rmtree(root, ignore_errors=True)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGINT to runuser and pgbouncer both (a fast shutdown), SIGKILL after 10 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _group_alive(process.pid):
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0
