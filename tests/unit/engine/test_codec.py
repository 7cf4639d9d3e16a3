"""codec.dumps and codec.loads: orjson where it answers as json would, json's C
encoder (one per thread) where not, and what a failed call must not leave behind."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
import sys
import threading
import time
import uuid
from typing import Any

import pytest

from falsework.engine import codec
from falsework.engine.codec import dumps


def test_a_failed_encoding_leaves_no_marker_for_the_next_call() -> None:
    # the C encoder marks each container it is inside of; one that raised
    # midway leaves them marked, and the same containers encoded again would be
    # taken for a circular reference (a None sends a value to the C encoder)
    inner: dict[str, object] = {"x": object()}
    outer = [inner, {"y": [inner]}]
    with pytest.raises(TypeError):
        dumps(outer)
    inner["x"] = None
    assert dumps(outer) == '[{"x":null},{"y":[{"x":null}]}]'
    # the thread's encoder was replaced once: later calls do not pay for a new one each
    pair = codec._LOCAL.pair
    assert pair[0] == {} and dumps({"z": None}) == '{"z":null}' and codec._LOCAL.pair is pair
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


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class _Color(enum.Enum):
    RED = "red"


class _Level(enum.IntEnum):
    HIGH = 3


class _Text(str):
    pass


class _Hiding(dict[str, Any]):
    """A mapping that shows json less than it holds: json asks a dict subclass
    for its items(); orjson would read the dict itself."""

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        return [(k, v) for k, v in super().items() if not k.startswith("_")]


@dataclasses.dataclass
class _Point:
    x: int


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [True, False], "c": 'é \u2028 \n \t \x1f "q" \\'},
        {"n": None, "deep": [[[{"k": None}]]]},
        [0.1 + 0.2, -0.0, 1.5, 2**63, -(2**63), 2**64 - 1],
        {"big": 2**64, "small": -(2**63) - 1, "huge": 10**40},
        {"1": "string key"},
        {7: "int key", 2.5: "float key", True: "bool key", None: "none key"},
        ("a", ("tuple", 1)),
        {"level": _Level.HIGH},
        {"text": _Text("a str subclass"), _Text("key"): 1},
        {"surrogate": "\ud800"},
        {"shown": _Hiding(a=1, _secret="s")},
    ],
)
def test_dumps_writes_what_json_writes(value: Any) -> None:
    # the same text wherever json writes an integer or a string; the same
    # value read back wherever orjson may spell a float its own way
    text = dumps(value)
    assert json.loads(text) == json.loads(_json(value))
    if not any(isinstance(x, float) for x in _leaves(value)):
        assert text == _json(value)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in [k, *_leaves(v)]]
    if isinstance(value, list | tuple):
        return [x for v in value for x in _leaves(v)]
    return [value]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_dumps_refuses_nan_and_infinity_anywhere(bad: float) -> None:
    # orjson would write each as null
    for value in (bad, [bad], {"a": {"b": [1, bad]}}, {"a": None, "b": bad}):
        with pytest.raises(ValueError, match="Out of range float"):
            dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2026, 1, 2, 3, 4, 5),
        datetime.date(2026, 1, 2),
        datetime.time(3, 4),
        _Point(1),
        b"bytes",
        {1, 2},
        object(),
    ],
)
def test_dumps_refuses_what_json_refuses_with_jsons_message(value: Any) -> None:
    with pytest.raises(TypeError) as ours:
        dumps({"v": [value]})
    with pytest.raises(TypeError) as theirs:
        _json({"v": [value]})
    assert str(ours.value) == str(theirs.value)


def test_dumps_writes_a_uuid_and_an_enum_member_as_their_text() -> None:
    # the two types orjson writes and json refuses (the module's docstring)
    key = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert dumps({"id": key, "c": _Color.RED}) == (
        '{"id":"12345678-1234-5678-1234-567812345678","c":"red"}'
    )


def test_dumps_of_a_deep_value_is_jsons() -> None:
    # orjson stops at 254 levels; json goes on
    value: Any = 1
    for _ in range(400):
        value = [value]
    assert dumps(value) == "[" * 400 + "1" + "]" * 400


@pytest.mark.parametrize(
    "text",
    [
        '{"a":[1,2.5,null,true,"\\u00e9"]}',
        "123456789012345678901234567890",
        "-9223372036854775809",
        '{"n":18446744073709551616,"m":[-12345678901234567890123]}',
        '{"id":"00000000000000000000000000"}',
        "9223372036854775807",
        '{"a":1,"a":2}',
        "NaN",
        "[Infinity,-Infinity]",
        "1e400",
        '"\\ud800"',
    ],
)
def test_loads_reads_what_json_reads(text: str) -> None:
    ours = codec.loads(text)
    theirs = json.loads(text)
    assert repr(ours) == repr(theirs)  # repr: nan == nan is false, and 1 == 1.0 is true
    assert repr(codec.loads(text.encode())) == repr(theirs)


@pytest.mark.parametrize("text", ["", "{", "[1,]", "nul", '{"a" 1}'])
def test_loads_refuses_what_json_refuses(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        codec.loads(text)


def test_loads_reads_a_lone_surrogate_in_the_text_itself() -> None:
    # not an escape: the character, as a str may hold it
    assert codec.loads('["a\ud800b"]') == ["a\ud800b"]


def test_an_integer_beyond_64_bits_comes_back_as_the_same_integer() -> None:
    value = {"id": 2**70 + 1, "neg": -(2**70), "list": [10**25]}
    assert codec.loads(dumps(value)) == value
    assert type(codec.loads(dumps(value))["id"]) is int


def test_dumps_rows_keeps_null_cells_on_orjson_and_writes_jsons_text() -> None:
    rows: list[Any] = [
        ["id-1", '{"a":1}', None, "user:default/x", 0, None, "none", None, None, None, None],
        ["id-2", "{}", "sealed", None, -3, "2026-12-07T00:00:00+00:00", "retry", "key", True],
        ["big", 2**70, "surrogate \ud800", "nul \x00 here", False],
    ]
    for value in (rows[:2], rows):
        assert codec.dumps_rows(value) == _json(value).replace("\\u0000", "\ufffd")
    assert codec.dumps_rows([]) == "[]"


def test_dumps_rows_of_the_engines_task_rows_is_jsons() -> None:
    from falsework.engine.models import TaskRow
    from falsework.engine.postgres import _task_rows

    keyed = TaskRow("t1", "{}", "sealed", "user:default/a", 2, None, "none", "k-1")
    bare = dataclasses.replace(keyed, id="t2", sealed_secrets=None, idempotency_key=None)
    assert _task_rows([keyed, bare]) == _json(
        [
            ["t1", "{}", "sealed", "user:default/a", 2, None, "none", "k-1", None, None, None],
            ["t2", "{}", None, "user:default/a", 2, None, "none", None, None, None, None],
        ]
    )
