"""Bounded CPU and memory (issue 8, findings 5 and 6): regular expressions,
filter output, the render cache, ``each``, logs and dry-run results, parameter
schemas, and work kept off the event loop.

In-process against the Renderer, the runner and ``validate_values``; memory
attacks in a subprocess under an address-space limit (so a regression cannot
take the test runner down); the event-loop checks through a real
``falsework serve`` attacked as the plain user alice.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from falsework.config import Settings
from falsework.errors import (
    InputError,
    TemplateError,
    TemplateRenderError,
    TemplateSecurityError,
    TemplateSyntaxError,
    TooLargeError,
)
from falsework.runner import LocalTask, MemoryTaskIO, TaskFailedError, WorkflowRunner
from falsework.templates import Template, validate_values
from falsework.templates.validation import validate_template_file
from falsework.templates.values import ParameterValidationError
from falsework.templating import Renderer
from falsework.wiring import workflow_runner
from support.servers import TEMPLATES, Server, ServerFactory, auth_config, wait_for_status

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


def test_a_backtracking_regex_reports_itself_even_past_the_render_limit() -> None:
    # The render's limit (0.3 s, wall time) passes while the regex runs (1 s of
    # CPU): the watchdog's exception used to land right after the C call and hide
    # the regex's own, clearer error; on a busy machine that made it a coin toss.
    quick = Renderer(timeout=0.3)
    with pytest.raises(TemplateRenderError, match="backtracks too much"):
        quick.render('${{ parameters.long | replace(r/^(a|a)*$/, "") }}', CTX)
    # and a render that is only slow still stops at its limit
    with pytest.raises(TemplateSecurityError, match=r"longer than the limit of 0\.3s"):
        quick.render(ENDLESS, CTX)


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


# -- filters and operators: growth counted before the result is built -------------

SHARED = "([parameters.name * 1000000] * 100000)"  # 100,000 references to one 6 MB string
GROWING = [
    # Jinja's string filters printed such a list with str(): a 600 GB Python repr
    f"${{{{ {SHARED} | trim }}}}",
    f"${{{{ {SHARED} | upper }}}}",
    f"${{{{ {SHARED} | striptags }}}}",
    f"${{{{ {SHARED} | safe }}}}",
    f"${{{{ {SHARED} | escape }}}}",
    f"${{{{ {SHARED} | urlize }}}}",
    # join gave each part the whole limit: 100 parts of a 6 MB list each
    "${{ ([[parameters.name * 1000000]] * 100) | join }}",
    # one astral character is twelve once URL-encoded
    "${{ ('\U0001f600' * 2500000) | urlencode | length }}",
    # one control character is six once JSON-encoded
    "${{ ('\u0001' * 9000000) | dump | length }}",
    # ten million one-character strings
    "${{ ('\u4e00' * 9000000) | list | length }}",
]


def test_filters_refuse_growth_before_allocating_it() -> None:
    result = _bounded_python(
        f"""
        import resource
        from falsework.errors import TemplateError
        from falsework.templating import Renderer
        renderer = Renderer()
        ctx = {{"parameters": {{"name": "my-svc"}}}}
        renderer.render("${{{{ parameters.name | trim }}}}", ctx)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        outcomes = []
        for source in {GROWING!r}:
            try:
                renderer.render(source, ctx)
                outcomes.append("rendered")
            except TemplateError as exc:
                outcomes.append(type(exc).__name__ + ": " + exc.message)
            except MemoryError:
                outcomes.append("MemoryError")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"outcomes": outcomes, "peak_growth_mb": (peak - before) / 1024}}))
        """
    )
    for source, outcome in zip(GROWING, result["outcomes"], strict=True):
        assert outcome.startswith("TemplateSecurityError"), (source, outcome)
        assert "ran out of memory" not in outcome, (source, outcome)
    # the inputs themselves cost up to 36 MB; nothing was built past them
    assert result["peak_growth_mb"] < 100, result


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("${{ ('<' * 300) | escape }}", "escape"),
        ("${{ ('\\n' * 300) | nl2br }}", "nl2br"),
        ("${{ ('<' * 300) | tojson }}", "tojson"),
        ("${{ ('\\u0001' * 300) | dump }}", "dump"),
        ("${{ ('é' * 200) | urlencode }}", "urlencode"),
        ("${{ 'ab cd' | truncate(2, false, 'x' * 999) }}", "truncate"),
        ("${{ ('a.co ' * 50) | urlize }}", "urlize"),
        ("${{ ([['x' * 600]] * 2) | join }}", "join"),
    ],
)
def test_the_refusal_names_the_filter(source: str, what: str) -> None:
    small = Renderer(max_output=1_000)
    with pytest.raises(TemplateSecurityError, match=f"^{what} would produce"):
        small.render(source, CTX)


def test_the_compile_cache_keeps_no_attacker_sized_sources() -> None:
    # Before the change the cache kept 4,096 sources of any size: these 1,000
    # (60 KB each) stayed, ~120 MB; now their total weight is bounded.
    result = _bounded_python(
        """
        from falsework.templating import Renderer
        renderer = Renderer()
        ctx = {"parameters": {"name": "x"}}
        renderer.render_string("${{ parameters.name }}", ctx)
        before = rss()
        for i in range(1000):
            text = renderer.render_string(str(i) + "x" * 60000 + "${{ parameters.name }}", ctx)
            assert text.endswith("xx"), text[-10:]
        print(json.dumps({"growth_mb": (rss() - before) / 2**20}))
        """
    )
    assert result["growth_mb"] < 60, result


# -- parameter schemas ---------------------------------------------------------

BACKTRACKING = "^(a|a)*$"  # 2^n steps on n a's and one other character


def _template(parameters: Any, path: Path | None = None) -> Template:
    document = {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {"name": "t"},
        "spec": {"parameters": parameters, "steps": []},
    }
    return Template.from_document(document, path or Path("template.yaml"))


def test_a_backtracking_pattern_fails_the_value_instead_of_holding_the_process() -> None:
    # Python's re took seconds here (2^26 steps), doubling with each character,
    # and could not be interrupted.
    template = _template({"properties": {"name": {"type": "string", "pattern": BACKTRACKING}}})
    with pytest.raises(ParameterValidationError) as caught:
        validate_values(template, {"name": "a" * 26 + "!"})
    (error,) = caught.value.errors
    assert error["property"] == "instance.name"
    assert "could not be checked against pattern" in error["message"]
    assert validate_values(template, {"name": "aaaa"}) == {"name": "aaaa"}


def test_pattern_properties_and_additional_properties_are_bounded_too() -> None:
    template = _template(
        {
            "properties": {
                "labels": {
                    "type": "object",
                    "patternProperties": {BACKTRACKING: {"type": "string"}},
                    "additionalProperties": False,
                }
            }
        }
    )
    with pytest.raises(ParameterValidationError) as caught:
        validate_values(template, {"labels": {"a" * 26 + "!": "x"}})
    messages = [e["message"] for e in caught.value.errors]
    assert any("could not be checked" in m for m in messages), messages
    assert any("additional property" in m for m in messages), messages
    assert validate_values(template, {"labels": {"aa": "x"}}) == {"labels": {"aa": "x"}}


def test_a_hostile_schema_pattern_is_refused_when_the_template_loads(tmp_path: Path) -> None:
    parameters = {"properties": {"name": {"type": "string", "pattern": "((a{100}){100}){100}"}}}
    with pytest.raises(TemplateError, match=r"spec\.parameters\[0\]\.properties\.name\.pattern"):
        _template(parameters, tmp_path / "template.yaml")
    file = tmp_path / "template.yaml"
    file.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "scaffolder.backstage.io/v1beta3",
                "kind": "Template",
                "metadata": {"name": "t"},
                "spec": {"owner": "me", "type": "service", "parameters": parameters, "steps": []},
            }
        )
    )
    problems = [p for p in validate_template_file(file) if "repeats multiply" in p.message]
    assert [p.path for p in problems] == ["spec.parameters.properties.name.pattern"]


def test_unevaluated_properties_beside_pattern_properties_is_refused() -> None:
    # jsonschema matches patternProperties with Python's re for unevaluatedProperties
    parameters = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "patternProperties": {BACKTRACKING: {}},
        "unevaluatedProperties": False,
    }
    with pytest.raises(TemplateError, match="unevaluatedProperties cannot be combined"):
        _template(parameters)


def test_deep_or_huge_values_are_refused_before_anything_walks_them() -> None:
    template = _template({"properties": {"name": {"type": "string"}}})
    deep: Any = "x"
    for _ in range(700):  # the 500 of the report (RecursionError in deepcopy)
        deep = {"a": deep}
    with pytest.raises(InputError, match=r"values\.deep\.a\.a.*deeper than the limit of 64"):
        validate_values(template, {"deep": deep})
    with pytest.raises(InputError, match="more than the limit of 1,000 characters"):
        validate_values(template, {"name": "x" * 2000}, max_size=1_000)


def test_a_regex_format_value_gets_the_size_check() -> None:
    template = _template({"properties": {"re": {"type": "string", "format": "regex"}}})
    assert validate_values(template, {"re": "^[a-z]+$"}) == {"re": "^[a-z]+$"}
    with pytest.raises(ParameterValidationError, match='does not conform to the "regex" format'):
        validate_values(template, {"re": "(((a{1000}){1000}){1000})"})


# -- the runner: each, logs, output, dry-run results -------------------------------


def _runner(tmp_path: Path, **limits: Any) -> WorkflowRunner:
    settings = Settings(data_dir=tmp_path / "data", templates=str(tmp_path / "tpl"), **limits)
    return workflow_runner(settings)


def _spec(steps: list[dict[str, Any]], output: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"steps": steps, "output": output or {}, "parameters": {}, "user": {}}


async def _run(runner: WorkflowRunner, spec: dict[str, Any]) -> tuple[Any, MemoryTaskIO]:
    io = MemoryTaskIO()
    try:
        return await runner.run(LocalTask(spec=spec), io), io
    except TaskFailedError as exc:
        return exc, io


async def test_each_is_bounded_and_the_error_names_the_step(tmp_path: Path) -> None:
    # before the change a step could loop 100,000 times (the list limit)
    runner = _runner(tmp_path)
    step = {"id": "many", "action": "debug:log", "each": "${{ range(1001) | list }}"}
    step["input"] = {"message": "item ${{ each.value }}"}
    failed, io = await _run(runner, _spec([step]))
    assert isinstance(failed, TaskFailedError)
    assert "Step many: each has 1,001 items, over the limit of 1,000" in failed.message
    assert not any("Running step each" in str(b.get("message")) for _, b in io.events)
    fewer = _runner(tmp_path, max_each=3)
    step["each"] = "${{ range(4) | list }}"
    failed, _ = await _run(fewer, _spec([step]))
    assert "over the limit of 3 (the max_each setting)" in failed.message
    step["each"] = "${{ range(3) | list }}"
    done, _ = await _run(fewer, _spec([step]))
    assert done == {}


async def test_log_lines_and_the_whole_log_are_bounded(tmp_path: Path) -> None:
    # ten 5 MB log lines were kept whole: a 50 MB log (and a 100 MB dry-run answer)
    runner = _runner(tmp_path, max_task_log=300_000)
    step = {
        "id": "loud",
        "action": "debug:log",
        "each": "${{ range(10) | list }}",
        "input": {"message": "${{ 'x' * 5000000 }}"},
    }
    done, io = await _run(runner, _spec([step]))
    assert done == {}
    lines = [str(b["message"]) for _, b in io.events if "xxxx" in str(b.get("message"))]
    assert len(lines) == 4  # 4 x 64 KiB fit in 300,000 characters
    for line in lines:
        assert len(line) < 66_000
        assert line.endswith("more characters cut]")
    assert sum(len(str(b.get("message", ""))) for _, b in io.events) < 300_000 + 10_000
    notices = [b for _, b in io.events if "reached the limit of 300,000" in str(b.get("message"))]
    assert len(notices) == 1 and notices[0]["stepId"] == "loud"
    # the runner's own events still arrive after the limit
    assert io.events[-1][1]["status"] == "completed"


async def test_a_secret_is_redacted_before_a_line_is_cut(tmp_path: Path) -> None:
    runner = _runner(tmp_path, max_log_line=100)
    secret = "s3cr3t-" + "k" * 60
    # cut first, the line would end in "s3cr3t-kkk…", which redaction cannot recognise
    step = {"id": "s", "action": "debug:log", "input": {"message": "x" * 50 + "${{ secrets.key }}"}}
    io = MemoryTaskIO()
    await runner.run(LocalTask(spec=_spec([step]), secrets={"key": secret}), io)
    text = json.dumps([b for _, b in io.events])
    assert "s3cr3t" not in text
    assert "x" * 50 + "***" in text


async def test_the_task_output_is_bounded_as_a_whole(tmp_path: Path) -> None:
    # each value fit the limit of one render; ten of them did not fit any
    runner = _runner(tmp_path, render_max_output=1_000_000)
    output = {f"k{i}": "${{ 'x' * 900000 }}" for i in range(10)}
    failed, _ = await _run(runner, _spec([], output))
    assert isinstance(failed, TaskFailedError)
    assert "spec.output: spec.output holds more than the limit of 1,000,000" in failed.message


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def test_dry_run_results_are_bounded(tmp_path: Path) -> None:
    template = {
        "metadata": {"name": "many"},
        "spec": {"steps": [{"id": "f", "action": "fetch:plain", "input": {"url": "./skeleton"}}]},
    }
    files = [{"path": f"skeleton/f{i}.txt", "base64Content": _b64("y" * 1000)} for i in range(12)]
    result = await _runner(tmp_path).dry_run(template, {}, {}, files)
    assert len(result["directoryContents"]) == 12
    with pytest.raises(TooLargeError, match=r"more than 10 files.*dry_run_max_files") as caught:
        await _runner(tmp_path, dry_run_max_files=10).dry_run(template, {}, {}, files)
    assert caught.value.status_code == 413
    with pytest.raises(TooLargeError, match=r"more than 5,000 bytes.*dry_run_max_bytes"):
        await _runner(tmp_path, dry_run_max_bytes=5_000).dry_run(template, {}, {}, files)


# -- through a real `falsework serve`, as the plain user alice ---------------------

API = "/api/scaffolder"
OWN_TEMPLATES = Path(__file__).resolve().parent / "templates"


@pytest.fixture(scope="module")
def bounds_server(module_database: str, servers: ServerFactory) -> Server:
    return servers(
        module_database,
        config=auth_config(),
        env={"FALSEWORK_TEMPLATES": f"{TEMPLATES}:{OWN_TEMPLATES}"},
    )


def test_a_backtracking_schema_pattern_does_not_freeze_the_server(bounds_server: Server) -> None:
    alice = bounds_server.client("alice")
    probe = bounds_server.client(None)
    finished = threading.Event()
    answer: dict[str, Any] = {}

    def create() -> None:
        try:
            answer["response"] = alice.post(
                f"{API}/v2/tasks",
                json={"templateRef": "template:default/bounds-pattern", "values": {"name": BAD}},
            )
        finally:
            finished.set()

    BAD = "a" * 26 + "!"
    thread = threading.Thread(target=create)
    thread.start()
    answered_while_pending = 0
    while not finished.is_set():
        if probe.get("/healthz").status_code == 200 and not finished.is_set():
            answered_while_pending += 1
    thread.join()
    # Before the change, the check ran on the event loop for seconds: no probe
    # could be answered until the create request was.
    assert answered_while_pending >= 3
    response = answer["response"]
    assert response.status_code == 400, response.text
    assert "could not be checked against pattern" in response.text


def test_a_user_chosen_pattern_cannot_grow_the_server(bounds_server: Server) -> None:
    alice = bounds_server.client("alice")
    process = psutil.Process(bounds_server.process.pid)
    # capped, so that a regression fails this test instead of the machine
    cap = process.memory_info().vms + 1536 * 2**20
    process.rlimit(psutil.RLIMIT_AS, (cap, cap))

    def run(pattern: str) -> dict[str, Any]:
        created = alice.post(
            f"{API}/v2/tasks",
            json={
                "templateRef": "template:default/bounds-regex",
                "values": {"name": "aaa", "pattern": pattern},
            },
        )
        assert created.status_code == 201, created.text
        return wait_for_status(alice, created.json()["id"], ("completed", "failed"))

    assert run("a")["status"] == "completed"
    before = process.memory_info().rss
    outcomes = []
    for i in range(5):  # ~40 MB each, kept for good by two caches before the change
        outcomes.append(run(f"x{i}(a{{1000}}){{150}}"))
    outcomes.append(run("(((a{1000}){1000}){1000})"))  # allocated until the process died
    growth = (process.memory_info().rss - before) / 2**20
    for task in outcomes:
        assert task["status"] == "failed"
    events = alice.get(f"{API}/v2/tasks/{outcomes[-1]['id']}/events").json()
    messages = " ".join(str(e["body"].get("message", "")) for e in events)
    assert "regular expression /(((a{1000}){1000}){1000})/g" in messages
    assert "repeats multiply" in messages
    assert growth < 50, f"the server grew by {growth:.0f} MB"
    assert probe_ok(bounds_server)


def probe_ok(server: Server) -> bool:
    return server.client(None).get("/healthz").status_code == 200


def test_a_long_value_is_cut_in_the_task_log(bounds_server: Server) -> None:
    # the 1 MB value used to be stored whole in the event (and in every reader's answer)
    alice = bounds_server.client("alice")
    created = alice.post(
        f"{API}/v2/tasks",
        json={
            "templateRef": "template:default/bounds-regex",
            "values": {"name": "b" * 1_000_000, "pattern": "a"},
        },
    )
    assert created.status_code == 201, created.text
    task = wait_for_status(alice, created.json()["id"], ("completed", "failed"))
    assert task["status"] == "completed"
    events = alice.get(f"{API}/v2/tasks/{task['id']}/events").json()
    lines = [str(e["body"]["message"]) for e in events if "bbbb" in str(e["body"].get("message"))]
    assert len(lines) == 2  # debug:log writes its input as JSON, then the message
    for line in lines:
        assert len(line) < 66_000
        assert line.endswith("more characters cut]")


# -- rendering off the event loop ---------------------------------------------------

ENDLESS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


async def test_the_runner_renders_off_the_event_loop(tmp_path: Path) -> None:
    # The render runs until its time limit (1 s here); the loop must keep turning.
    runner = _runner(tmp_path, render_timeout=1.0)
    step = {"id": "slow", "action": "debug:log", "input": {"message": ENDLESS}}
    ticks = 0
    running = True

    async def ticker() -> None:
        nonlocal ticks
        while running:
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    before = ticks
    failed, _ = await _run(runner, _spec([step]))
    during = ticks - before
    running = False
    await beat
    assert isinstance(failed, TaskFailedError)
    assert "rendering took longer than the limit of 1s" in failed.message
    # before the change the render held the loop: no tick until it ended
    assert during >= 10, during


@pytest.mark.parametrize(
    ("source", "quick"),
    [
        ("Hello ${{ parameters.name }}", True),
        ("${{ parameters.name | lower | replace('-', '_') }}", True),
        ("{% if parameters.x %}${{ parameters.x ~ '!' }}{% endif %}", True),
        ("${{ parameters.name == 'a' and parameters.x is defined }}", True),
        (ENDLESS, False),  # a loop
        ("${{ range(3) | list }}", False),  # a call
        ("${{ parameters.name.split('-') }}", False),  # a method call
        ("${{ r/a+/.test(parameters.name) }}", False),  # a regular expression
        ("${{ parameters.tags | sort }}", False),  # not linear
        ("${{ parameters.tags | sum(start=[]) }}", False),  # quadratic on lists of lists
    ],
)
def test_only_linear_expressions_may_render_on_the_event_loop(source: str, quick: bool) -> None:
    renderer = Renderer(timeout=0.2)
    # never compiled: a first compile may be slow, so it goes to the threads
    assert not renderer.renders_quickly({"message": source})
    try:
        renderer.render(source, CTX)
    except TemplateSecurityError:
        pass  # ENDLESS stops at its time limit, compiled all the same
    assert renderer.renders_quickly({"message": [source]}) is quick


def test_a_slow_render_does_not_freeze_the_server(bounds_server: Server) -> None:
    alice = bounds_server.client("alice")
    probe = bounds_server.client(None)
    created = alice.post(
        f"{API}/v2/tasks", json={"templateRef": "template:default/bounds-slow", "values": {}}
    )
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]

    def final() -> bool:
        task = alice.get(f"{API}/v2/tasks/{task_id}").json()
        return task["status"] in ("completed", "failed", "cancelled")

    # The step's first event is written when its input starts rendering; before the
    # change the render held the loop, so the event appeared with the failure.
    while not final():
        events = alice.get(f"{API}/v2/tasks/{task_id}/events").json()
        if any(e["body"].get("status") == "processing" for e in events):
            break
    answered_while_rendering = 0
    while not final():
        assert probe.get("/healthz").status_code == 200
        answered_while_rendering += 1
    assert answered_while_rendering >= 5
    task = wait_for_status(alice, task_id, ("failed",))
    events = alice.get(f"{API}/v2/tasks/{task_id}/events").json()
    assert any("rendering took longer than the limit" in str(e["body"]) for e in events), task


# -- redaction: the cheap extra forms (issue 8, item 12) -----------------------------


async def test_a_secret_upper_cased_or_reversed_by_the_template_is_still_masked(
    tmp_path: Path,
) -> None:
    runner = _runner(tmp_path)
    secret = "Tok3n-for-the-registry"
    message = (
        "${{ secrets.key | upper }} ${{ secrets.key | lower }} ${{ secrets.key | reverse }} "
        "${{ secrets.key.toUpperCase() | reverse }}"
    )
    step = {"id": "s", "action": "debug:log", "input": {"message": message}}
    io = MemoryTaskIO()
    await runner.run(LocalTask(spec=_spec([step]), secrets={"key": secret}), io)
    text = json.dumps([b for _, b in io.events]).lower()
    assert secret.lower() not in text and secret[::-1].lower() not in text
    assert "*** *** *** ***" in text


def test_dry_run_files_are_counted_before_they_are_read(bounds_server: Server) -> None:
    # a template author's dry-run copying one 1 MB file eight times: 8 MB of files,
    # over dry_run_max_bytes (7 MB), refused before the child reads them back
    steps = [
        {"id": f"c{i}", "action": "fetch:plain", "input": {"url": "./big", "targetPath": f"c{i}"}}
        for i in range(8)
    ]
    body = {
        "template": {
            "apiVersion": "scaffolder.backstage.io/v1beta3",
            "kind": "Template",
            "metadata": {"name": "copies"},
            "spec": {"steps": steps},
        },
        "values": {},
        "directoryContents": [{"path": "big/file.bin", "base64Content": _b64("z" * 1_000_000)}],
    }
    response = bounds_server.client("admin").post(f"{API}/v2/dry-run", json=body, timeout=120)
    assert response.status_code == 413, response.text[:500]
    error = response.json()["error"]
    assert error["name"] == "TooLargeError"
    assert "more than 7,000,000 bytes" in error["message"]
    assert "dry_run_max_bytes" in error["message"]
