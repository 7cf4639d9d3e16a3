"""``codec.shared``: a claimed task's spec shares its keys and short strings
with every other decoded spec, and stays equal to what was decoded."""

from __future__ import annotations

import json

from falsework.engine.codec import SHARED_TEXT, shared


def _spec(name: str) -> str:
    return json.dumps(
        {
            "apiVersion": "scaffolder.backstage.io/v1beta3",
            "steps": [{"id": "wait", "action": "debug:wait", "input": {"seconds": 1.5}}],
            "parameters": {"name": name, "long": "x" * (SHARED_TEXT + 1), "n": [1, None, True]},
        }
    )


def test_two_decoded_specs_share_their_keys_and_short_strings() -> None:
    first = shared(json.loads(_spec("a")))
    second = shared(json.loads(_spec("b")))
    assert first == json.loads(_spec("a"))  # the same value, only its text shared
    key_1 = next(k for k in first if k == "apiVersion")
    key_2 = next(k for k in second if k == "apiVersion")
    assert key_1 is key_2
    assert first["apiVersion"] is second["apiVersion"]
    assert first["steps"][0]["action"] is second["steps"][0]["action"]
    # a plain parse shares neither
    plain_1, plain_2 = json.loads(_spec("a")), json.loads(_spec("b"))
    assert plain_1["steps"][0]["action"] is not plain_2["steps"][0]["action"]


def test_long_strings_are_left_alone() -> None:
    first = shared(json.loads(_spec("a")))
    second = shared(json.loads(_spec("a")))
    assert first["parameters"]["long"] == second["parameters"]["long"]
    assert first["parameters"]["long"] is not second["parameters"]["long"]


def test_strings_and_objects_inside_arrays_are_shared_too() -> None:
    text = json.dumps({"tags": ["team-a", ["nested", {"key": "value"}], 3, None]})
    first, second = shared(json.loads(text)), shared(json.loads(text))
    assert first == json.loads(text)
    assert first["tags"][0] is second["tags"][0]
    assert first["tags"][1][0] is second["tags"][1][0]
    assert first["tags"][1][1]["key"] is second["tags"][1][1]["key"]
    assert next(iter(first["tags"][1][1])) is next(iter(second["tags"][1][1]))
