"""Bounded CPU and memory (issue 8, findings 5 and 6): regular expressions,
filter output, the render cache, ``each``, logs and dry-run results, parameter
schemas, and work kept off the event loop.

In-process against the Renderer, the runner and ``validate_values``; memory
attacks in a subprocess under an address-space limit (so a regression cannot
take the test runner down); the event-loop checks through a real
``falsework serve`` attacked as the plain user alice.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from falsework.errors import TemplateSecurityError, TemplateSyntaxError
from falsework.templating import Renderer

CTX: dict[str, Any] = {"parameters": {"name": "my-svc", "long": "a" * 30 + "b"}}

# The hostile patterns of the report: each compiles to more than a few
# thousand nodes because counted repeats are unrolled.
HOSTILE_PATTERNS = [
    "(((a{1000}){1000}){1000})",
    "((a{100}){100}){100}",
    "(?:x{1000}){1000}",
    "(?:[ab]{200}){200}",
    "(a{1000}|b{1000}){1000}",
    "(?i)(?:(?:a{50}){50}){50}",
]


def _bounded_python(code: str, address_space_mb: int = 1500) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter whose address space is capped, and
    return the JSON object it prints last."""
    prelude = textwrap.dedent(
        f"""
        import json, resource
        limit = {address_space_mb} * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        import psutil
        def rss() -> int:
            return psutil.Process().memory_info().rss
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# -- regular expressions ------------------------------------------------------


def test_hostile_regex_literals_are_refused_before_they_compile() -> None:
    # In a capped subprocess: before the change the first pattern allocated until
    # the process died (here: MemoryError at the cap).
    result = _bounded_python(
        f"""
        from falsework.errors import TemplateError
        from falsework.templating import Renderer
        renderer = Renderer()
        outcomes = []
        for pattern in {HOSTILE_PATTERNS!r}:
            source = '${{{{ parameters.name | replace(r/' + pattern + '/g, "") }}}}'
            try:
                renderer.render(source, {{"parameters": {{"name": "a"}}}})
                outcome = "rendered"
            except TemplateError as exc:
                outcome = type(exc).__name__ + ": " + exc.message
            except MemoryError:
                outcome = "MemoryError"
            outcomes.append([outcome, renderer.check(source)])
        dynamic = '${{{{ "aaa" | replace(nunjucks_regex(parameters.p, "g"), "") }}}}'
        try:
            renderer.render(dynamic, {{"parameters": {{"p": {HOSTILE_PATTERNS[0]!r}}}}})
            at_run_time = "rendered"
        except TemplateError as exc:
            at_run_time = type(exc).__name__ + ": " + exc.message
        except MemoryError:
            at_run_time = "MemoryError"
        print(json.dumps({{"outcomes": outcomes, "at_run_time": at_run_time}}))
        """
    )
    for pattern, (outcome, problems) in zip(HOSTILE_PATTERNS, result["outcomes"], strict=True):
        # the error names the literal
        assert outcome.startswith(f"TemplateSyntaxError: regular expression /{pattern}/g: ")
        assert "repeats multiply" in outcome
        # `templates validate` finds it without running anything
        assert problems and "repeats multiply" in problems[0]
    # a pattern a template builds from a value at run time gets the same check
    assert result["at_run_time"].startswith("TemplateSyntaxError: ")
    assert "repeats multiply" in result["at_run_time"]


def test_long_patterns_and_fuzzy_matching_are_refused() -> None:
    renderer = Renderer()
    with pytest.raises(TemplateSyntaxError, match="over the limit of 2,000"):
        renderer.render("${{ r/" + "a" * 2001 + "/.test('a') }}", CTX)
    with pytest.raises(TemplateSyntaxError, match="fuzzy matching"):
        renderer.render("${{ r/(?:abc){e<=2}/.test('abd') }}", CTX)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # shapes real templates use stay accepted
        ("${{ r/^[a-z0-9-]{1,63}(\\.[a-z0-9-]{1,63}){0,10}$/.test('a.b-c') }}", True),
        ("${{ r/^\\d{4}-\\d{2}-\\d{2}$/.test('2024-01-31') }}", True),
        ("${{ r/\\p{Lu}{2}/.test('AB') }}", True),
        ("${{ r/[{]x{2}[}]/.test('{xx}') }}", True),
        ("${{ r/a{2,}/.test('aaa') }}", True),
        ("${{ r/(a{99}){99}/.test('a') }}", False),  # 9,900 nodes: just under the limit
    ],
)
def test_ordinary_counted_repeats_still_work(source: str, expected: bool) -> None:
    assert Renderer().render(source, CTX) is expected


def test_hostile_and_large_patterns_leave_the_memory_as_it_was() -> None:
    # Before the change: the first pattern allocated until the address-space
    # limit (MemoryError), and every large pattern stayed in a 256-entry cache
    # (2.5 MB each here: 300 of them kept ~640 MB for good).
    result = _bounded_python(
        """
        from falsework.errors import TemplateError
        from falsework.templating import Renderer
        renderer = Renderer()
        ctx = {"parameters": {"name": "a" * 50}}
        renderer.render("${{ r/warm/.test('up') }}", ctx)
        before = rss()
        refused = []
        for i in range(20):
            source = "${{ r/x%d(((a{1000}){1000}){1000})/.test('a') }}" % i
            try:
                renderer.render(source, ctx)
                refused.append("accepted")
            except TemplateError as exc:
                refused.append(type(exc).__name__)
        for i in range(300):  # large but allowed: compiled, never kept
            renderer.render("${{ r/q%d(a{98}){99}/.test(parameters.name) }}" % i, ctx)
        for i in range(3000):  # small: kept within the cache's budget
            renderer.render("${{ r/^s%d[a-z]{3}$/.test(parameters.name) }}" % i, ctx)
        print(json.dumps({"refused": refused, "growth_mb": (rss() - before) / 2**20}))
        """
    )
    assert result["refused"] == ["TemplateSyntaxError"] * 20
    assert result["growth_mb"] < 60, result


def test_a_replacement_that_grows_the_text_is_stopped_before_it_is_built() -> None:
    small = Renderer(max_output=1_000)
    # each match multiplies: $` and $' repeat the whole text per match
    with pytest.raises(TemplateSecurityError, match="limit of 1,000 characters"):
        small.render('${{ ("a" * 400) | replace(r/a/g, "$`$\'") }}', CTX)
    with pytest.raises(TemplateSecurityError, match="limit of 1,000 characters"):
        small.render('${{ ("a" * 400) | replace(r//g, "xyz") }}', CTX)
    assert small.render('${{ ("a" * 400) | replace(r/a/g, "bb") }}', CTX) == "b" * 800


def test_the_replacement_budget_holds_in_a_subprocess() -> None:
    # 100 KB of text and a replacement repeating it per match would need ~40 GB
    # (before the change the result was built first, then measured).
    result = _bounded_python(
        """
        from falsework.errors import TemplateSecurityError
        from falsework.templating import Renderer
        renderer = Renderer()
        before = rss()
        try:
            renderer.render('${{ ("a" * 100000) | replace(r/a/g, "$`$`$`$`") }}', {})
            outcome = "rendered"
        except TemplateSecurityError as exc:
            outcome = exc.message
        except MemoryError:
            outcome = "MemoryError"
        print(json.dumps({"outcome": outcome, "growth_mb": (rss() - before) / 2**20}))
        """
    )
    assert "over the limit" in result["outcome"]
    assert result["growth_mb"] < 100, result
