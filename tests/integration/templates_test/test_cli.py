"""`falsework templates test` in-process: a passing suite, each kind of failure
found and shown with a useful diff, --update, --ci, -k, broken cases, JUnit XML
against the JUnit schema CI systems use, canned HTTP answers, check commands."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from support.paths import REPO
from support.template_runs import run_cli
from support.templates_test import junit_schema

ROOT = REPO


def write(path: Path, text: str, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mode is not None:
        path.chmod(mode)


def template(root: Path, name: str, steps: list[dict[str, Any]], **spec: Any) -> Path:
    folder = root / name
    document = {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {"name": name},
        "spec": {"owner": "group:default/x", "type": "service", "steps": steps, **spec},
    }
    write(folder / "template.yaml", yaml.safe_dump(document, sort_keys=False))
    return folder


def case(folder: Path, name: str, values: Any, **files: Any) -> Path:
    where = folder / "tests" / name
    write(where / "values.yaml", yaml.safe_dump(values))
    for file, content in files.items():
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        write(where / file.replace("__", "/").replace("_yaml", ".yaml"), text)
    return where


def test_the_examples_pass(examples: Path) -> None:
    result = run_cli(examples, "--ci")
    assert result.code == 0, result.out
    assert "PASS   python-service/default" in result.out
    assert "PASS   python-service/matrix[pythonVersion=3.13,docker=false]" in result.out
    assert "failed" not in result.out.splitlines()[-1]


def test_each_kind_of_failure_is_found_and_shown_with_a_diff(examples: Path) -> None:
    service = examples / "python-service" / "tests"
    snap = service / "default" / "snapshot"
    readme = snap / "README.md"
    readme.write_text(readme.read_text().replace("Takes payments.", "Takes payment."))
    (snap / "Dockerfile").unlink()  # the result has it: an extra file
    write(snap / "NOTES.txt", "left over\n")  # the result lacks it: a missing file
    (snap / "service.yaml").chmod(0o755)  # the exec bit
    output = json.loads((snap / "_output.json").read_text())
    output["links"][0]["url"] = "https://git.example.com/acme/old"
    write(snap / "_output.json", json.dumps(output, indent=2) + "\n")
    steps = json.loads((snap / "_steps.json").read_text())
    steps[1]["status"] = "skipped"
    write(snap / "_steps.json", json.dumps(steps, indent=2) + "\n")
    expect = service / "bad-name" / "expect.yaml"
    expect.write_text(expect.read_text().replace("does not match", "does not fit"))

    result = run_cli(examples)
    assert result.code == 1, result.out
    out = result.out
    assert "FAIL   python-service/default" in out
    assert "FAIL   python-service/bad-name" in out
    # changed byte: a unified diff of the file
    assert "file differs: README.md: differs" in out
    assert "--- snapshot/README.md" in out and "+++ result/README.md" in out
    assert "-Takes payment." in out and "+Takes payments." in out
    # a file the result gained, one it lost
    assert "extra file: Dockerfile: new in the result" in out
    assert "+FROM python:3.12-slim" in out
    assert "missing file: NOTES.txt: no longer in the result" in out
    assert "-left over" in out
    assert "executable bit: service.yaml: mode 100755 in the snapshot, 100644 now" in out
    # the output and a step's status
    assert "output differs: _output.json: differs" in out
    assert '-      "url": "https://git.example.com/acme/old"' in out
    assert "steps differ: _steps.json: differs" in out
    assert '-    "status": "skipped"\n' in out and '+    "status": "completed"\n' in out
    # the validation message
    assert "validation message differs" in out
    assert '-instance.name does not fit pattern "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"' in out
    assert '+instance.name does not match pattern "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"' in out
    assert "cases: 14 passed, 2 failed" in out.splitlines()[-1]
    # nothing rewritten without --update
    assert "Takes payment." in readme.read_text()


def test_a_binary_file_differs_by_hash(tmp_path: Path) -> None:
    folder = template(
        tmp_path,
        "bin",
        [{"id": "f", "action": "fetch:plain", "input": {"url": "./skeleton"}}],
    )
    (folder / "skeleton").mkdir()
    (folder / "skeleton" / "logo.bin").write_bytes(b"\x00\x01\x02")
    case(folder, "one", {})
    assert run_cli(folder).code == 0
    (folder / "tests" / "one" / "snapshot" / "logo.bin").write_bytes(b"\x00\x01\x03")
    result = run_cli(folder)
    assert result.code == 1
    assert "Binary file logo.bin:" in result.out
    assert "snapshot: 3 bytes, sha256 " in result.out and "result:   3 bytes, sha256 " in result.out


def snapshot_state(folder: Path) -> dict[str, tuple[int, int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_mode)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_update_rewrites_only_what_changed_and_is_idempotent(examples: Path) -> None:
    snap = examples / "python-service" / "tests" / "default" / "snapshot"
    readme = snap / "README.md"
    readme.write_text("stale\n")
    (snap / "service.yaml").chmod(0o755)
    write(snap / "gone" / "old.txt", "old\n")
    before = snapshot_state(snap)

    result = run_cli(examples, "--update")
    assert result.code == 0, result.out
    assert "snapshot updated (3 changes)" in result.out  # README, a mode, old.txt
    after = snapshot_state(snap)
    assert not (snap / "gone").exists()
    assert readme.read_text().startswith("# payments")
    assert not (snap / "service.yaml").stat().st_mode & stat.S_IXUSR
    untouched = set(before) - {"README.md", "service.yaml", "gone/old.txt"}
    assert {k: after[k] for k in untouched} == {k: before[k] for k in untouched}

    again = run_cli(examples, "--update")
    assert again.code == 0
    assert "snapshot updated" not in again.out and "written" not in again.out
    assert snapshot_state(snap) == after
    assert run_cli(examples, "--ci").code == 0


def test_ci_fails_on_a_missing_snapshot_and_writes_nothing(tmp_path: Path) -> None:
    folder = template(
        tmp_path, "hello", [{"id": "log", "action": "debug:log", "input": {"message": "hi"}}]
    )
    where = case(folder, "first", {})
    result = run_cli(folder, "--ci")
    assert result.code == 1
    assert "missing snapshot" in result.out
    assert not (where / "snapshot").exists()
    written = run_cli(folder)
    assert written.code == 0 and "snapshot written (2 files)" in written.out
    assert run_cli(folder, "--ci").code == 0
    # a template without cases is named
    untested = template(tmp_path, "untested", [])
    assert f"no test cases: {untested / 'template.yaml'}" in run_cli(tmp_path).out


def test_ci_fails_on_unused_snapshots_and_update_removes_them(examples: Path) -> None:
    tests = examples / "python-service" / "tests"
    write(tests / "bad-name" / "snapshot" / "README.md", "an invalid case has no result\n")
    write(tests / "renamed-away" / "snapshot" / "_steps.json", "[]\n")

    ci = run_cli(examples, "--ci")
    assert ci.code == 1
    assert "unused snapshot:" in ci.out and "(an invalid case)" in ci.out
    assert "renamed-away/snapshot belongs to no case (no values.yaml)" in ci.out

    plain = run_cli(examples)
    assert plain.code == 0
    assert "2 unused snapshot(s)" in plain.out.splitlines()[-1]

    assert run_cli(examples, "--update").code == 0
    assert not (tests / "bad-name" / "snapshot").exists()
    assert not (tests / "renamed-away" / "snapshot").exists()
    assert run_cli(examples, "--ci").code == 0


def test_a_broken_case_exits_2_naming_the_file(examples: Path) -> None:
    tests = examples / "hello-world" / "tests"
    write(tests / "typo" / "values.yaml", "name: x\n")
    write(tests / "typo" / "expect.yaml", "stauts: failed\n")
    write(tests / "syntax" / "values.yaml", "name: [unclosed\n")
    result = run_cli(examples)
    assert result.code == 2, result.out
    assert "BROKEN hello-world/typo" in result.out
    assert f"{tests / 'typo' / 'expect.yaml'}: stauts: Extra inputs are not permitted" in result.out
    assert f"{tests / 'syntax' / 'values.yaml'}:2: not valid YAML" in result.out


def test_k_selects_cases_and_usage_errors_exit_2(examples: Path) -> None:
    result = run_cli(examples, "-k", "hello-world/", "-k", "*too-long")
    assert result.code == 0
    ran = [line.split()[1] for line in result.out.splitlines() if line.startswith("PASS")]
    assert ran == ["hello-world/default", "hello-world/named", "wait/too-long"]
    assert run_cli(examples, "-k", "no-such-case").code == 2
    assert run_cli(examples, "--update", "--ci").code == 2
    assert run_cli(examples, "--by-ref").code == 2
    assert run_cli(examples / "missing").code == 2


def test_the_junit_report_is_valid_against_the_junit_schema(examples: Path, tmp_path: Path) -> None:
    snap = examples / "hello-world" / "tests" / "default" / "snapshot" / "_output.json"
    snap.write_text(snap.read_text().replace("world", "w\x01rld <&>"))
    write(examples / "wait" / "tests" / "broken" / "values.yaml", "- [not a mapping]\n")
    report = tmp_path / "reports" / "templates.xml"
    result = run_cli(examples, "--junit", report)
    assert result.code == 2
    schema = junit_schema()
    schema.validate(str(report))
    data = schema.to_dict(str(report))
    assert (data["@tests"], data["@failures"], data["@errors"]) == ("17", "1", "1")
    suites = {s["@name"]: s for s in data["testsuite"]}
    hello = {c["@name"]: c for c in suites["template:default/hello-world"]["testcase"]}
    (failure,) = hello["default"]["failure"]
    assert failure["@type"] == "output differs"
    assert '-      "content": "Hello, wrld <&>!"' in failure["$"]  # the control character dropped
    waits = {c["@name"]: c for c in suites["template:default/wait"]["testcase"]}
    (error,) = waits["broken"]["error"]
    assert error["@type"] == "broken"
    assert "expected a mapping of answers" in error["@message"]


def test_http_is_answered_from_the_case_and_fails_closed(tmp_path: Path) -> None:
    folder = template(
        tmp_path,
        "argo",
        [
            {
                "id": "submit",
                "action": "http:request",
                "input": {
                    "method": "POST",
                    "url": "https://argo.example.com/api/v1/workflows/ci",
                    "body": {"name": "${{ parameters.name }}"},
                },
            }
        ],
        output={"text": [{"title": "Run", "content": "${{ steps.submit.output.body.id }}"}]},
    )
    answer = {
        "request": {
            "method": "POST",
            "url": "https://argo.example.com/api/v1/workflows/ci",
            "body": {"name": "svc"},
        },
        "response": {"status": 201, "body": {"id": "build-42"}},
    }
    case(folder, "answered", {"name": "svc"}, http__submit_yaml=answer)
    unanswered = {"status": "failed", "error": {"step": "submit", "match": "no canned answer"}}
    case(folder, "unanswered", {"name": "other"}, http__submit_yaml=answer, expect_yaml=unanswered)
    result = run_cli(folder)
    assert result.code == 0, result.out
    output = json.loads((folder / "tests/answered/snapshot/_output.json").read_text())
    assert output == {"text": [{"title": "Run", "content": "build-42"}]}
    steps = json.loads((folder / "tests/unanswered/snapshot/_steps.json").read_text())
    assert steps[0]["status"] == "failed"
    assert (
        "POST https://argo.example.com/api/v1/workflows/ci: no canned answer"
        in (steps[0]["error"]["message"])
    )


def test_a_link_in_a_snapshot_is_never_followed(examples: Path, tmp_path: Path) -> None:
    outside = tmp_path / "private.txt"
    outside.write_text("TOP SECRET CONTENT\n")
    readme = examples / "python-service" / "tests" / "default" / "snapshot" / "README.md"
    readme.unlink()
    readme.symlink_to(outside)
    result = run_cli(examples)
    assert result.code == 1
    assert "not a file: README.md: the snapshot holds a link here, not a file" in result.out
    assert "TOP SECRET" not in result.out
    assert run_cli(examples, "--update").code == 0
    assert not readme.is_symlink() and readme.read_text().startswith("# payments")
    assert outside.read_text() == "TOP SECRET CONTENT\n"


def test_checks_run_in_a_copy_with_a_time_limit_and_without_the_environment(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("CI_DEPLOY_TOKEN", "do-not-leak")
    folder = template(
        tmp_path, "svc", [{"id": "f", "action": "fetch:plain", "input": {"url": "./skeleton"}}]
    )
    write(folder / "skeleton" / "ok.py", "print('ok')\n")
    checks = {
        "check": [
            "python3 -m compileall -q .",
            "sh -c 'test -z \"$CI_DEPLOY_TOKEN\" && touch made-by-check'",
            "sh -c 'echo broken >&2; exit 3'",
            {"run": "sleep 30", "timeout": 0.5},
        ]
    }
    case(folder, "one", {}, expect_yaml=checks)
    assert run_cli(folder).code == 0  # checks run only with --run-checks
    result = run_cli(folder, "--run-checks")
    assert result.code == 1, result.out
    out = result.out
    assert "check: check \"sh -c 'echo broken >&2; exit 3'\" exited with 3" in out
    assert "    broken" in out
    assert "check: check 'sleep 30' ran past its 0.5s limit" in out
    assert "compileall" not in out and "CI_DEPLOY_TOKEN" not in out
    assert not list(tmp_path.rglob("made-by-check"))  # in a copy, removed afterwards


def test_every_combination_of_a_matrix_must_render(tmp_path: Path) -> None:
    folder = template(
        tmp_path,
        "combos",
        [
            {
                "id": "fetch",
                "if": "${{ parameters.kind == 'file' }}",
                "action": "fetch:plain:file",
                "input": {"url": "./${{ parameters.flavour }}.txt", "targetPath": "out.txt"},
            }
        ],
    )
    write(folder / "vanilla.txt", "v\n")
    case(folder, "base", {"kind": "file", "flavour": "vanilla"})
    write(
        folder / "tests" / "matrix.yaml",
        yaml.safe_dump({"base": "base", "vary": {"flavour": ["vanilla", "mint"]}}),
    )
    result = run_cli(folder)
    assert result.code == 1, result.out
    assert "PASS   combos/matrix[flavour=vanilla]" in result.out
    assert "FAIL   combos/matrix[flavour=mint]" in result.out
    assert "expected status completed, got failed: step fetch failed:" in result.out


def test_pages_are_checked_in_order_as_the_form_does(examples: Path) -> None:
    tests = examples / "python-service" / "tests"
    # page 1 is fine, page 2 is not: the page named is 2
    write(tests / "bad-url" / "values.yaml", "- {name: ok-name, owner: me}\n- {repoUrl: 7}\n")
    write(
        tests / "bad-url" / "expect.yaml",
        "status: invalid\nerror:\n  page: 1\n"
        "  messages: ['instance.repoUrl is not of a type(s) string']\n",
    )
    result = run_cli(examples, "-k", "bad-url")
    assert result.code == 1
    assert "expected page 1 to refuse the answers, page 2 did" in result.out
    assert os.path.exists(tests / "bad-url") and not (tests / "bad-url" / "snapshot").exists()
