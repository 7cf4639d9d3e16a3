"""The step's key joins a commit message's trailers, as git itself reads them."""

from __future__ import annotations

import subprocess

import pytest

from falsework.actions.git import KEY_TRAILER, keyed_message


def trailers(message: str) -> list[str]:
    done = subprocess.run(
        ["git", "interpret-trailers", "--parse"],
        input=message,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


@pytest.mark.parametrize(
    ("message", "before"),
    [
        ("Create svc\n\nChange-Id: I0123abcd", ["Change-Id: I0123abcd"]),
        (
            "Subject\n\nA body.\n\nSigned-off-by: A <a@example.com>",
            ["Signed-off-by: A <a@example.com>"],
        ),
        ("Create svc", []),
        ("Subject\n\nA body that is not: a trailer block\nbecause of this line", []),
    ],
)
def test_the_key_is_one_more_trailer(message: str, before: list[str]) -> None:
    keyed = keyed_message(message, "k-1")
    assert trailers(keyed) == [*before, f"{KEY_TRAILER}: k-1"]
    assert keyed.startswith(message.rstrip())
