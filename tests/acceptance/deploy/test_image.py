"""The Dockerfile's steps, run without Docker (none is installed here).

The Dockerfile is read instruction by instruction and carried out on this machine:
each stage gets a folder of its own standing for its file system (an absolute path
``/x`` in the Dockerfile is ``<stage root>/x`` here), ``COPY`` copies from the build
context or from the earlier stage, ``RUN`` runs its shell command with those paths,
``ENV`` and ``WORKDIR`` apply to what follows. Two things are not done: ``RUN``
steps that install Debian packages or add a user (they need root inside a fresh
image), and running as that user; the test checks they are there. Then the image's
``ENTRYPOINT`` + ``CMD`` start `falsework serve` from the installed wheel, and the
``HEALTHCHECK`` command answers for it, as Docker would ask it.

Not run here: `docker build` itself, the base image's Python (3.12; this runs the
steps on the machine's Python), and the image on a cluster.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from support.paths import REPO
from support.serve import clean_env, free_port, stop_process, wait_healthy

ROOT = REPO
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]
NOT_RUN = ("apt-get ", "useradd ")  # need root in a fresh image (checked, not run)


@dataclass
class Stage:
    name: str | None
    root: Path
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def rewrite(self, text: str) -> str:
        """Absolute paths of the stage's file system as paths under its root."""
        words = []
        for word in shlex.split(text):
            if word.startswith("/"):
                word = str(self.path(word))
            words.append(shlex.quote(word) if word not in ("&&", "||", ";") else word)
        return " ".join(words)


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def stages(dockerfile: Path, base: Path) -> list[Stage]:
    found: list[Stage] = []
    for keyword, rest in instructions(dockerfile):
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            found.append(Stage(name, base / f"stage{len(found)}"))
        found[-1].instructions.append((keyword, rest))
    return found


def env_words(rest: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in shlex.split(rest))


def build(dockerfile: Path, base: Path) -> Stage:
    """Carry out every stage; return the last (the image) with its ENV and WORKDIR."""
    built = stages(dockerfile, base)
    by_name = {s.name: s for s in built if s.name}
    for stage in built:
        stage.root.mkdir(parents=True)
        for keyword, rest in stage.instructions:
            if keyword == "WORKDIR":
                stage.workdir = rest
                stage.path(rest).mkdir(parents=True, exist_ok=True)
            elif keyword == "COPY":
                words = rest.split()
                source_stage = None
                if words[0].startswith("--from="):
                    source_stage = by_name[words.pop(0).split("=", 1)[1]]
                *sources, dest = words
                target = stage.path(dest if dest.startswith("/") else f"{stage.workdir}/{dest}")
                for source in sources:
                    origin = source_stage.path(source) if source_stage else ROOT / source
                    if origin.is_dir():
                        shutil.copytree(origin, target, dirs_exist_ok=True)
                    else:
                        target.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(origin, target / origin.name)
            elif keyword == "ENV":
                for key, value in env_words(rest).items():
                    parts = [
                        str(stage.path(p)) if p.startswith("/") else p for p in value.split(":")
                    ]
                    stage.env[key] = ":".join(parts).replace("$PATH", os.environ["PATH"])
            elif keyword == "RUN":
                if rest.startswith(NOT_RUN):
                    continue
                done = subprocess.run(
                    ["sh", "-c", stage.rewrite(rest)],
                    cwd=stage.path(stage.workdir),
                    env={**clean_env(), **stage.env},
                    capture_output=True,
                    text=True,
                    timeout=900,
                    check=False,
                )
                assert done.returncode == 0, f"RUN {rest}\n{done.stdout}\n{done.stderr}"
    return built[-1]


def last(stage: Stage, keyword: str) -> str:
    found = [rest for k, rest in stage.instructions if k == keyword]
    assert found, f"no {keyword} in the image's stage"
    return found[-1]


def test_the_dockerfile_builds_a_wheel_installs_it_and_serves(tmp_path: Path) -> None:
    dockerfile = ROOT / "Dockerfile"
    image = build(dockerfile, tmp_path)
    every = stages(dockerfile, tmp_path / "again")
    assert len(every) == 2 and every[0].name == "build"  # multi-stage, wheel built first
    assert list((tmp_path / "stage0" / "dist").glob("falsework-*.whl"))
    # what is not run here is there: the system packages and a user that is not root
    runs = [rest for k, rest in image.instructions if k == "RUN"]
    assert any(r.startswith("apt-get ") and "git" in r for r in runs)
    assert any(r.startswith("useradd ") and "--uid 10001" in r for r in runs)
    user = last(image, "USER")
    assert user.split(":")[0] not in ("0", "root") and user.split(":")[0].isdigit()
    entrypoint = json.loads(last(image, "ENTRYPOINT"))
    command = json.loads(last(image, "CMD"))
    assert entrypoint == ["falsework"] and command == ["serve"]
    healthcheck = last(image, "HEALTHCHECK")
    probe = json.loads(healthcheck.split(" CMD ", 1)[1])

    env = {**clean_env(), **image.env}
    falsework = shutil.which(entrypoint[0], path=env["PATH"])
    assert falsework is not None and falsework.startswith(str(image.root))
    helped = subprocess.run(
        [falsework, "--help"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert helped.returncode == 0 and "serve" in helped.stdout, helped.stderr
    # the image's CMD, as the container runs it (on a loopback port of this machine)
    port = free_port()
    env.update({"FALSEWORK_PORT": str(port), "FALSEWORK_HOST": "127.0.0.1"})
    data = Path(env["FALSEWORK_DATA_DIR"])
    data.mkdir(parents=True, exist_ok=True)
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [falsework, *command],
            env=env,
            cwd=image.path(image.workdir),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log, stop=lambda: stop_process(process, 10))
        checked = subprocess.run(probe, env=env, capture_output=True, timeout=30, check=False)
        assert checked.returncode == 0, checked.stderr
        assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
        templates = httpx.get(f"{url}/api/scaffolder/v2/templates", timeout=10)
        assert templates.status_code == 200 and "python-service" in templates.text
    finally:
        assert stop_process(process, 30) == 0, log.read_text()
    # JSON lines by default in the image
    first = log.read_text().splitlines()[0]
    assert json.loads(first)["logger"] == "falsework.serve", first
    assert (data / "falsework.db").is_file()
    down = subprocess.run(probe, env=env, capture_output=True, timeout=30, check=False)
    assert down.returncode == 1 and b"unhealthy" in down.stderr
