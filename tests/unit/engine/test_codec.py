"""codec.dumps: one shared C encoder, and what a failed call must not leave behind."""

from __future__ import annotations

import json
import threading

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
    # the shared encoder was replaced: later calls do not pay for a new one each
    assert codec._SHARED is not None and codec._SHARED[0] == {}
    inner["x"] = 1
    assert dumps(outer) == '[{"x":1},{"y":[{"x":1}]}]'
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
