"""The Redactor cannot be changed once built: one instance without secrets is
shared by every run that has none."""

from __future__ import annotations

import re

import pytest

from falsework.runner import Redactor, workflow


@pytest.mark.parametrize(
    "redactor", [workflow._NO_SECRETS, Redactor({"token": "s3cr3t"})], ids=["shared", "own"]
)
def test_a_redactor_cannot_be_changed(redactor: Redactor) -> None:
    before = redactor.text("s3cr3t and more")
    for name in ("_pattern", "_slow", "anything"):
        with pytest.raises(AttributeError, match="a Redactor cannot be changed"):
            setattr(redactor, name, re.compile("and"))
    for name in ("_pattern", "_slow"):
        with pytest.raises(AttributeError, match="a Redactor cannot be changed"):
            delattr(redactor, name)
    assert redactor.text("s3cr3t and more") == before


def test_the_shared_redactor_masks_nothing_and_holds_nothing() -> None:
    shared = workflow._NO_SECRETS
    assert not shared.active
    assert shared.text("s3cr3t İ") == "s3cr3t İ"
    assert shared.deep({"k": ["v"]}) == {"k": ["v"]}


def test_the_case_blind_pattern_is_still_compiled_on_first_need() -> None:
    # "İ" lower-cases to two characters: such a text takes the IGNORECASE pattern,
    # the one thing a redactor compiles after it is built
    redactor = Redactor({"token": "S3cr3t"})
    assert redactor.text("İ s3CR3T, İ") == "İ ***, İ"
    assert redactor.text("again İ S3CR3T") == "again İ ***"
    assert redactor.text("plain s3cr3t") == "plain ***"
