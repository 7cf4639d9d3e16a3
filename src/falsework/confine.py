"""The confinement rule, in one place: no path and no symbolic link leads outside
a folder (a task's workspace, a fetched tree, a template folder), ever.

Every file operation of the built-in actions, of the dry run and of ``templates
validate`` goes through a :class:`Tree`: a folder opened once, below which every
path is walked one name at a time with ``dir_fd``-relative calls and
``O_NOFOLLOW``, so the kernel itself refuses to follow a link this module did
not look at. The check and the use are one system call: nothing (an earlier
step, a git checkout, another process) can swap a folder for a link between a
check and a write. Resolve-and-verify (``realpath``, then open the path) has
that gap, and costs the same ``lstat`` per name; here each folder is opened once
per tree and kept (a small cache of folder descriptors).

Links:

- a link may stay in a tree only when its target is relative and, resolved as
  the kernel would (through other links, ``..`` included), stays inside the
  tree. Anything else (absolute, ``..`` climbing out, a chain that leaves) is
  refused naming the file: ``skeleton/etc -> /etc: a symbolic link may not point
  outside the fetched folder``. Fetched trees are checked before anything is
  copied, a link made in a workspace when it is made or moved, and every link
  again when a workspace is listed or published;
- a link inside the tree is followed only as a folder on the way (``docs/x.md``
  with ``docs -> documentation``), walked by this module name by name;
- the last name of a path is never followed: writing onto a link replaces the
  link with a file, deleting or renaming one acts on the link, reading one is
  refused, and listing shows it as a link.

:meth:`Tree.walk` (and :func:`walk`) is the codebase's one folder walker:
entries as (relative POSIX path, kind, ``lstat``), links never followed, names
such as ``.git`` skipped when the caller asks.

No library does this for Python (Go has ``os.Root``, Rust ``cap-std``); it is
the standard library's ``os`` calls with ``dir_fd`` and ``O_NOFOLLOW``.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections import OrderedDict
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

from falsework.errors import ActionError, FalseworkError, UnsafePathError

__all__ = [
    "Entry",
    "Kind",
    "Tree",
    "is_within",
    "read_regular",
    "relative",
    "resolve_safe_path",
    "walk",
]

Kind = Literal["dir", "file", "link", "other"]

MAX_LINK_HOPS = 40  # Linux's own limit before ELOOP
# Folder descriptors a tree keeps open, least recently used dropped: enough for
# the folders above a deep Java package, few enough that 32 worker threads each
# copying between two trees stay far below a 1,024 descriptor limit.
_OPEN_DIRS = 12
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
# O_NONBLOCK: opening a FIFO planted in a tree must not hang the thread.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of a walk: its path relative to where the walk started (POSIX),
    its kind (a link is a link, whatever it points to) and its ``lstat``."""

    path: str
    kind: Kind
    stat: os.stat_result

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]


def _kind(mode: int) -> Kind:
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    return "other"


def _names(text: str) -> list[str]:
    """The names of a relative path, ``.`` and empty ones dropped."""
    return [n for n in text.split("/") if n not in ("", ".")]


def relative(user_path: str | os.PathLike[str], where: str = "the workspace") -> str:
    """``user_path`` as a normalised relative POSIX path (``""`` for the folder
    itself), or ``UnsafePathError`` naming it: absolute, a NUL byte, or ``..``
    climbing above the start. Links are the :class:`Tree`'s business."""
    text = os.fspath(user_path)
    if "\x00" in text:
        raise UnsafePathError(f"Path {text!r} contains a NUL byte")
    if os.path.isabs(text) or PurePosixPath(text.replace("\\", "/")).is_absolute():
        raise UnsafePathError(f"Path {text!r} is absolute; only paths inside {where} are allowed")
    parts: list[str] = []
    for name in _names(text):
        if name != "..":
            parts.append(name)
        elif parts:
            parts.pop()
        else:
            raise UnsafePathError(f"Path {text!r} is outside {where}")
    return "/".join(parts)


def _join(base: str, rel: str) -> str:
    return f"{base}/{rel}" if base and rel else base or rel


class Tree:
    """A folder opened once; every operation below it stays inside it.

    ``where`` names the folder in errors ("the workspace", "the fetched folder
    ./skeleton"); ``prefix`` is put before relative paths in errors. Not
    thread-safe: one thread uses a tree at a time (a step's blocking work).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        where: str = "the workspace",
        prefix: str = "",
        create: bool = False,
    ) -> None:
        self.root = Path(root)
        self.where = where
        self.prefix = prefix
        if create:
            os.makedirs(self.root, exist_ok=True)
        # The root itself is the server's choice (a workspace, a verified source
        # folder): links in its own path are followed, once, here.
        self._fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
        self._dirs: OrderedDict[tuple[str, ...], int] = OrderedDict()

    # -------------------------------------------------------------- lifetime
    def close(self) -> None:
        self._forget()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def show(self, rel: str) -> str:
        """How errors name ``rel``."""
        return self.prefix + rel if rel else self.prefix.rstrip("/") or "."

    # ------------------------------------------------------------ resolution
    def _forget(self) -> None:
        """Drop the cached folders (after a delete or a rename moved some)."""
        while self._dirs:
            os.close(self._dirs.popitem()[1])

    def _dir(self, parts: tuple[str, ...]) -> int:
        """The descriptor of the real folder ``parts`` (no link on the way:
        each name opened with O_NOFOLLOW from its parent's descriptor)."""
        if not parts:
            return self._fd
        fd = self._dirs.get(parts)
        if fd is not None:
            self._dirs.move_to_end(parts)
            return fd
        parent = self._dir(parts[:-1])
        try:
            fd = os.open(parts[-1], _DIR_FLAGS, dir_fd=parent)
        except NotADirectoryError:
            # O_DIRECTORY | O_NOFOLLOW answers ENOTDIR for a link: one put here
            # since the walk looked (another process swapped the folder) is
            # refused as the link in the way it is, not as "not a directory"
            st = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), parts[-1]) from None
            raise
        self._dirs[parts] = fd
        if len(self._dirs) > _OPEN_DIRS:
            os.close(self._dirs.popitem(last=False)[1])
        return fd

    def _resolve(
        self,
        start: tuple[str, ...],
        names: list[str],
        shown: str,
        *,
        create: bool = False,
        follow: bool = False,
        probe: bool = False,
    ) -> tuple[tuple[str, ...], str]:
        """Walk ``names`` from the folder ``start``: the real folder reached (its
        names, no link among them) and the last name in it (``""`` when the path
        is that folder itself).

        Links on the way are followed inside the tree, the last one only with
        ``follow``; ``create`` makes missing folders on the way; ``probe`` walks
        past a missing folder by name only (to judge where a link would lead).
        Leaving the tree raises ``UnsafePathError``; a missing folder on the way
        ``FileNotFoundError``.
        """
        # ("" and "." are no names: dropped here and from link targets, so the
        # last name is the one that leaves ``todo`` empty)
        todo = [n for n in reversed(names) if n not in ("", ".")]
        parts = list(start)
        hops = 0
        via = ""  # the last link followed, for the error message
        missing = False
        while todo:
            name = todo.pop()
            if name == "..":
                if not parts:
                    through = f" through the symbolic link {via}" if via else ""
                    raise UnsafePathError(f"Path {shown!r} leads outside {self.where}{through}")
                parts.pop()
                continue
            last = not todo
            if last and not follow:
                return tuple(parts), name
            if missing:
                parts.append(name)
                continue
            key = (*parts, name)
            if not last and key in self._dirs:
                parts.append(name)
                continue
            fd = self._dir(tuple(parts))
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                if last:
                    return tuple(parts), name
                if create:
                    os.mkdir(name, dir_fd=fd)
                elif probe:
                    missing = True
                else:
                    raise
                parts.append(name)
                continue
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > MAX_LINK_HOPS:
                    raise ActionError(f"Path {shown!r}: too many levels of symbolic links")
                target = os.readlink(name, dir_fd=fd)
                via = f"{self.show('/'.join(key))} -> {target}"
                if target.startswith("/"):
                    raise UnsafePathError(
                        f"Path {shown!r} leads outside {self.where} through the symbolic link {via}"
                    )
                todo.extend(n for n in reversed(target.split("/")) if n not in ("", "."))
                continue
            if last:
                return tuple(parts), name
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), shown)
            parts.append(name)
        return tuple(parts), ""

    def _locate(
        self, rel: str, *, create: bool = False, follow: bool = False
    ) -> tuple[tuple[str, ...], str]:
        return self._resolve((), _names(rel), self.show(rel), create=create, follow=follow)

    @contextmanager
    def _errors(self, rel: str) -> Iterator[None]:
        """OS errors as ``ActionError`` naming the path (relative: a server's own
        folders are nobody's business)."""
        try:
            yield
        except FalseworkError:
            raise
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePathError(
                    f"{self.show(rel)}: a symbolic link is in the way (links are never "
                    "followed at the end of a path)"
                ) from exc
            raise ActionError(f"{self.show(rel)}: {exc.strerror or exc}") from exc

    # --------------------------------------------------------------- queries
    def lstat(self, rel: str) -> os.stat_result | None:
        """The entry ``rel`` names (a link as a link), or None when there is none."""
        with self._errors(rel):
            try:
                parts, name = self._locate(rel)
                if not name:
                    return os.stat(self._dir(parts))
                return os.stat(name, dir_fd=self._dir(parts), follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                return None

    def canonical(self, rel: str) -> str:
        """``rel`` with the links inside the tree on its way (the last one too)
        replaced by what they point to: a path of real folders and names."""
        with self._errors(rel):
            parts, name = self._locate(rel, follow=True)
            return "/".join((*parts, name) if name else parts)

    def is_dir(self, rel: str) -> bool:
        """True when ``rel`` is a folder (or a link inside the tree to one)."""
        try:
            canonical = self.canonical(rel)
        except ActionError as exc:
            if isinstance(exc, UnsafePathError):
                raise
            return False
        st = self.lstat(canonical)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def readlink(self, rel: str) -> str:
        with self._errors(rel):
            parts, name = self._locate(rel)
            return os.readlink(name, dir_fd=self._dir(parts))

    def check_link(self, rel: str) -> None:
        """``UnsafePathError`` naming the link ``rel`` when it points outside."""
        with self._errors(rel):
            parts, name = self._locate(rel)
            target = os.readlink(name, dir_fd=self._dir(parts))
            self._check_target(parts, rel, target)

    def _check_target(self, parts: tuple[str, ...], rel: str, target: str) -> None:
        refused = UnsafePathError(
            f"{self.show(rel)} -> {target}: a symbolic link may not point outside {self.where}"
        )
        if not target or "\x00" in target or target.startswith("/"):
            raise refused
        try:
            self._resolve(parts, target.split("/"), self.show(rel), follow=True, probe=True)
        except UnsafePathError:
            raise refused from None
        except NotADirectoryError:
            pass  # it leads through a file: dangling, not outside

    def walk(
        self, rel: str = "", *, skip: Collection[str] = (), recursive: bool = True
    ) -> Iterator[Entry]:
        """Every entry below the folder ``rel`` (``""``: the whole tree), parents
        before children, names sorted; links listed, never followed; entries
        named in ``skip`` (e.g. ``.git``) left out with everything below them.
        Paths are ``rel``-prefixed (as spelled, normalised)."""
        with self._errors(rel):
            parts, name = self._locate(rel, follow=True)
            base = (*parts, name) if name else parts
            try:
                self._dir(base)
            except (NotADirectoryError, FileNotFoundError):
                raise ActionError(f"{self.show(rel)} is not a folder") from None
            first = self._list(base, skip)
        start = relative(rel, self.where)
        stack = [(base, start + "/" if start else "", iter(first))]
        while stack:
            folder, prefix, entries = stack[-1]
            item = next(entries, None)
            if item is None:
                stack.pop()
                continue
            name, st = item
            entry = Entry(prefix + name, _kind(st.st_mode), st)
            yield entry
            if entry.kind == "dir" and recursive:
                sub = (*folder, name)
                with self._errors(entry.path):
                    listing = self._list(sub, skip)
                stack.append((sub, entry.path + "/", iter(listing)))

    def _list(
        self, parts: tuple[str, ...], skip: Collection[str]
    ) -> list[tuple[str, os.stat_result]]:
        found: list[tuple[str, os.stat_result]] = []
        with os.scandir(self._dir(parts)) as it:
            for item in it:
                if item.name in skip:
                    continue
                try:
                    found.append((item.name, item.stat(follow_symlinks=False)))
                except FileNotFoundError:
                    continue  # gone since it was listed
        found.sort(key=lambda e: e[0])
        return found

    # ----------------------------------------------------------------- reads
    def open_read(self, rel: str) -> BinaryIO:
        """The regular file ``rel``, opened for reading (never through a link)."""
        with self._errors(rel):
            return _regular(self._open_read(rel), self.show(rel), "rb")

    def read_bytes(self, rel: str) -> bytes:
        """The content of the regular file ``rel`` (never through a link)."""
        with self._errors(rel):
            fd = self._open_read(rel)
            try:
                # (O_NONBLOCK means nothing to a regular file: read as it is)
                return _read_all(fd, _regular_stat(fd, self.show(rel)).st_size)
            finally:
                os.close(fd)

    def _open_read(self, rel: str) -> int:
        parts, name = self._locate(rel)
        if not name:
            raise ActionError(f"{self.show(rel)} is a folder, not a file")
        return os.open(name, _READ_FLAGS, dir_fd=self._dir(parts))

    # ---------------------------------------------------------------- writes
    def open_write(
        self, rel: str, *, mode: int | None = None, replace: bool = True
    ) -> BinaryIO | None:
        """The file ``rel`` opened for writing, created with its folders; None
        when something is there and not ``replace``. A link there is replaced by
        the file, never written through; so is a file with other hard links."""
        with self._errors(rel):
            out = self._create(rel, mode, replace)
            return None if out is None else _regular(out, self.show(rel), "wb")

    def _create(self, rel: str, mode: int | None, replace: bool) -> int | None:
        """The descriptor of ``rel`` opened for writing (see :meth:`open_write`),
        a regular file with ``mode`` when given; None when kept."""
        parts, name = self._locate(rel, create=True)
        if not name:
            raise ActionError(f"{self.show(rel)} is a folder; a file cannot be written there")
        fd = self._dir(parts)
        flags = _WRITE_FLAGS
        if not replace:
            flags |= os.O_EXCL  # anything there, a link or a folder too, is kept
        else:
            try:
                st: os.stat_result | None = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None:
                if stat.S_ISDIR(st.st_mode):
                    raise ActionError(
                        f"{self.show(rel)} is a folder; a file cannot be written there"
                    )
                if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
                    os.unlink(name, dir_fd=fd)
        # A new file gets ``mode`` from open (less the umask); fchmod only when
        # that, or the mode of a file replaced, is not ``mode`` already.
        try:
            out = os.open(name, flags, 0o666 if mode is None else mode, dir_fd=fd)
        except FileExistsError:
            return None
        try:
            made = _regular_stat(out, self.show(rel))
            if mode is not None and stat.S_IMODE(made.st_mode) != mode:
                os.fchmod(out, mode)
        except BaseException:
            os.close(out)
            raise
        return out

    def write_bytes(
        self, rel: str, data: bytes, *, mode: int | None = None, replace: bool = True
    ) -> bool:
        """Write ``data`` to ``rel`` (see :meth:`open_write`); False when kept."""
        with self._errors(rel):
            out = self._create(rel, mode, replace)
            if out is None:
                return False
            try:
                # (O_NONBLOCK means nothing to a regular file: written as it is)
                view = memoryview(data)
                while view:
                    view = view[os.write(out, view) :]
            finally:
                os.close(out)
        return True

    def mkdir(self, rel: str) -> None:
        """Make the folder ``rel`` and its parents (a folder there is fine)."""
        with self._errors(rel):
            parts, name = self._locate(rel, create=True, follow=True)
            if not name:
                return
            fd = self._dir(parts)
            try:
                os.mkdir(name, dir_fd=fd)
            except FileExistsError:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    raise ActionError(f"{self.show(rel)} exists and is not a folder") from None

    def symlink(self, rel: str, target: str) -> None:
        """Make ``rel`` a link to ``target`` (replacing a file or link there),
        only when the link stays inside the tree."""
        with self._errors(rel):
            parts, name = self._locate(rel, create=True)
            if not name:
                raise ActionError(f"{self.show(rel)} is a folder; a link cannot be made there")
            self._check_target(parts, rel, target)
            fd = self._dir(parts)
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                pass
            else:
                if stat.S_ISDIR(st.st_mode):
                    raise ActionError(f"{self.show(rel)} is a folder; a link cannot replace it")
                os.unlink(name, dir_fd=fd)
            os.symlink(target, name, dir_fd=fd)

    def remove(self, rel: str) -> bool:
        """Delete ``rel``: a file, a link (not what it points to) or a folder with
        everything in it. False when there was nothing."""
        with self._errors(rel):
            try:
                parts, name = self._locate(rel)
            except (FileNotFoundError, NotADirectoryError):
                return False
            if not name:
                raise ActionError(f"{self.show(rel)} is {self.where} itself; it is not deleted")
            fd = self._dir(parts)
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return False
            if stat.S_ISDIR(st.st_mode):
                self._forget()
                fd = self._dir(parts)
                # rmtree's descriptor-based walk never follows a link either.
                shutil.rmtree(name, dir_fd=fd)
            else:
                os.unlink(name, dir_fd=fd)
            return True

    def rename(self, src: str, dst: str) -> None:
        """Move ``src`` (a link stays a link) to ``dst``, which must not exist;
        its folders are created. A link that would point outside at its new
        place (``a/b/l -> ../x`` moved to ``l``) is moved back and refused."""
        with self._errors(src):
            sparts, sname = self._locate(src)
            if not sname:
                raise ActionError(f"{self.show(src)} is {self.where} itself; it is not moved")
            source_fd = os.dup(self._dir(sparts))
        try:
            with self._errors(dst):
                dparts, dname = self._locate(dst, create=True)
                if not dname:
                    raise ActionError(f"{self.show(dst)} is {self.where} itself")
                dest_fd = self._dir(dparts)
                os.rename(sname, dname, src_dir_fd=source_fd, dst_dir_fd=dest_fd)
                self._forget()
                moved = _join("/".join(dparts), dname)
                try:
                    self._check_moved(moved)
                except UnsafePathError:
                    os.rename(dname, sname, src_dir_fd=self._dir(dparts), dst_dir_fd=source_fd)
                    self._forget()
                    raise
        finally:
            os.close(source_fd)

    def _check_moved(self, rel: str) -> None:
        st = self.lstat(rel)
        if st is None:
            return
        if stat.S_ISLNK(st.st_mode):
            self.check_link(rel)
        elif stat.S_ISDIR(st.st_mode):
            for entry in self.walk(rel):
                if entry.kind == "link":
                    self.check_link(entry.path)


def _regular_stat(fd: int, shown: str) -> os.stat_result:
    """The ``stat`` of ``fd`` when it is a regular file, else refused (left open)."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise ActionError(f"{shown} is not a regular file (a device, socket or pipe)")
    return st


def _regular(fd: int, shown: str, mode: Literal["rb", "wb"]) -> BinaryIO:
    """``fd`` as a file object when it is a regular file, else closed and refused."""
    try:
        _regular_stat(fd, shown)
        os.set_blocking(fd, True)
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise


def _read_all(fd: int, size: int) -> bytes:
    """Everything in ``fd`` (a regular file of ``size`` bytes when opened): one
    read when it gives exactly that (asked for one byte more), else read on to
    the end (a file that changed meanwhile, a short read)."""
    first = os.read(fd, size + 1)
    if len(first) == size:
        return first
    chunks = [first]
    while chunk := os.read(fd, max(size, 1 << 16)):
        chunks.append(chunk)
    return b"".join(chunks)


def walk(
    root: str | os.PathLike[str], *, skip: Collection[str] = (), where: str = "the folder"
) -> Iterator[Entry]:
    """:meth:`Tree.walk` of the whole folder ``root``."""
    with Tree(root, where=where) as tree:
        yield from tree.walk(skip=skip)


def read_regular(path: str | os.PathLike[str], shown: str) -> tuple[bytes, os.stat_result]:
    """The content and ``stat`` of the regular file ``path``, whose place a caller
    has verified (``resolve_safe_path``): its real path is opened with
    O_NOFOLLOW, so nothing swapped in since is followed. ``shown`` names it in
    errors."""
    real = os.path.realpath(path)
    try:
        fd = os.open(real, _READ_FLAGS)
    except OSError as exc:
        raise ActionError(f"{shown}: {exc.strerror or exc}") from exc
    with _regular(fd, shown, "rb") as handle:
        return handle.read(), os.fstat(handle.fileno())


# ------------------------------------------------------- checks without a Tree


def resolve_safe_path(base: Path, user_path: str | os.PathLike[str]) -> Path:
    """Return ``base/user_path`` when it stays inside ``base``, else raise
    ``UnsafePathError`` naming the path. ``""`` and ``"."`` mean the base itself.

    A check of where a path leads now (on its fully resolved path, so a link
    cannot be used to escape); file operations in a workspace use a
    :class:`Tree`, which has no gap between the check and the use."""
    text = os.fspath(user_path)
    if "\x00" in text:
        raise UnsafePathError(f"Path {text!r} contains a NUL byte")
    if os.path.isabs(text) or PurePosixPath(text.replace("\\", "/")).is_absolute():
        raise UnsafePathError(
            f"Path {text!r} is absolute; only paths inside the workspace are allowed"
        )
    root = os.path.realpath(base)
    target = os.path.realpath(os.path.join(root, text))
    if target != root and not target.startswith(root + os.sep):
        raise UnsafePathError(f"Path {text!r} is outside the workspace")
    # Keep the caller's spelling (a link inside the workspace stays a link, so
    # fs:delete removes the link, not what it points to).
    return Path(os.path.normpath(os.path.join(root, text)))


def is_within(root: Path, path: Path) -> bool:
    """True when ``path`` (resolved) is ``root`` or below it."""
    r = os.path.realpath(root)
    p = os.path.realpath(path)
    return os.path.commonpath([r, p]) == r
