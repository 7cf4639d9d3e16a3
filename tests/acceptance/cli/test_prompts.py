"""`falsework run` on a real terminal (a pty driven by pexpect): every question in the
page's order, numbered choices, yes/no, lists, a bad answer asked again with the reason,
`--defaults`; and the same command through pipes, where nothing is asked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
import yaml

FALSEWORK = str(Path(sys.executable).with_name("falsework"))

TEMPLATE = {
    "apiVersion": "scaffolder.backstage.io/v1beta3",
    "kind": "Template",
    "metadata": {"name": "ask", "title": "Ask"},
    "spec": {
        "owner": "group:default/team",
        "type": "service",
        "parameters": [
            {
                "title": "Basics",
                "required": ["name", "flavour"],
                "ui:order": ["name", "*", "docker"],
                "properties": {
                    "docker": {"type": "boolean", "title": "Dockerfile", "default": True},
                    "name": {
                        "type": "string",
                        "title": "Name",
                        "pattern": "^[a-z][a-z0-9-]+$",
                        "ui:help": "Lowercase letters, digits and dashes.",
                    },
                    "flavour": {
                        "type": "string",
                        "title": "Flavour",
                        "description": "Which kind of [service] to make.",
                        "enum": ["api", "worker", "cli"],
                        "enumNames": ["HTTP API", "Queue worker", "Command line"],
                        "default": "api",
                    },
                    "port": {"type": "integer", "title": "Port", "minimum": 1024, "default": 8080},
                },
                "dependencies": {
                    "flavour": {
                        "oneOf": [
                            {
                                "properties": {
                                    "flavour": {"const": "api"},
                                    "path": {
                                        "type": "string",
                                        "title": "Base path",
                                        "default": "/",
                                    },
                                }
                            },
                            {"properties": {"flavour": {"enum": ["worker", "cli"]}}},
                        ]
                    }
                },
            },
            {
                "title": "Extras",
                "properties": {
                    "tags": {"type": "array", "title": "Tags", "items": {"type": "string"}},
                    "repoUrl": {
                        "type": "string",
                        "title": "Repository",
                        "ui:field": "RepoUrlPicker",
                        "ui:options": {"allowedHosts": ["github.com"]},
                    },
                },
            },
        ],
        "steps": [
            {
                "id": "write",
                "name": "Write",
                "action": "fetch:template:file",
                "input": {
                    "url": "./values.txt",
                    "targetPath": "values.yaml",
                    "values": {"all": "${{ parameters }}"},
                },
            },
            {
                "id": "say",
                "name": "Say",
                "action": "debug:log",
                "input": {"message": "Made ${{ parameters.name }} (${{ parameters.flavour }})"},
            },
        ],
    },
}


@pytest.fixture
def template_dir(tmp_path: Path) -> Path:
    root = tmp_path / "ask"
    root.mkdir()
    (root / "template.yaml").write_text(yaml.safe_dump(TEMPLATE, sort_keys=False))
    (root / "values.txt").write_text("${{ values.all | dump }}\n")
    return root


def spawn(*args: str, cwd: Path) -> pexpect.spawn:
    # TERM=dumb: a real terminal without colour codes or readline's escapes, so the
    # test reads the text a person reads
    env = {**os.environ, "FALSEWORK_DATA_DIR": str(cwd / ".fw"), "TERM": "dumb"}
    env.pop("FALSEWORK_CONFIG", None)
    return pexpect.spawn(
        FALSEWORK,
        list(args),
        cwd=str(cwd),
        env=env,
        encoding="utf-8",
        timeout=30,
        dimensions=(50, 120),
    )


def finish(child: pexpect.spawn) -> str:
    child.expect(pexpect.EOF)
    child.close()
    return str(child.before)


def test_every_question_in_page_order_with_numbers_and_a_retry(
    template_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    child = spawn("run", str(template_dir), "--output", str(out), cwd=tmp_path)
    transcript: list[str] = []

    def answer(prompt: str, text: str) -> None:
        child.expect_exact(prompt)
        transcript.append(str(child.before) + prompt)
        child.sendline(text)

    answer("Name: ", "Not Valid")
    # asked again at once, with the words of ui:help, not only the regex
    answer("Name: ", "billing")
    assert "Lowercase letters, digits and dashes." in transcript[-1]
    assert "does not match pattern" in transcript[-1] and "^[a-z][a-z0-9-]+$" in transcript[-1]
    answer("Flavour [1]: ", "5")  # out of range: asked again
    assert "Which kind of [service] to make." in transcript[-1]  # brackets survive
    assert "1) HTTP API" in transcript[-1] and "3) Command line" in transcript[-1]
    answer("Flavour [1]: ", "2")
    assert "choose a number from 1 to 3" in transcript[-1]
    answer("Port [8080]: ", "80")  # below the minimum: asked again
    answer("Port [8080]: ", "9000")
    assert "must be greater than or equal to 1024" in transcript[-1]
    answer("Dockerfile [Y/n]: ", "no")
    answer("Tags: ", "a, b")
    answer("Repository: ", "github.com/acme/billing")
    code = finish(child)
    assert child.exitstatus == 0, "".join(transcript) + code
    # page order: ui:order puts docker last; the dependency's field for "api" never came
    text = "".join(transcript)
    order = [text.index(f"{title} (") for title in ("Name", "Flavour", "Port", "Dockerfile")]
    assert order == sorted(order)
    assert text.index("Basics") < text.index("Name") and text.index("Extras") > order[-1]
    assert "Base path" not in text
    values = yaml.safe_load((out / "values.yaml").read_text())
    assert values == {
        "name": "billing",
        "flavour": "worker",
        "port": 9000,
        "docker": False,
        "tags": ["a", "b"],
        "repoUrl": "github.com?owner=acme&repo=billing",
    }


def test_a_dependency_brings_its_question_after_the_trigger(
    template_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    child = spawn(
        "run", str(template_dir), "--output", str(out), "--set", "port=8000", cwd=tmp_path
    )
    child.expect_exact("Name: ")
    child.sendline("svc")
    child.expect_exact("Flavour [1]: ")
    child.sendline("")  # the default: api
    # --set port: never asked; api's own question follows the page's fields
    child.expect_exact("Dockerfile [Y/n]: ")
    assert "Port" not in str(child.before)
    child.sendline("y")
    child.expect_exact("Base path [/]: ")
    child.sendline("/v1")
    child.expect_exact("Tags: ")
    child.sendline("")
    child.expect_exact("Repository: ")
    child.sendline("")
    finish(child)
    assert child.exitstatus == 0
    values = yaml.safe_load((out / "values.yaml").read_text())
    assert values["path"] == "/v1" and values["flavour"] == "api" and values["port"] == 8000


def test_defaults_asks_only_for_what_has_no_default(template_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    child = spawn("run", str(template_dir), "--defaults", "--output", str(out), cwd=tmp_path)
    child.expect_exact("Name: ")
    asked = str(child.before)
    child.sendline("quick")
    rest = finish(child)
    assert child.exitstatus == 0, asked + rest
    for title in ("Flavour", "Port", "Dockerfile", "Tags", "Repository"):
        assert f"{title} (" not in asked + rest
    values = yaml.safe_load((out / "values.yaml").read_text())
    assert values == {
        "name": "quick",
        "flavour": "api",
        "port": 8080,
        "docker": True,
        "path": "/",
    }


def test_piped_output_has_no_escape_codes_and_is_not_wrapped(
    template_dir: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "FALSEWORK_DATA_DIR": str(tmp_path / ".fw"), "COLUMNS": "40"}
    env.pop("FALSEWORK_CONFIG", None)
    env.pop("FORCE_COLOR", None)
    name = "piped-" + "x" * 150
    proc = subprocess.run(
        [FALSEWORK, "run", str(template_dir), "--set", f"name={name}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "\x1b[" not in proc.stdout + proc.stderr
    assert "Done." in proc.stdout
    assert f"Made {name} (api)\n" in proc.stdout  # one line, though COLUMNS=40
    # nothing asked: no prompt text in a pipe
    assert "Name:" not in proc.stdout + proc.stderr
    bad = subprocess.run(
        [FALSEWORK, "run", str(template_dir), "--set", "name=Not Valid"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert bad.returncode == 2
    assert "\x1b[" not in bad.stderr
    # the regex is shown whole (Rich markup would eat "[a-z]"), on one line at 40 columns
    assert 'instance.name does not match pattern "^[a-z][a-z0-9-]+$"' in bad.stderr
