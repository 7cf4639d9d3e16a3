"""The Helm chart (deploy/helm/falsework), rendered and validated.

No `helm` and no cluster here: the chart is rendered by tests/support/helmlite.py
(the subset of Go templates it uses, nothing more) and every manifest of Kubernetes'
own kinds is validated against the Kubernetes JSON schemas of the pinned
`kubernetes-validate` package, strictly (an unknown field is an error). KEDA's
ScaledObject is a custom resource with no schema there: its fields are checked
here. Not run: `helm lint`/`helm template` themselves, `helm install` on a cluster.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from falsework.config import Settings
from support.helmlite import Renderer, TemplateError, render_chart
from support.paths import DEPLOY

CHART = DEPLOY / "helm" / "falsework"
K8S_VERSIONS = ("1.29.0", "1.33.0")
REQUIRED = {"databaseUrl": "postgresql://falsework:pw@db:5432/falsework", "secretKey": "k" * 44}
TOKEN = hashlib.sha256(b"a-token").hexdigest()


def kinds(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def container(doc: dict[str, Any]) -> dict[str, Any]:
    (only,) = doc["spec"]["template"]["spec"]["containers"]
    return dict(only)


@pytest.mark.parametrize(
    "values",
    [
        REQUIRED,
        {**REQUIRED, "keda": {"enabled": True}},
        {"existingEnvSecret": "fw-db", "existingConfigSecret": "fw-conf"},
    ],
    ids=["defaults", "keda", "existing-secrets"],
)
def test_every_manifest_is_valid_kubernetes(values: dict[str, Any]) -> None:
    docs = render_chart(CHART, values)
    assert docs
    for doc in docs:
        assert doc["metadata"]["namespace"] == "falsework"
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a custom resource: checked in test_keda_scales_the_workers
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_api_worker_migration_and_budgets() -> None:
    docs = kinds(
        render_chart(
            CHART,
            {
                **REQUIRED,
                "config": {
                    "auth": {
                        "tokens": [{"sha256": TOKEN, "user": "user:default/ops", "admin": True}]
                    }
                },
            },
        )
    )
    api = docs[("Deployment", "fw-api")]
    worker = docs[("Deployment", "fw-worker")]
    assert container(api)["args"] == ["serve", "--concurrency", "0"]
    assert container(worker)["args"] == ["worker"]
    assert container(api)["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container(api)["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # the worker's pod outlives its drain: grace ≥ FALSEWORK_SHUTDOWN_GRACE
    env = {e["name"]: e["value"] for e in container(worker)["env"]}
    grace = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= float(env["FALSEWORK_SHUTDOWN_GRACE"]) + 10
    assert worker["spec"]["replicas"] == 2
    for deployment in (api, worker):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the image's user
        assert container(deployment)["securityContext"]["readOnlyRootFilesystem"] is True
        refs = container(deployment)["envFrom"]
        assert {"secretRef": {"name": "fw-env"}} in refs
        assert pod["volumes"][0] == {"name": "config", "secret": {"secretName": "fw-config"}}
        # its budget selects its pods
        budget = docs[("PodDisruptionBudget", deployment["metadata"]["name"])]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert (
            deployment["spec"]["selector"]["matchLabels"]
            == budget["spec"]["selector"]["matchLabels"]
        )
    service = docs[("Service", "fw-api")]
    assert service["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]
    # the migration runs before install and upgrade, after the Secrets it reads
    job = docs[("Job", "fw-migrate")]
    assert container(job)["args"] == ["db", "upgrade"]
    hooks = job["metadata"]["annotations"]
    assert hooks["helm.sh/hook"] == "pre-install,pre-upgrade"
    for secret in ("fw-env", "fw-config"):
        made = docs[("Secret", secret)]["metadata"]["annotations"]
        assert made["helm.sh/hook"] == hooks["helm.sh/hook"]
        assert int(made["helm.sh/hook-weight"]) < int(hooks["helm.sh/hook-weight"])
    assert docs[("Secret", "fw-env")]["stringData"] == {
        "FALSEWORK_DATABASE_URL": REQUIRED["databaseUrl"],
        "FALSEWORK_SECRET_KEY": REQUIRED["secretKey"],
    }


def test_the_config_and_settings_are_ones_falsework_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {"auth": {"tokens": [{"sha256": TOKEN, "user": "user:default/ops", "admin": True}]}}
    docs = kinds(render_chart(CHART, {**REQUIRED, "config": config}))
    text = docs[("Secret", "fw-config")]["stringData"]["falsework.yaml"]
    assert yaml.safe_load(text) == config
    (tmp_path / "falsework.yaml").write_text(text)
    settings = docs[("ConfigMap", "fw-settings")]["data"]
    names = set(settings)
    for deployment in ("fw-api", "fw-worker"):
        names |= {e["name"] for e in container(docs[("Deployment", deployment)])["env"]}
    names |= set(docs[("Secret", "fw-env")]["stringData"])
    for name in names:
        assert name.startswith("FALSEWORK_") and name[10:].lower() in Settings.model_fields, name
    for name in os.environ:
        if name.startswith("FALSEWORK_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FALSEWORK_CONFIG", str(tmp_path / "falsework.yaml"))
    for name, value in settings.items():
        if name != "FALSEWORK_CONFIG":
            monkeypatch.setenv(name, value)
    loaded = Settings()
    assert loaded.auth.tokens[0].user == "user:default/ops" and loaded.log_format == "json"


def test_keda_scales_the_workers() -> None:
    docs = kinds(render_chart(CHART, {**REQUIRED, "keda": {"enabled": True, "maxReplicas": 8}}))
    scaled = docs[("ScaledObject", "fw-worker")]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {"name": "fw-worker"}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 8)
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "postgresql"
    meta = trigger["metadata"]
    assert set(meta) <= {
        "connectionFromEnv",
        "query",
        "targetQueryValue",
        "activationTargetQueryValue",
    }
    assert meta["connectionFromEnv"] == "FALSEWORK_DATABASE_URL"
    assert all(isinstance(v, str) for v in meta.values())  # KEDA's metadata is strings
    assert "FROM tasks" in meta["query"] and "'open'" in meta["query"]
    # the workers get the variable it reads; the autoscaler owns their replicas
    worker = docs[("Deployment", "fw-worker")]
    assert {"secretRef": {"name": "fw-env"}} in container(worker)["envFrom"]
    assert "replicas" not in worker["spec"]
    assert ("ScaledObject", "fw-worker") not in kinds(render_chart(CHART, REQUIRED))


def test_keda_can_also_scale_on_the_oldest_open_tasks_wait(postgres_url: str) -> None:
    values = {**REQUIRED, "keda": {"enabled": True, "oldestOpenSeconds": 60}}
    scaled = kinds(render_chart(CHART, values))[("ScaledObject", "fw-worker")]
    queue, age = scaled["spec"]["triggers"]
    assert queue["metadata"]["targetQueryValue"] == "100"
    meta = age["metadata"]
    assert age["type"] == "postgresql" and meta["connectionFromEnv"] == "FALSEWORK_DATABASE_URL"
    assert (meta["targetQueryValue"], meta["activationTargetQueryValue"]) == ("60", "60")
    # the query, on the engine's schema in a real Postgres: an integer of seconds,
    # tasks not yet claimable left out, 0 when nothing waits
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        assert conn.execute(meta["query"]).fetchone() == (0,)
        for i, (status, created, run_after) in enumerate(
            [
                ("open", "now() - interval '120 seconds'", "NULL"),
                ("open", "now() - interval '1 hour'", "now() + interval '1 hour'"),
                ("completed", "now() - interval '2 hours'", "NULL"),
            ]
        ):
            conn.execute(
                "INSERT INTO tasks (id, status, spec, step_state, checkpoints, created_at, "
                f"run_after) VALUES ('t{i}', '{status}', '{{}}', '{{}}', '{{}}', {created}, "
                f"{run_after})"
            )
        (seconds,) = conn.execute(meta["query"]).fetchone()
    assert isinstance(seconds, int) and 119 <= seconds <= 180


def test_the_query_counts_what_the_engine_stores(tmp_path: Path) -> None:
    """The scaler's query runs on the engine's own schema (SQLite here; the SQL is
    plain enough for both)."""
    import sqlite3

    from falsework.engine.schema import metadata

    docs = kinds(render_chart(CHART, {**REQUIRED, "keda": {"enabled": True}}))
    query = docs[("ScaledObject", "fw-worker")]["spec"]["triggers"][0]["metadata"]["query"]
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'q.db'}")
    metadata.create_all(engine)
    engine.dispose()
    with sqlite3.connect(tmp_path / "q.db") as conn:
        for i, status in enumerate(["open", "processing", "completed", "failed", "open"]):
            conn.execute(
                "INSERT INTO tasks (id, seq, status, spec, step_state, checkpoints, created_at) "
                "VALUES (?, ?, ?, '{}', '{}', '{}', '2026-01-01')",
                (f"t{i}", i, status),
            )
        assert conn.execute(query).fetchone() == (3,)


def test_required_values_and_the_renderers_limits() -> None:
    with pytest.raises(TemplateError, match="databaseUrl"):
        render_chart(CHART, {"secretKey": "x"})
    renderer = Renderer({"a": {"b": "x"}}, {"Name": "n"}, {})
    assert (
        renderer.render("{{ .Values.a.b | quote }} {{- if not .Values.a.b }}no{{ end }}") == '"x"'
    )
    assert renderer.render("v: {{ add 1 2 }}\n{{- /* gone */}}\n") == "v: 3\n"
    for unknown in ("{{ .Values.a.c }}", "{{ sha256sum .Values.a.b }}", '{{ include "x" . }}'):
        with pytest.raises(TemplateError):
            renderer.render(unknown)
    with pytest.raises(TemplateError, match="toYaml"):
        renderer.render("{{ .Values.a }}")
