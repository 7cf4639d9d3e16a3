"""Faults made on purpose, for the chaos suite: a TCP proxy that freezes or cuts
traffic, a network namespace whose link can be pulled, and a pair of Postgres
clusters (primary + streaming standby) that can fail over.

Everything here is real: kernel sockets, ``ip netns`` + veth, ``initdb`` (once, then copies),
``pg_basebackup`` and ``pg_ctl promote``. Nothing stands in for the database.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import selectors
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

# ------------------------------------------------------------------ TCP proxy


class TcpProxy:
    """Forwards ``listen`` → ``upstream`` in a thread; traffic can be frozen (kept
    open, nothing passes: a peer inside a transaction hangs as on a dead link),
    cut (every connection reset) or refused (new connections closed at once).

    One selector loop moves bytes both ways; a frozen proxy stops reading, so
    the kernel buffers fill and the peers block exactly as behind a partition.
    """

    def __init__(self, upstream: tuple[str, int], listen: tuple[str, int] = ("127.0.0.1", 0)):
        self.upstream = upstream
        self._server = socket.create_server(listen, reuse_port=False)
        self._server.setblocking(False)
        self.address: tuple[str, int] = self._server.getsockname()[:2]
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._server, selectors.EVENT_READ, None)
        self._pairs: dict[socket.socket, socket.socket] = {}
        self._lock = threading.Lock()
        self._frozen = threading.Event()
        self._refusing = threading.Event()
        self._clients: set[socket.socket] = set()
        # cut_after_message: how many more times, the bytes to look for, and the
        # connections doomed (their replies dropped) with when to reset them
        self._cut_left = 0
        self._cut_marker = b""
        self._doomed: dict[socket.socket, float] = {}
        self.cuts_after_message = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-proxy", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.address[1]

    def freeze(self) -> None:
        self._frozen.set()

    def thaw(self) -> None:
        self._frozen.clear()

    def refuse(self, on: bool = True) -> None:
        (self._refusing.set if on else self._refusing.clear)()

    def cut(self) -> int:
        """Reset every open connection (RST, not FIN); the number cut."""
        with self._lock:
            socks = list(self._pairs)
            self._pairs.clear()
        for sock in socks:
            _reset(sock)
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(sock)
        return len(socks) // 2

    def cut_after_message(self, marker: bytes, times: int = 1) -> None:
        """The next ``times`` client messages holding ``marker`` (``b"COMMIT"``)
        reach the server, whose reply never comes back: the connection is reset
        a moment later. The client cannot know whether the statement took effect
        (an ambiguous commit)."""
        with self._lock:
            self._cut_marker = marker
            self._cut_left = times

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._pairs) // 2

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        self.cut()
        self._server.close()
        self._sel.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            if self._frozen.is_set():
                # Accept nothing and move nothing; connections stay open.
                time.sleep(0.02)
                continue
            self._reset_doomed()
            for key, _ in self._sel.select(timeout=0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._server:
                    self._accept()
                else:
                    self._forward(sock)

    def _accept(self) -> None:
        try:
            client, _ = self._server.accept()
        except BlockingIOError:
            return
        if self._refusing.is_set():
            _reset(client)
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            _reset(client)
            return
        for sock in (client, upstream):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._pairs[client] = upstream
            self._pairs[upstream] = client
            self._clients.add(client)
        self._sel.register(client, selectors.EVENT_READ, None)
        self._sel.register(upstream, selectors.EVENT_READ, None)

    def _forward(self, sock: socket.socket) -> None:
        with self._lock:
            peer = self._pairs.get(sock)
        if peer is None:
            return
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(sock, peer)
            return
        client = sock if sock in self._clients else peer
        if client in self._doomed and sock is not client:
            return  # the server's reply to the doomed message is dropped
        if sock is client and self._cut_left > 0 and self._cut_marker in data:
            with self._lock:
                self._cut_left -= 1
                # long enough for the server to read and run it, not to answer
                self._doomed[client] = time.monotonic() + 0.2
        try:
            peer.setblocking(True)
            peer.sendall(data)
            peer.setblocking(False)
        except OSError:
            self._drop(sock, peer)

    def _reset_doomed(self) -> None:
        now = time.monotonic()
        for client, when in list(self._doomed.items()):
            if when > now:
                continue
            with self._lock:
                self._doomed.pop(client, None)
                peer = self._pairs.pop(client, None)
                if peer is not None:
                    self._pairs.pop(peer, None)
                self._clients.discard(client)
                self.cuts_after_message += 1
            for sock in (client, peer):
                if sock is not None:
                    with contextlib.suppress(KeyError, ValueError):
                        self._sel.unregister(sock)
                    _reset(sock)

    def _drop(self, sock: socket.socket, peer: socket.socket) -> None:
        with self._lock:
            self._pairs.pop(sock, None)
            self._pairs.pop(peer, None)
            self._clients.discard(sock)
            self._clients.discard(peer)
        for s in (sock, peer):
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(s)
            s.close()


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# ---------------------------------------------------------- network namespace

_NETNS_IDS = itertools.count(1)


@dataclass
class NetNamespace:
    """A network namespace joined to this host by a veth pair: the host side is
    ``host_ip``, the inside ``inner_ip``. :meth:`partition` takes the host side
    of the link down (packets vanish, TCP peers see silence, as on a real cut);
    :meth:`heal` brings it back. Processes run inside with :meth:`command`."""

    name: str
    host_if: str
    host_ip: str
    inner_ip: str

    @classmethod
    def create(cls) -> NetNamespace:
        n = (os.getpid() * 7 + next(_NETNS_IDS)) % 250 + 1
        tag = uuid.uuid4().hex[:6]
        ns = cls(f"fwc-{tag}", f"fwh{tag}", f"10.211.{n}.1", f"10.211.{n}.2")
        inner_if = f"fwi{tag}"
        _ip("netns", "add", ns.name)
        try:
            _ip("link", "add", ns.host_if, "type", "veth", "peer", "name", inner_if)
            _ip("link", "set", inner_if, "netns", ns.name)
            _ip("addr", "add", f"{ns.host_ip}/30", "dev", ns.host_if)
            _ip("link", "set", ns.host_if, "up")
            ns.run("ip", "addr", "add", f"{ns.inner_ip}/30", "dev", inner_if)
            ns.run("ip", "link", "set", inner_if, "up")
            ns.run("ip", "link", "set", "lo", "up")
        except BaseException:
            ns.delete()
            raise
        return ns

    def command(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *args]

    def run(self, *args: str) -> None:
        subprocess.run(self.command(*args), check=True, capture_output=True, timeout=10)

    def partition(self) -> None:
        _ip("link", "set", self.host_if, "down")

    def heal(self) -> None:
        _ip("link", "set", self.host_if, "up")

    def delete(self) -> None:
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@contextlib.contextmanager
def net_namespace() -> Iterator[NetNamespace]:
    ns = NetNamespace.create()
    try:
        yield ns
    finally:
        ns.delete()


# ------------------------------------------------------- Postgres primary/standby


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a server binary as the ``postgres`` user (the server refuses root)."""
    cmd = ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload,no-any-return]


@dataclass
class PgNode:
    data: Path
    port: int
    log: Path

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        done = _as_postgres(
            [str(_pg_bin() / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
             "-t", "60", "start", "-o", f"-p {self.port} -k {self.data}"],
            timeout=90,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start: {done.stderr}\n{self.log.read_text()}")

    def stop(self, mode: str = "fast") -> None:
        _as_postgres(
            [str(_pg_bin() / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
            timeout=90,
        )

    def kill(self) -> None:
        """SIGKILL the postmaster (a crashed primary host, not a clean stop)."""
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
            # its children exit once the postmaster is gone
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _port_open(self.port):
                time.sleep(0.05)

    def promote(self) -> None:
        done = _as_postgres(
            [str(_pg_bin() / "pg_ctl"), "-D", str(self.data), "-w", "promote"], timeout=60
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl promote: {done.stderr}")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# A configured cluster made by initdb once per process and never started: each
# private cluster is a copy (initdb takes seconds on a busy machine, copying its
# 40 MB about a second). The copies share a system identifier, which matters only
# to replication between them, and none replicates from another (a standby is a
# pg_basebackup of its primary, whose identifier it shares anyway).
_cluster: Path | None = None


def _initdb(data: Path) -> None:
    done = _as_postgres(
        [str(_pg_bin() / "initdb"), "-D", str(data), "-U", "postgres",
         "--auth=trust", "-E", "UTF8", "--no-sync"],
        timeout=120,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"initdb: {done.stderr}")
    conf = data / "postgresql.conf"
    with conf.open("a") as fh:
        fh.write(
            "\nlisten_addresses = '127.0.0.1'\nwal_level = replica\nmax_wal_senders = 5\n"
            "hot_standby = on\nfsync = off\nsynchronous_commit = on\n"
            "shared_buffers = 32MB\nmax_connections = 200\n"
        )
    with (data / "pg_hba.conf").open("a") as fh:
        fh.write("host replication all 127.0.0.1/32 trust\n")
    for path in (conf, data / "pg_hba.conf"):
        shutil.chown(path, "postgres", "postgres")


def _new_cluster(data: Path) -> None:
    """``data`` as a new, configured cluster (replication allowed, fsync off)."""
    global _cluster
    if _cluster is None:
        root = Path(tempfile.mkdtemp(prefix="fw-pg-initdb-"))
        root.chmod(0o755)  # the postgres user walks into it
        shutil.chown(root, "postgres", "postgres")
        _initdb(root / "data")
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _cluster = root / "data"
    # cp -a keeps the postgres user's ownership and the 0700 of the data directory
    subprocess.run(["cp", "-a", str(_cluster), str(data)], check=True, timeout=120)


def private_postgres(root: Path, name: str = "pg") -> PgNode:
    """A Postgres cluster of our own (replication allowed, fsync off), started, in
    ``root``: faults that restart or stop the server touch nobody else's database."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.chown(root, "postgres", "postgres")
    node = PgNode(root / name, _free_port(), root / f"{name}.log")
    _new_cluster(node.data)
    log_owner(node.log)
    node.start()
    return node


@dataclass
class PgPair:
    """A primary and a streaming standby on this machine, in ``root``."""

    root: Path
    primary: PgNode
    standby: PgNode
    extra: list[PgNode] = field(default_factory=list)

    @classmethod
    def create(cls, root: Path) -> PgPair:
        primary = private_postgres(root, "primary")
        bin_dir = _pg_bin()
        standby = PgNode(root / "standby", _free_port(), root / "standby.log")
        done = _as_postgres(
            [str(bin_dir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
             "-U", "postgres", "-D", str(standby.data), "-R", "-X", "stream"],
            timeout=120,
        )  # fmt: skip
        if done.returncode != 0:
            primary.stop("immediate")
            raise RuntimeError(f"pg_basebackup: {done.stderr}")
        log_owner(standby.log)
        standby.start()
        return cls(root, primary, standby)

    def url(self, database: str = "postgres") -> str:
        """One URL naming both hosts; clients connect to whichever accepts writes."""
        hosts = f"127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
        return f"postgresql://postgres@{hosts}/{database}?target_session_attrs=read-write"

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.primary.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def wait_replayed(self, timeout: float = 30.0) -> None:
        """Until the standby has replayed everything the primary has written."""
        with psycopg.connect(self.primary.dsn, autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        target = row[0]
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.standby.dsn, autocommit=True) as conn:
            while True:
                done = conn.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
                ).fetchone()
                if done and done[0]:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError("the standby did not catch up")
                time.sleep(0.05)

    def destroy(self) -> None:
        for node in (self.primary, self.standby, *self.extra):
            node.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def log_owner(path: Path) -> None:
    path.touch()
    shutil.chown(path, "postgres", "postgres")
