"""codec.dumps: one shared C encoder, and what a failed call must not leave behind."""

from __future__ import annotations

import json
import sys
import threading
import time

import pytest

from falsework.engine import codec
from falsework.engine.codec import dumps


def test_a_failed_encoding_leaves_no_marker_for_the_next_call() -> None:
    # the C encoder marks each container it is inside of; one that raised
    # midway leaves them marked, and the same containers encoded again would be
    # taken for a circular reference
    inner: dict[str, object] = {"x": object()}
    outer = [inner, {"y": [inner]}]
    with pytest.raises(TypeError):
        dumps(outer)
    inner["x"] = 1
    assert dumps(outer) == '[{"x":1},{"y":[{"x":1}]}]'
    # the thread's encoder was replaced once: later calls do not pay for a new one each
    pair = codec._LOCAL.pair
    assert pair[0] == {} and dumps({"z": 1}) == '{"z":1}' and codec._LOCAL.pair is pair
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular"):
        dumps({"a": loop})
    assert dumps({"a": [1, 2]}) == '{"a":[1,2]}'


def test_the_same_object_twice_is_no_circle_and_the_text_is_jsons() -> None:
    shared = {"k": "v\u00e9", "n": [1.5, None, True]}
    value = {"a": shared, "b": [shared, shared]}
    assert dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    with pytest.raises(ValueError):
        dumps({"x": float("nan")})
    assert dumps({"x": "a\x00b"}) == '{"x":"a\ufffdb"}'


def test_threads_encoding_at_once_get_their_own_text() -> None:
    results: dict[int, set[str]] = {}

    def encode(n: int) -> None:
        value = {"n": n, "items": [{"i": i, "n": n} for i in range(50)]}
        results[n] = {dumps(value) for _ in range(200)}

    threads = [threading.Thread(target=encode, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n, texts in results.items():
        assert texts == {
            json.dumps(
                {"n": n, "items": [{"i": i, "n": n} for i in range(50)]}, separators=(",", ":")
            )
        }


class _Slow(dict[str, object]):
    """A dict subclass: the C encoder asks for its items() in Python, where this
    one lets the other thread run in the middle of an encoding."""

    def items(self):  # type: ignore[override]
        time.sleep(0.0005)
        return super().items()


def test_two_threads_inside_an_encoding_at_once_see_no_circle() -> None:
    # both threads hold the same containers inside the C encoder at the same
    # time: one set of markers shared between them took the other thread's
    # containers for a circular reference (the API's loop and SQLite's writer
    # thread both encode)
    shared = _Slow(k=[_Slow(i=i) for i in range(20)])
    errors: list[BaseException] = []
    texts: set[str] = set()
    start = threading.Barrier(2)

    def encode() -> None:
        start.wait()
        for _ in range(30):
            try:
                texts.add(dumps({"a": shared, "b": [shared]}))
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

    threads = [threading.Thread(target=encode) for _ in range(2)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads every few bytecodes
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    plain = {"k": [{"i": i} for i in range(20)]}
    assert texts == {json.dumps({"a": plain, "b": [plain]}, separators=(",", ":"))}
