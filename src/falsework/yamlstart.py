"""PyYAML's import without its one slow line (issue 17: the command line's start).

``yaml.reader`` compiles, when imported, a character class of the characters a
YAML stream may not hold, written as the ranges it *may* hold: ``re`` builds that
class by setting one flag per code point of ``\\xA0-\\uD7FF`` and
``\\uE000-\\uFFFD``, some 63,000 steps of Python, 57 M instructions, a twentieth
of ``falsework run``'s whole start. The same class written as the few characters
it refuses compiles in a thousandth of that.

``seed()`` puts that equal pattern in ``re``'s cache under the key of PyYAML's
(its text, no flags), so PyYAML's ``re.compile`` finds it instead of compiling;
it matches exactly the same characters (``tests/unit/test_yamlstart.py`` holds
the two equal over every code point), so ``Reader.check_printable`` finds and
reports the same character at the same place. Called by ``falsework/__init__``,
before anything of Falsework imports PyYAML; a no-op once ``yaml.reader`` is
imported, or if ``re`` keeps no such cache (then PyYAML compiles its own).
"""

from __future__ import annotations

import re
import sys

# yaml/reader.py's Reader.NON_PRINTABLE, as PyYAML 5.1 to 6.x write it
PYYAML = "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
# the same set: the characters of U+0000..U+10FFFF outside PyYAML's ranges
REFUSED = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]"


def seed() -> None:
    cache = getattr(re, "_cache", None)
    if "yaml.reader" in sys.modules or not isinstance(cache, dict):
        return
    cache.setdefault((str, PYYAML, 0), re.compile(REFUSED))
