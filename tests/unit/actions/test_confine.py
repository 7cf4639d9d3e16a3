"""falsework.confine: the one workspace rule, on real folders and real links.

Every attack leaves a canary folder beside the tree, which must stay as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from falsework import confine
from falsework.confine import Tree, relative, walk
from falsework.errors import ActionError, UnsafePathError


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    folder = tmp_path / "canary"
    folder.mkdir()
    (folder / "secret.txt").write_text("CANARY")
    return folder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "ws"
    folder.mkdir()
    return folder


def untouched(canary: Path) -> bool:
    return sorted(os.listdir(canary)) == ["secret.txt"] and (
        (canary / "secret.txt").read_text() == "CANARY"
    )


def test_relative_normalises_and_refuses_climbing() -> None:
    assert relative("./a/../b//c/") == "b/c"
    assert relative(".") == relative("") == ""
    for bad in ("../x", "a/../../x", "/etc/passwd", "a\x00b"):
        with pytest.raises(UnsafePathError, match="Path"):
            relative(bad)


def test_a_folder_link_on_the_way_out_is_refused(root: Path, canary: Path) -> None:
    (root / "out").symlink_to(canary)
    (root / "rel").symlink_to("../canary")
    with Tree(root) as tree:
        for path in ("out/planted.txt", "rel/planted.txt", "out/secret.txt"):
            with pytest.raises(UnsafePathError, match="leads outside the workspace"):
                tree.write_bytes(path, b"x")
        with pytest.raises(UnsafePathError):
            tree.mkdir("out/sub")
        with pytest.raises(UnsafePathError):
            tree.read_bytes("rel/secret.txt")
        with pytest.raises(UnsafePathError):
            tree.remove("out/secret.txt")
        with pytest.raises(UnsafePathError):
            list(tree.walk("out"))
    assert untouched(canary)


def test_the_last_name_is_never_followed(root: Path, canary: Path) -> None:
    (root / "leak").symlink_to(canary / "secret.txt")
    with Tree(root) as tree:
        with pytest.raises(UnsafePathError, match="symbolic link is in the way"):
            tree.read_bytes("leak")
        # writing onto a link replaces the link, never what it points to
        assert tree.write_bytes("leak", b"mine")
        assert not (root / "leak").is_symlink() and (root / "leak").read_bytes() == b"mine"
        (root / "gone").symlink_to(canary)
        assert tree.remove("gone")  # the link, not the folder
    assert untouched(canary)


def test_links_inside_are_followed_as_folders_on_the_way(root: Path) -> None:
    (root / "real/deep").mkdir(parents=True)
    (root / "docs").symlink_to("real")
    (root / "real/up").symlink_to("../real/deep")
    with Tree(root) as tree:
        tree.write_bytes("docs/a.txt", b"a")
        tree.write_bytes("docs/up/b.txt", b"b")
        assert tree.canonical("docs/up") == "real/deep"
        assert tree.is_dir("docs") and not tree.is_dir("docs/a.txt")
    assert (root / "real/a.txt").read_bytes() == b"a"
    assert (root / "real/deep/b.txt").read_bytes() == b"b"


@pytest.mark.parametrize(
    ("links", "bad"),
    [
        ({"abs": "/etc"}, "abs"),
        ({"up": "../../../../../../../../../etc/passwd"}, "up"),
        ({"sub/up": "../../x"}, "sub/up"),
        ({"a": "b", "b": "/etc"}, "a"),  # a chain through an absolute link
        ({"a": "b/c", "b": "sub/../.."}, "a"),  # a chain climbing out
        ({"here": ".", "a": "here/../x"}, "a"),  # `..` after a link to the root itself
        ({"a": "missing/../../x"}, "a"),  # a dangling folder does not hide a climb
    ],
)
def test_links_pointing_outside_are_refused_naming_the_file(
    root: Path, links: dict[str, str], bad: str
) -> None:
    (root / "sub").mkdir()
    for name, target in links.items():
        (root / name).symlink_to(target)
    with Tree(root) as tree, pytest.raises(UnsafePathError) as info:
        tree.check_link(bad)
    assert f"{bad} -> {links[bad]}: a symbolic link may not point outside the workspace" in str(
        info.value
    )


@pytest.mark.parametrize("target", ["README.md", "sub", "sub/../README.md", "sub/x/../../sub"])
def test_links_staying_inside_are_allowed(root: Path, target: str) -> None:
    (root / "sub").mkdir()
    (root / "README.md").write_text("r")
    (root / "link").symlink_to(target)
    with Tree(root) as tree:
        tree.check_link("link")
        tree.symlink("sub/made", "../" + target)
    assert os.readlink(root / "sub/made") == "../" + target


def test_making_a_link_that_points_outside_is_refused(root: Path) -> None:
    with Tree(root) as tree:
        for target in ("/etc", "../x", "a/../../x"):
            with pytest.raises(UnsafePathError, match="may not point outside"):
                tree.symlink("l", target)
    assert os.listdir(root) == []


def test_a_link_loop_is_an_error_not_a_hang(root: Path) -> None:
    (root / "a").symlink_to("b")
    (root / "b").symlink_to("a")
    with Tree(root) as tree, pytest.raises(ActionError, match="too many levels"):
        tree.write_bytes("a/x", b"x")


def test_moving_a_link_where_it_would_point_outside_is_undone(root: Path) -> None:
    (root / "a/b").mkdir(parents=True)
    (root / "a/b/l").symlink_to("../x")  # a/x: inside
    with Tree(root) as tree:
        with pytest.raises(UnsafePathError, match="may not point outside"):
            tree.rename("a/b/l", "l")  # ../x from the top: outside
        tree.rename("a", "c/a")  # deeper still points inside
    assert os.readlink(root / "c/a/b/l") == "../x" and not (root / "l").exists()


def test_walk_lists_links_as_links_and_skips_what_it_is_told(root: Path, canary: Path) -> None:
    (root / "b/c").mkdir(parents=True)
    (root / "b/c/f.txt").write_text("f")
    (root / ".git").mkdir()
    (root / ".git/config").write_text("c")
    (root / "a.txt").write_text("a")
    (root / "out").symlink_to(canary)
    os.mkfifo(root / "pipe")
    entries = [(e.path, e.kind) for e in walk(root, skip={".git"})]
    assert entries == [
        ("a.txt", "file"),
        ("b", "dir"),
        ("b/c", "dir"),
        ("b/c/f.txt", "file"),
        ("out", "link"),
        ("pipe", "other"),
    ]
    with Tree(root) as tree:
        assert [e.path for e in tree.walk("b", recursive=False)] == ["b/c"]
        with pytest.raises(ActionError, match="not a regular file"):
            tree.read_bytes("pipe")  # refused at once, never blocks on the FIFO


def test_writing_onto_a_hard_link_replaces_it(root: Path, canary: Path) -> None:
    os.link(canary / "secret.txt", root / "hard")
    with Tree(root) as tree:
        tree.write_bytes("hard", b"mine")
    assert (root / "hard").read_bytes() == b"mine" and untouched(canary)


def test_deleting_a_folder_never_follows_links_in_it(root: Path, canary: Path) -> None:
    (root / "d").mkdir()
    (root / "d/out").symlink_to(canary)
    with Tree(root) as tree:
        assert tree.remove("d")
        assert not tree.remove("d")
        with pytest.raises(ActionError, match="workspace itself"):
            tree.remove("")
    assert untouched(canary) and os.listdir(root) == []


def test_a_write_without_replace_keeps_whatever_is_there(root: Path, canary: Path) -> None:
    (root / "out").symlink_to(canary / "secret.txt")
    (root / "dangling").symlink_to("nowhere")
    (root / "folder").mkdir()
    (root / "file").write_bytes(b"old")
    with Tree(root) as tree:
        for name in ("out", "dangling", "folder", "file"):
            assert not tree.write_bytes(name, b"mine", replace=False), name
        assert tree.write_bytes("new", b"mine", replace=False)
    assert (root / "out").is_symlink() and (root / "dangling").is_symlink()
    assert (root / "file").read_bytes() == b"old" and (root / "new").read_bytes() == b"mine"
    assert not (root / "nowhere").exists() and untouched(canary)


@pytest.mark.parametrize("mode", [0o644, 0o666, 0o750, 0o600, 0o000])
def test_a_written_file_has_exactly_the_mode_asked_for(root: Path, mode: int) -> None:
    (root / "replaced").write_bytes(b"old")
    os.chmod(root / "replaced", 0o640)
    previous = os.umask(0o022)  # 0o666 made by open would be 0o644
    try:
        with Tree(root) as tree:
            assert tree.write_bytes("new", b"data", mode=mode)
            assert tree.write_bytes("replaced", b"data", mode=mode)
    finally:
        os.umask(previous)
    for name in ("new", "replaced"):
        assert (root / name).stat().st_mode & 0o7777 == mode, name


@pytest.mark.parametrize("size", [0, 1, 65_536, 300_001])
def test_read_bytes_reads_a_file_whole(root: Path, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    (root / "f").write_bytes(data)
    with Tree(root) as tree:
        assert tree.read_bytes("f") == data
    # a file that changed size since it was looked at is read to its end
    from falsework.confine import _read_all

    fd = os.open(root / "f", os.O_RDONLY)
    try:
        assert _read_all(fd, max(size - 7, 0)) == data
    finally:
        os.close(fd)


class SwapAfterCheck:
    """confine's ``os``, but right after a check looks at ``name`` (its ``stat``),
    ``swap`` runs: another process putting a link there between the check and the
    use. Only the module's own name ``os`` is replaced."""

    def __init__(self, name: str, swap: Callable[[], None]) -> None:
        self.name = name
        self.swap = swap
        self.swapped = False

    def __getattr__(self, attr: str) -> Any:
        return getattr(os, attr)

    def stat(self, path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        result = os.stat(path, *args, **kwargs)
        if path == self.name and not self.swapped:
            self.swapped = True
            self.swap()
        return result


def swap_for_link(path: Path, target: Path) -> Callable[[], None]:
    def swap() -> None:
        path.rename(path.with_name(path.name + ".moved"))
        path.symlink_to(target)

    return swap


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda tree: tree.write_bytes("sub/secret.txt", b"x"), id="write"),
        pytest.param(lambda tree: tree.open_write("sub/secret.txt"), id="open_write"),
        pytest.param(lambda tree: tree.read_bytes("sub/secret.txt"), id="read"),
        pytest.param(lambda tree: tree.mkdir("sub/planted"), id="mkdir"),
        pytest.param(lambda tree: tree.symlink("sub/planted", "x"), id="symlink"),
    ],
)
def test_a_folder_swapped_for_a_link_after_the_check_is_never_followed(
    root: Path, canary: Path, monkeypatch: pytest.MonkeyPatch, operation: Any
) -> None:
    # `sub` is a real folder when the walk looks at it, a link to the canary
    # when the folder is opened: O_NOFOLLOW refuses it, nothing outside changes.
    (root / "sub").mkdir()
    (root / "sub" / "secret.txt").write_text("mine")
    monkeypatch.setattr(confine, "os", SwapAfterCheck("sub", swap_for_link(root / "sub", canary)))
    with Tree(root) as tree, pytest.raises(UnsafePathError, match="symbolic link is in the way"):
        operation(tree)
    assert confine.os.swapped  # type: ignore[attr-defined]
    assert untouched(canary)


def test_a_file_swapped_for_a_link_after_the_check_is_never_written_through(
    root: Path, canary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A write looks at what is there (to replace a link, a folder, a hard link);
    # a link put there after that look is refused by O_NOFOLLOW, not written through.
    (root / "out.txt").write_text("mine")
    target = canary / "secret.txt"
    monkeypatch.setattr(
        confine, "os", SwapAfterCheck("out.txt", swap_for_link(root / "out.txt", target))
    )
    with Tree(root) as tree, pytest.raises(UnsafePathError, match="symbolic link is in the way"):
        tree.write_bytes("out.txt", b"planted")
    assert confine.os.swapped  # type: ignore[attr-defined]
    assert untouched(canary)
