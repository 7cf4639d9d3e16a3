"""A listener asks the server about its link only after a silence (notify.Silence)."""

from __future__ import annotations

from falsework.engine.notify import Silence


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_question_is_due_a_keepalive_after_the_last_word() -> None:
    clock = Clock()
    silence = Silence(2.0, clock)
    assert silence.left() == 2.0
    clock.now += 1.5
    assert silence.left() == 0.5
    clock.now += 0.5
    assert silence.left() <= 0  # two seconds without a word: ask now


def test_every_word_from_the_server_puts_the_question_off() -> None:
    clock = Clock()
    silence = Silence(2.0, clock)
    for _ in range(10):  # a notification every second for ten seconds
        clock.now += 1.0
        assert silence.left() > 0
        silence.heard()
    assert silence.left() == 2.0
    clock.now += 2.5
    assert silence.left() < 0
