"""Backstage's scaffolder.defaultEnvironment in a real run: `environment.parameters`
everywhere, `environment.secrets` in a step's input and each only, redacted like a
task's secrets; and read from Falsework's config. (What a dry run does with them
is compared with the real Backstage in tests/compat.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from falsework.config import Settings
from falsework.runner import DefaultEnvironment, WorkflowRunner
from falsework.wiring import workflow_runner

SECRET = "env-s3cret-value"


@pytest.fixture
def env_harness(harness: Any) -> Any:
    environment = DefaultEnvironment({"region": "eu-west-1"}, {"TOKEN": SECRET})
    harness.runner = replace_environment(harness.runner, environment)
    return harness


def replace_environment(runner: WorkflowRunner, environment: DefaultEnvironment) -> WorkflowRunner:
    return WorkflowRunner(
        runner.registry,
        runner.renderer,
        work_dir=runner.work_dir,
        step_timeout=runner.step_timeout,
        environment=environment,
    )


async def test_secrets_reach_the_input_and_are_redacted(env_harness: Any) -> None:
    steps = [
        {
            "id": "echo",
            "action": "test:echo",
            "if": "${{ environment.parameters.region == 'eu-west-1' }}",
            "input": {"value": "${{ environment.secrets.TOKEN }}"},
        },
        {
            "id": "each",
            "action": "test:echo",
            "each": "${{ [environment.secrets.TOKEN] }}",
            "input": {"value": "${{ each.value | length }}"},
        },
    ]
    output = {
        "region": "${{ environment.parameters.region }}",
        "secret": "${{ environment.secrets.TOKEN }}",
        "echoed": "${{ steps.echo.output.value }}",
        "length": "${{ steps.each.output.value[0] }}",
    }
    outcome = await env_harness.run(env_harness.task(steps, output=output))
    assert outcome.error is None
    # the action got the secret; the log, the saved output and the task's output show ***
    assert outcome.output == {"region": "eu-west-1", "echoed": "***", "length": len(SECRET)}
    assert "echo ***" in [b["message"].split(": ", 1)[-1] for b in outcome.step_events("echo")]
    assert SECRET not in str(outcome.io.events) + str(outcome.io.steps)


async def test_environment_is_a_name_like_any_other(harness: Any) -> None:
    steps = [
        {
            "id": "loop",
            "action": "test:echo",
            "input": {
                "value": "{% for environment in parameters.envs %}${{ environment }},{% endfor %}"
            },
        },
        {"id": "set", "action": "test:echo", "input": {"value": "${{ environment.parameters }}"}},
    ]
    outcome = await harness.run(harness.task(steps, {"envs": ["dev", "prod"]}))
    assert outcome.error is None
    assert outcome.io.steps["loop"]["output"] == {"value": "dev,prod,"}
    assert outcome.io.steps["set"]["output"] == {"value": {}}  # none configured


def test_the_config_section_reads_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "falsework.yaml"
    config.write_text(
        "scaffolder:\n"
        "  defaultEnvironment:\n"
        "    parameters: {region: eu-west-1}\n"
        "    secrets: {DEPLOY_TOKEN: '${DEPLOY_TOKEN}', LITERAL: plain}\n"
    )
    monkeypatch.setenv("FALSEWORK_CONFIG", str(config))
    monkeypatch.setenv("DEPLOY_TOKEN", "from-env")
    runner = workflow_runner(Settings(data_dir=tmp_path))
    assert runner.environment == DefaultEnvironment(
        {"region": "eu-west-1"}, {"DEPLOY_TOKEN": "from-env", "LITERAL": "plain"}
    )
    monkeypatch.delenv("DEPLOY_TOKEN")
    with pytest.raises(ValueError, match=r"secrets\.DEPLOY_TOKEN: empty, or its environment"):
        workflow_runner(Settings(data_dir=tmp_path))
    config.write_text("scaffolder:\n  defaultEnvironment:\n    parameter: {}\n")
    with pytest.raises(ValidationError, match="parameter"):
        Settings(data_dir=tmp_path)
