"""templates.syntax.load_all: libyaml's parser under PyYAML's composer reads every
template exactly as PyYAML's pure-Python loader does, and its mistakes in the
same words."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from falsework.templates import syntax
from falsework.templates.syntax import MAX_YAML_DEPTH, CoreLoader, load_all
from support.paths import REPO as ROOT


def _pure(text: str) -> list[object]:
    return [d for d in yaml.load_all(text, Loader=CoreLoader) if d is not None]


def _yaml_files() -> list[Path]:
    found = [*ROOT.glob("examples/**/*.yaml"), *ROOT.glob("tests/**/*.yaml")]
    return sorted(p for p in found if "snapshot" not in p.parts)


def test_libyaml_is_there_to_read_with() -> None:
    assert syntax._FAST is not None  # else load_all is PyYAML's pure loader alone


def test_every_yaml_file_of_the_repository_reads_the_same() -> None:
    files = _yaml_files()
    assert len(files) > 20
    for path in files:
        text = path.read_text(encoding="utf-8")
        try:
            expected = _pure(text)
        except yaml.YAMLError:
            continue
        assert load_all(text) == expected, path


CORE = """\
a: yes
b: 2024-01-01
c: 010
d: 0o17
e: 1_000
f: .inf
g: ~
h: [on, off, "x"]
i: &anchor {k: v}
j: *anchor
k: |
  two
  lines
l: !!str 12
"""


def test_the_core_schema_reads_the_same() -> None:
    (doc,) = load_all(CORE)
    assert doc == _pure(CORE)[0]
    assert isinstance(doc, dict)
    assert doc["a"] == "yes" and doc["b"] == "2024-01-01" and doc["c"] == 10
    assert doc["d"] == 15 and doc["e"] == "1_000" and doc["j"] == {"k": "v"}
    assert doc["l"] == "12"


def test_several_documents_and_empty_ones() -> None:
    text = "---\na: 1\n---\n---\nb: [2]\n"
    assert load_all(text) == _pure(text) == [{"a": 1}, {"b": [2]}]


@pytest.mark.parametrize(
    "text",
    [
        "a: b: c\n",
        "a:\n\tb: 1\n",
        "a: 'open\n",
        "a: [1, 2\n",
        "a: *nowhere\n",
        "a: 1\n b: 2\nc: \x07\n",
    ],
)
def test_a_mistake_is_pyyamls_own(text: str) -> None:
    with pytest.raises(yaml.YAMLError) as pure:
        _pure(text)
    with pytest.raises(yaml.YAMLError) as ours:
        load_all(text)
    assert str(ours.value) == str(pure.value)
    assert type(ours.value) is type(pure.value)


def test_nesting_is_still_bounded() -> None:
    deep = "a: " + "[" * (MAX_YAML_DEPTH + 1) + "]" * (MAX_YAML_DEPTH + 1) + "\n"
    with pytest.raises(yaml.YAMLError, match=f"deeper than the limit of {MAX_YAML_DEPTH}"):
        load_all(deep)
    ok = "a: " + "[" * (MAX_YAML_DEPTH - 1) + "]" * (MAX_YAML_DEPTH - 1) + "\n"
    assert load_all(ok) == _pure(ok)


def test_the_fast_loader_bounds_nesting_itself() -> None:
    # not only through the fallback: libyaml's parser under the bounded composer
    assert syntax._FAST is not None
    loader = syntax._FAST("[[[[[1]]]]]")
    loader.max_depth = 3  # type: ignore[attr-defined]
    with pytest.raises(yaml.composer.ComposerError, match="deeper than the limit of 3"):
        loader.get_single_data()
