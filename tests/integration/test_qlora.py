"""Real bitsandbytes 4-bit NF4 layers, peft LoRA and trl training on the tiny model (CPU)."""

from __future__ import annotations

import json
import math

import pytest

from gabarito.chat import load_prompts
from gabarito.modeling import load_4bit
from gabarito.params import EvaluateParams, QuantizationParams, TrainParams
from stages.evaluate import evaluate
from stages.train import train


@pytest.fixture(scope="module")
def prompts(repo_root):
    return load_prompts(repo_root / "prompts/chat.v1.yaml")


def test_base_loads_as_nf4_with_double_quantization(tiny_base):
    import bitsandbytes as bnb

    model = load_4bit(tiny_base, QuantizationParams())
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    # 2 decoder layers x (q, k, v, o, gate, up, down)
    assert len(layers) == 14
    state = layers[0].weight.quant_state
    assert state.quant_type == "nf4"
    assert state.nested is True  # double quantization of the absmax constants


def test_qlora_trains_saves_an_adapter_and_scores(tiny_base, formatted, prompts, tmp_path):
    train_set, val_set = formatted
    params = TrainParams.model_validate({
        "lora": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
        "sft": {"max_steps": 4, "per_device_train_batch_size": 4, "learning_rate": 3e-3, "logging_steps": 1},
    })
    metrics = train(train_set, tiny_base, tmp_path / "adapter", params)
    assert metrics["steps"] == 4
    assert metrics["examples"] == 16
    assert math.isfinite(metrics["train_loss"]) and metrics["train_loss"] > 0
    # LoRA on q,v of 2 layers: A (r x 64) + B (out x r); q out 64, v out 32 (GQA)
    assert metrics["trainable_params"] == 2 * (4 * 64 + 64 * 4 + 4 * 64 + 32 * 4)
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert sorted(config["target_modules"]) == ["q_proj", "v_proj"]
    assert config["r"] == 4 and config["lora_alpha"] == 8
    assert (tmp_path / "adapter" / "adapter_model.safetensors").stat().st_size > 0

    params = EvaluateParams(modes=["letter", "loglik", "generate"], max_new_tokens=4)
    result, preds, plots = evaluate(val_set, tiny_base, tmp_path / "adapter", params, QuantizationParams(),
                                    letters=list("ABCD"), answer_prefix="Alternativa", prompts_file=prompts,
                                    train=train_set)
    assert set(result) == {"base", "finetuned", "mcnemar", "breakdown"}  # the breakdown: metrics/breakdown.json
    assert result["breakdown"]["split"]["validation"]["base"]["letter"]["n"] == 6
    assert len(preds) == 2 * 3 * 6
    for name in ("base", "finetuned"):
        assert result[name]["n"] == 6 and result[name]["accuracy"] == result[name]["letter"]["accuracy"]
        for mode in ("letter", "loglik"):
            m = result[name][mode]
            assert m["invalid_rate"] == 0.0 and 0.0 <= m["ece"] <= 1.0  # every item answered, with probabilities
        gen = result[name]["generate"]
        assert 0.0 <= gen["accuracy"] <= 1.0 - gen["invalid_rate"] + 1e-9
        pb = result[name]["position_bias"]
        assert set(pb) == {"shift_0", "shift_1", "shift_2", "shift_3", "spread", "n_by_shift"}
        assert pb["n_by_shift"] == {f"shift_{s}": 6 for s in range(4)}  # four options: every item, every rotation
        # the unrotated pass scores exactly like the letter mode
        assert pb["shift_0"] == result[name]["letter"]["accuracy"]
    probs = [p["probs"] for p in preds if p["mode"] in ("letter", "loglik")]
    assert all(abs(sum(p) - 1) < 1e-4 and len(p) == 4 for p in probs)
    assert {r["model"] for r in plots["confusion"]} == {"base", "finetuned"}


def test_training_is_bit_for_bit_repeatable_on_cpu(tiny_base, formatted, tmp_path):
    train_set, _ = formatted
    params = TrainParams.model_validate({"sft": {"max_steps": 3, "per_device_train_batch_size": 4}})
    first = train(train_set, tiny_base, tmp_path / "a", params)
    second = train(train_set, tiny_base, tmp_path / "b", params)
    assert first == second
    a = (tmp_path / "a" / "adapter_model.safetensors").read_bytes()
    b = (tmp_path / "b" / "adapter_model.safetensors").read_bytes()
    assert a == b
