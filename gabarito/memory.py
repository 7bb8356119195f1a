"""The GPU memory a QLoRA run needs, worked out from the model's shape and the train params.

    from gabarito.memory import ZEPHYR_7B, estimate
    estimate(ZEPHYR_7B, load_profile("t4")["train"])   # {"total_gb": ..., "weights_gb": ..., ...}

Each profile (profiles/*.yaml) states this figure for Zephyr-7B-beta, `gabarito doctor` names the
profile whose figure fits the GPU it finds, and benchmarks/qlora_memory.py prints it beside the peak it
measures, so the formula is checked against the real thing wherever a GPU runs the benchmark. Terms
(decimal GB, as GPU memory is sold):

- 4-bit weights: every decoder linear layer at 4 bits, plus the quantization constants: one fp32
  absmax per 64 weights (0.5 bit a weight), or, double-quantized, one 8-bit absmax per 64 and an fp32
  constant per 256 of those (~0.127 bit).
- The embedding and LM head stay unquantized; prepare_model_for_kbit_training upcasts them to fp32.
- LoRA: r x (in + out) per adapted projection and layer, in fp32 (train keeps them so), with fp32
  gradients and the optimizer's two moments (fp32, or 8-bit for the bitsandbytes 8-bit optimizers).
- Activations, after Korthikanti et al. (2022), 34 bytes x hidden a token a layer in 16-bit with
  flash/SDPA attention (no length^2 term); with activation checkpointing only each layer's input is
  kept (2 bytes x hidden) and one layer is recomputed at a time.
- Logits for the loss: the (tokens, vocabulary) matrix in 16-bit, its fp32 copy and its fp32 gradient.
- 1 GB for the CUDA context, cuBLAS workspaces and the allocator's fragmentation.

It is an estimate, on the safe side where the terms are uncertain (logits are counted whole, though trl
may chunk them); the measured peak of the benchmark is the figure of record.
"""

from __future__ import annotations

from typing import Mapping

GB = 1e9
OVERHEAD_GB = 1.0

# Mistral-7B-v0.1's config.json, the base of Zephyr-7B-beta (as benchmarks/qlora_memory.py's SHAPES)
ZEPHYR_7B = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                 num_key_value_heads=8, vocab_size=32000)


def projection_shapes(shape: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """(in, out) features of each linear layer of one decoder layer (Llama/Mistral naming)."""
    h, m = shape["hidden_size"], shape["intermediate_size"]
    kv = h // shape["num_attention_heads"] * shape["num_key_value_heads"]
    return {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
            "gate_proj": (h, m), "up_proj": (h, m), "down_proj": (m, h)}


def estimate(shape: Mapping[str, int], train: Mapping) -> dict[str, float]:
    """GB of GPU memory, by term and in total, for training ``shape`` with a ``train`` section (a dict as
    params.yaml holds it, or TrainParams.model_dump())."""
    q, lora, sft = train["quantization"], train["lora"], train["sft"]
    layers, vocab, hidden = shape["num_hidden_layers"], shape["vocab_size"], shape["hidden_size"]
    projections = projection_shapes(shape)
    linear = layers * sum(i * o for i, o in projections.values())
    bits = 4 + (0.127 if q["bnb_4bit_use_double_quant"] else 0.5) if q["load_in_4bit"] else 16
    lora_params = layers * sum(lora["r"] * (i + o) for name, (i, o) in projections.items()
                               if name in lora["target_modules"])
    moments = 2 if "8bit" in sft["optim"] else 8  # two moments a parameter, 1 or 4 bytes each
    tokens = sft["per_device_train_batch_size"] * sft["max_length"]
    per_layer = 34 * hidden * tokens  # bytes of one layer's saved activations, 16-bit
    if sft["activation_checkpointing"]:
        activations = layers * 2 * hidden * tokens + per_layer
    else:
        activations = layers * per_layer
    terms = {
        "weights_gb": linear * bits / 8 / GB,
        "embeddings_gb": 2 * vocab * hidden * 4 / GB,
        "lora_gb": lora_params * (4 + 4 + moments) / GB,
        "activations_gb": activations / GB,
        "logits_gb": tokens * vocab * (2 + 4 + 4) / GB,
        "overhead_gb": OVERHEAD_GB,
    }
    return {**{k: round(v, 2) for k, v in terms.items()}, "tokens": tokens,
            "total_gb": round(sum(terms.values()), 1)}
