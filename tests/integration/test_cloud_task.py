"""cloud/sky-train.yaml, loaded by SkyPilot's own task loader and checked against the Makefile, profiles/ and
dvc's own options. Skipped where skypilot is not installed (`pip install -e '.[cloud]'`)."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sky = pytest.importorskip("sky")

TASK = "cloud/sky-train.yaml"
CREDENTIALS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "OPENAI_API_KEY", "HF_TOKEN"}
# what torch reports for each card the task asks for (total memory, bf16): what `gabarito doctor` sees
CARDS = {"T4": (15.8, False), "L4": (23.7, True), "A10G": (23.8, True), "A100": (42.4, True)}
EXPECTED = {"T4": "t4", "L4": "gpu24", "A10G": "gpu24", "A100": "thesis"}


@pytest.fixture(scope="module")
def config(repo_root) -> dict:
    return yaml.safe_load((repo_root / TASK).read_text())


@pytest.fixture(scope="module")
def task(config):
    """The task as `sky launch --env NAME=...` builds it: every value left null given at launch."""
    given = [(k, "x") for k, v in config["envs"].items() if v is None]
    return sky.Task.from_yaml_config(copy.deepcopy(config), env_overrides=given)  # it pops the keys it reads


def commands(config) -> list[str]:
    """The shell lines of setup and run, continuation lines joined, comments dropped."""
    text = (config["setup"] + "\n" + config["run"]).replace("\\\n", " ")
    return [line.split(" #")[0].strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_task_loads_and_asks_for_one_of_four_gpus(task):
    assert task.name == "gabarito-train"
    asked = {next(iter(r.accelerators.items())) for r in task.resources}
    assert asked == {(card, 1) for card in CARDS}
    assert task.workdir == "." and task.envs["GABARITO_PROFILE"] == "auto"


def test_credentials_come_from_the_launch_never_the_file(repo_root, config):
    assert {k for k, v in config["envs"].items() if v is None} == CREDENTIALS | {"GABARITO_S3_URL"}
    with pytest.raises(ValueError, match="with --env flag"):  # launched without them: SkyPilot refuses
        sky.Task.from_yaml(str(repo_root / TASK))
    text = (repo_root / TASK).read_text()
    assert not re.search("|".join(["sk" + "-", "hf" + "_[A-Za-z]", "AKIA"]), text)


def test_make_targets_and_profiles_exist(repo_root, config):
    makefile = (repo_root / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    used = [m for line in commands(config) for m in re.findall(r"\bmake ([a-z][a-z-]*)", line)]
    assert set(used) == {"system-deps", "setup", "profile", "resume", "push"}, used
    assert set(used) <= targets
    profiles = {p.stem for p in (repo_root / "profiles").glob("*.yaml")} | {"offline"}
    assert config["envs"]["GABARITO_PROFILE"] == "auto"
    from gabarito.tools.doctor import fitting_profile, profile_estimates
    estimates = profile_estimates(repo_root / "profiles")
    picked = {card: fitting_profile({"memory_gb": gb, "bf16": bf16}, estimates) for card, (gb, bf16) in CARDS.items()}
    assert picked == EXPECTED and set(picked.values()) <= profiles
    # the auto line imports what it names from doctor
    (line,) = [l for l in config["run"].splitlines() if "from gabarito.tools.doctor import" in l]
    names = line.split("import", 1)[1].split('"')[0].replace(",", " ").split()
    import gabarito.tools.doctor as doctor
    assert names and all(hasattr(doctor, n) for n in names), names


def test_dvc_commands_use_options_dvc_has(repo_root, config):
    lines = [line for line in commands(config) if line.startswith("dvc ")]
    assert any(line.startswith("dvc exp run") for line in lines) and any("dvc pull" in line for line in lines)
    dvc = Path(sys.executable).parent / "dvc"
    for line in lines:
        words = line.split()
        sub = [w for w in words[1:] if not w.startswith(("-", "$", '"'))][:2]
        sub = sub[:2] if sub[0] in {"exp", "remote"} else sub[:1]
        helptext = subprocess.run([str(dvc), *sub, "--help"], capture_output=True, text=True, cwd=repo_root).stdout
        for flag in (w for w in words if w.startswith("--")):
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", helptext), f"{line}: dvc {' '.join(sub)} has no {flag}"
