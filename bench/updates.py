"""Figures of template updates (issue 15):

1. the time to compute an update of a 1,000-file repository (target < 2 s of
   work, the network excluded): a template whose skeleton has 1,000 files
   (30 lines each, in 20 folders); v2 changes the bottom of 100 of them, adds
   10, deletes 5; the repository, made from v1 by `falsework run` with scaffold
   recording, has team commits on the top of 100 files. Timed: plan_update in
   one process (fetch of the template's tags from a repository on disk, render
   of v2 as a rehearsal, the pristine commit, the 3-way merge, the state file),
   median of the runs; and the whole `falsework update` command once (Python
   start included).
2. a fleet update on one node: N repositories made from v1 (one made by
   `falsework run`, copied), updated to v2 by one
   `POST /api/falsework/v1/scaffolds/updates` to a `falsework serve` on SQLite:
   the time until every update task has completed and pushed its branch.

    python -m bench.updates [--quick] [--fleet 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from bench.common import emit, log, machine

FALSEWORK = Path(sys.executable).with_name("falsework")
TARGET_S = 2.0
ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
ENV |= {"GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com"}
ENV |= {"GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=ENV, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)}: {done.stderr}")
    return done.stdout


def template(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {"name": "big"},
        "spec": {
            "parameters": [
                {
                    "required": ["name", "remote"],
                    "properties": {"name": {"type": "string"}, "remote": {"type": "string"}},
                }
            ],
            "steps": [
                {
                    "id": "fetch",
                    "action": "fetch:template",
                    "input": {"url": "./skeleton", "values": {"name": "${{ parameters.name }}"}},
                },
                {
                    "id": "publish",
                    "action": "publish:git",
                    "input": {"remoteUrl": "${{ parameters.remote }}", "scaffold": True},
                },
            ],
        },
    }
    (folder / "template.yaml").write_text(yaml.safe_dump(document))


def body(index: int, top: str = "", bottom: str = "") -> str:
    rows = [f"file {index} line {i}\n" for i in range(30)]
    if top:
        rows[1] = f"{top}\n"
    if bottom:
        rows[28] = f"{bottom}\n"
    return "".join(rows)


def skeleton(folder: Path, files: int, version: int) -> None:
    if (folder / "skeleton").exists():
        shutil.rmtree(folder / "skeleton")
    for index in range(files):
        if version == 2 and index % 200 == 7:
            continue  # deleted in v2 (5 files of 1,000)
        bottom = f"changed in v{version}" if version == 2 and index % 10 == 3 else ""
        path = folder / "skeleton" / f"pkg{index % 20}" / f"m{index}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body(index, bottom=bottom))
    if version == 2:
        for index in range(10):
            (folder / "skeleton" / "new").mkdir(exist_ok=True)
            (folder / "skeleton" / "new" / f"n{index}.py").write_text(f"new {index}\n")


def release(root: Path, files: int, version: int) -> None:
    skeleton(root / "big", files, version)
    git("add", "-A", cwd=root)
    git("commit", "-qm", f"v{version}", cwd=root)
    git("tag", f"v{version}", cwd=root)


def make_templates(root: Path, files: int) -> Path:
    root.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=root)
    template(root / "big")
    release(root, files, 1)
    release(root, files, 2)
    git("checkout", "-q", "v1", cwd=root)
    return root / "big"


def falsework(*args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {**ENV, "FALSEWORK_DATA_DIR": str(cwd / ".fw"), **extra}
    return subprocess.run([str(FALSEWORK), *args], cwd=cwd, env=env, capture_output=True, text=True)


def create(tmp: Path, folder: Path, remote: Path) -> None:
    done = falsework("run", str(folder), "--set", "name=svc", "--set", f"remote={remote}", cwd=tmp)
    if done.returncode != 0:
        raise SystemExit(f"falsework run failed: {done.stdout}{done.stderr}")


def team_commits(clone: Path, files: int) -> None:
    for index in range(0, files, 10):  # 100 files of 1,000
        path = clone / f"pkg{index % 20}" / f"m{index}.py"
        path.write_text(body(index, top="changed by the team"))
    git("commit", "-qam", "team work", cwd=clone)


async def plan_once(clone: Path) -> tuple[float, int]:
    from falsework.actions.git import GitPolicy
    from falsework.config import load_settings
    from falsework.updates import plan_update
    from falsework.updates.render import for_updates
    from falsework.updates.update import open_clone
    from falsework.wiring import workflow_runner

    repo = await open_clone(clone, GitPolicy.local())
    runner = for_updates(workflow_runner(load_settings()))
    head = await repo.rev("HEAD")
    assert head is not None
    tip = await repo.rev("refs/remotes/origin/falsework/pristine")
    started = time.perf_counter()
    plan = await plan_update(repo, head, runner, to="v2", pristine_tip=tip)
    seconds = time.perf_counter() - started
    assert plan.merge is not None and plan.merge.clean, plan.conflicts
    return seconds, len(await repo.files(plan.tree or "HEAD"))


def big(runs: int, files: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-updates-") as name:
        tmp = Path(name)
        folder = make_templates(tmp / "templates", files)
        remote = tmp / "remotes" / "svc.git"
        create(tmp, folder, remote)
        clone = tmp / "clone"
        git("clone", "-q", str(remote), str(clone), cwd=tmp)
        team_commits(clone, files)
        times = []
        for i in range(runs):
            seconds, count = asyncio.run(plan_once(clone))
            log(f"plan {i + 1}: {seconds:.2f} s ({count} files in the merged tree)")
            times.append(seconds)
        started = time.perf_counter()
        done = falsework("update", str(clone), "--to", "v2", cwd=tmp)
        command = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"falsework update failed: {done.stdout}{done.stderr}")
        log(f"falsework update: {command:.2f} s")
    median = statistics.median(times)
    emit(
        "updates",
        "falsework",
        "update_seconds",
        round(median, 2),
        files=files,
        merged_files=count,
        runs=runs,
        command_s=round(command, 2),
        target_s=TARGET_S,
        ok=median < TARGET_S,
        **machine(),
    )


def fleet(repositories: int) -> None:
    from bench.procs import free_port

    # (ignore_cleanup_errors: the stopped server's last files may still be going away)
    with tempfile.TemporaryDirectory(prefix="bench-fleet-", ignore_cleanup_errors=True) as name:
        tmp = Path(name)
        folder = make_templates(tmp / "templates", 20)
        remotes = tmp / "remotes"
        first = remotes / "r0.git"
        create(tmp, folder, first)
        for index in range(1, repositories):
            shutil.copytree(first, remotes / f"r{index}.git")
        port = free_port()
        env = {
            "FALSEWORK_DATABASE_URL": f"sqlite:///{tmp / 'fw.db'}",
            "FALSEWORK_TEMPLATES": str(tmp / "templates"),
            "FALSEWORK_PUBLISH_ROOTS": str(remotes),
            "FALSEWORK_UPDATE_HOST_INTERVAL": "0",
            "FALSEWORK_SECRET_KEY": "q0WZ3v0n1Fv7d9b5Qm1mKc5V4r6Hn3bJ8yq2tF3pG0E=",
        }
        args = [str(FALSEWORK), "serve", "--port", str(port), "--log-level", "warning"]
        server = subprocess.Popen(args, cwd=tmp, env={**ENV, **env})
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, server)
            targets = [{"remoteUrl": str(remotes / f"r{i}.git")} for i in range(repositories)]
            with httpx.Client(base_url=url, timeout=300) as client:
                started = time.perf_counter()
                made = client.post(
                    "/api/falsework/v1/scaffolds/updates",
                    json={"repositories": targets, "to": "v2"},
                )
                made.raise_for_status()
                ids = [t["id"] for t in made.json()["tasks"]]
                pending = set(ids)
                while pending:
                    for task_id in list(pending):
                        task = client.get(f"/api/scaffolder/v2/tasks/{task_id}").json()
                        if task["status"] == "failed":
                            raise SystemExit(f"update task failed: {task}")
                        if task["status"] == "completed":
                            pending.discard(task_id)
                    time.sleep(0.2)
                seconds = time.perf_counter() - started
                log(f"fleet: {repositories} repositories updated in {seconds:.1f} s")
        finally:
            server.terminate()
            server.wait(60)
        for index in (0, repositories - 1):
            branch = git("branch", "--list", "falsework/update/*", cwd=remotes / f"r{index}.git")
            assert "falsework/update/big-v2" in branch, branch
    emit(
        "updates",
        "falsework",
        "fleet_seconds",
        round(seconds, 1),
        repositories=repositories,
        per_repository_ms=round(seconds / repositories * 1000),
        **machine(),
    )


def _wait_healthy(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"falsework serve exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("falsework serve did not become healthy within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one timed run, 20 repositories")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--fleet", type=int, default=200)
    args = parser.parse_args()
    big(1 if args.quick else args.runs, args.files)
    fleet(20 if args.quick else args.fleet)


if __name__ == "__main__":
    main()
