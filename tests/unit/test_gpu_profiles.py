"""Profiles for the GPUs people can get (issue 26 §1): each states the memory the project's estimate
gives it, the T4's fits a T4, and `doctor` names the one that fits a GPU it is shown (no CUDA needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gabarito.memory import ZEPHYR_7B, estimate
from gabarito.tools.doctor import GPU_PROFILES, check_fit, profile_estimates
from gabarito.tools.profile import load_profile

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def estimates() -> dict[str, float]:
    return profile_estimates(ROOT / "profiles")


@pytest.mark.parametrize("name", [n for n, _, _ in GPU_PROFILES])
def test_each_profile_states_the_memory_of_the_estimate(name, estimates):
    stated = re.search(r"^# memory: ([\d.]+) GB expected", (ROOT / f"profiles/{name}.yaml").read_text(), re.M)
    assert stated, f"profiles/{name}.yaml has no '# memory: N GB expected' line"
    assert float(stated.group(1)) == estimates[name]


def test_the_t4_profile_fits_a_t4_in_fp16_with_paged_8bit_adamw(estimates):
    train = load_profile("t4", ROOT / "profiles")["train"]
    assert estimates["t4"] <= 14.0
    sft = train["sft"]
    assert train["quantization"]["bnb_4bit_compute_dtype"] == "float16" and sft["fp16"] and not sft["bf16"]
    assert sft["optim"] == "paged_adamw_8bit" and sft["activation_checkpointing"]
    assert sft["per_device_train_batch_size"] * sft["gradient_accumulation_steps"] == 32  # the thesis's batch
    assert load_profile("t4", ROOT / "profiles")["base_model"]["source"] == "hub"  # Zephyr-7B-beta in 4-bit


def test_the_estimate_follows_the_settings():
    thesis = load_profile("thesis", ROOT / "profiles")["train"]
    full = estimate(ZEPHYR_7B, thesis)
    assert 3.5 < full["weights_gb"] < 3.8  # 7.1 B linear weights at ~4.13 bits
    off = dict(thesis, sft={**thesis["sft"], "activation_checkpointing": False})
    assert estimate(ZEPHYR_7B, off)["activations_gb"] > 10 * full["activations_gb"] / 2
    adam = dict(thesis, sft={**thesis["sft"], "optim": "adamw_torch"})
    assert estimate(ZEPHYR_7B, adam)["lora_gb"] > full["lora_gb"]


@pytest.mark.parametrize("name, gb, bf16, profile", [
    ("Tesla T4", 15.8, False, "t4"),            # Colab free, Kaggle
    ("NVIDIA L4", 23.7, True, "gpu24"),
    ("NVIDIA A10G", 24.1, True, "gpu24"),
    ("NVIDIA GeForce RTX 4090", 25.3, True, "gpu24"),
    ("NVIDIA A100-SXM4-40GB", 42.4, True, "thesis"),
    ("NVIDIA H100 80GB HBM3", 85.0, True, "thesis"),
    ("Tesla V100-SXM2-32GB", 34.1, False, "t4"),  # no bf16: the fp16 profile
])
def test_doctor_names_the_profile_that_fits_the_gpu(estimates, name, gb, bf16, profile):
    got = check_fit({"devices": [{"name": name, "memory_gb": gb, "bf16": bf16}]}, estimates)
    assert got["status"] == "ok" and f"make profile PROFILE={profile}`" in got["detail"], got


def test_doctor_on_kaggles_two_t4s_and_on_a_card_too_small(estimates):
    t4 = {"name": "Tesla T4", "memory_gb": 15.8, "bf16": False}
    two = check_fit({"devices": [t4, t4]}, estimates)
    assert "PROFILE=t4" in two["detail"] and "train.launch.num_processes=2" in two["detail"]
    small = check_fit({"devices": [{"name": "GTX 1070", "memory_gb": 8.6, "bf16": False}]}, estimates)
    assert small["status"] == "warn" and "no GPU profile fits" in small["detail"]
    assert check_fit({"devices": []}, estimates)["status"] == "ok"


@pytest.mark.parametrize("name", ["t4", "gpu24"])
def test_a_gpu_profile_and_back_gives_params_yaml_again(name):
    from gabarito.tools.profile import apply_text

    text = (ROOT / "params.yaml").read_text(encoding="utf-8")
    there, changed = apply_text(text, name, ROOT / "profiles")
    assert f"# profile: {name}" in there and "train.sft.optim" in changed
    assert apply_text(there, "offline", ROOT / "profiles")[0] == text
