"""Write a small GGUF file with the `gguf` package: a random Llama with a byte-level BPE vocabulary
(the 256 byte symbols, ChatML's specials and " A".." D" as single tokens), in float32."""

from __future__ import annotations

from pathlib import Path

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
# the assistant turn closed by a newline only: nothing tells the model to stop
NO_END_OF_TURN = CHATML.replace("'<|im_end|>' + '\n'", "'\n'")
# Gemma's way: no system role, the template raises on one
NO_SYSTEM = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
             + CHATML)


def write_gguf(path: Path, *, arch: str = "llama", chat_template: str | None = CHATML, hidden: int = 32,
               layers: int = 1, heads: int = 4, ff: int = 64, eos_id: int = 2, pad_id: int | None = 0) -> Path:
    import gguf
    import numpy as np
    from tokenizers import pre_tokenizers

    chars = sorted(pre_tokenizers.ByteLevel.alphabet())
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    merged = ["ĠA", "ĠB", "ĠC", "ĠD"]
    tokens = specials + chars + merged
    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(layers)
    w.add_context_length(512)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ff)
    w.add_head_count(heads)
    w.add_head_count_kv(heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(hidden // heads)
    w.add_rope_freq_base(10000.0)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([3] * len(specials) + [1] * (len(chars) + len(merged)))
    w.add_token_merges([f"Ġ {m[1]}" for m in merged])
    w.add_bos_token_id(1)
    w.add_eos_token_id(eos_id)
    w.add_unk_token_id(0)
    if pad_id is not None:
        w.add_pad_token_id(pad_id)
    if chat_template:
        w.add_chat_template(chat_template)
    rng = np.random.default_rng(0)

    def tensor(name: str, *shape: int) -> None:
        w.add_tensor(name, (rng.standard_normal(shape) * 0.2).astype(np.float32))

    tensor("token_embd.weight", len(tokens), hidden)
    tensor("output_norm.weight", hidden)
    tensor("output.weight", len(tokens), hidden)
    for i in range(layers):
        for name in ("attn_norm", "ffn_norm"):
            tensor(f"blk.{i}.{name}.weight", hidden)
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            tensor(f"blk.{i}.{name}.weight", hidden, hidden)
        tensor(f"blk.{i}.ffn_gate.weight", ff, hidden)
        tensor(f"blk.{i}.ffn_up.weight", ff, hidden)
        tensor(f"blk.{i}.ffn_down.weight", hidden, ff)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
