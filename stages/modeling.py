"""Build the tiny local base model, and load any base model (tiny or hub) in 4-bit.

    gabarito base-model --corpus data/interim/clean/train.jsonl --prompts prompts/chat.v1.yaml \\
        --out models/base

``base_model.source: tiny`` (offline default) builds a Llama-architecture model with seeded random
weights and a byte-level BPE tokenizer trained on the training corpus, with Zephyr's chat template,
so every later stage runs the same code it would run on the real model. ``source: hub`` writes only
``reference.json`` (hub id + pinned revision): a 7B base model is never copied into DVC; it is
fetched from the Hugging Face cache (``HF_TOKEN`` from the environment for gated models).
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Iterable

import click

from stages import io
from stages.clikit import log, params_option, user_errors
from stages.io import InputError
from stages.params import QuantizationParams, TinyModelParams, load_section

REFERENCE = "reference.json"

# Zephyr-7B-beta's own chat template (HuggingFaceH4/zephyr-7b-beta tokenizer_config.json), so the
# offline model formats prompts exactly like the thesis-scale one
ZEPHYR_CHAT_TEMPLATE = (
    "{% for message in messages %}\n"
    "{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n"
    "{% endfor %}"
)
SPECIAL = {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}
CHAT_MARKERS = ["<|system|>", "<|user|>", "<|assistant|>"]


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """Byte-level BPE trained on ``texts``, wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=SPECIAL["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL)
    fast.add_tokens(CHAT_MARKERS)
    fast.chat_template = ZEPHYR_CHAT_TEMPLATE
    fast.padding_side = "left"  # generation pads on the left; training collators pad explicitly
    return fast


def build_tiny(texts: Iterable[str], p: TinyModelParams):
    """Return (model, tokenizer): seeded random Llama weights and a corpus-trained tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = train_tokenizer(texts, p.vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=p.hidden_size, intermediate_size=p.intermediate_size,
        num_hidden_layers=p.num_hidden_layers, num_attention_heads=p.num_attention_heads,
        num_key_value_heads=p.num_key_value_heads, max_position_embeddings=p.max_position_embeddings,
        initializer_range=p.initializer_range, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
    )
    torch.manual_seed(p.seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def resolve_base(path: str | Path) -> tuple[str, str | None]:
    """(name_or_path, revision) to pass to ``from_pretrained`` for a base written by base-model."""
    path = Path(path)
    ref = path / REFERENCE
    if ref.exists():
        data = json.loads(ref.read_text(encoding="utf-8"))
        return data["hub_id"], data["revision"]
    if not (path / "config.json").exists():
        raise InputError(f"{path}: no base model here. Run `dvc repro base_model` first.")
    return str(path), None


class HubUnreachable(InputError):
    """A hub model that is neither reachable nor in the local cache."""


def hub_error(hub_id: str, revision: str | None, exc: Exception) -> HubUnreachable:
    """One message for "the hub model cannot be had": what, why (first line), and what to do."""
    first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    first = first if len(first) <= 200 else first[:197] + "..."
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    why = ("HF_HUB_OFFLINE is set, so nothing is downloaded: unset it (on a machine with network) to fetch the "
           "model into the cache" if offline else
           "Check the network (or HTTPS_PROXY) to huggingface.co; a gated model also needs HF_TOKEN in the environment")
    return HubUnreachable(
        f"base model {hub_id}@{revision or 'main'}: not reachable on the Hugging Face hub and not in the local cache "
        f"({type(exc).__name__}: {first}). {why}. To work without the hub, switch to the local tiny model: "
        "`dvc exp run -S base_model.source=tiny` (or `make profile PROFILE=offline`).")


def _hub_call(hub_id: str, revision: str | None, fn):
    """Run a hub fetch, turning every "could not get it" into HubUnreachable (a full disk stays itself)."""
    try:
        return fn()
    except OSError as exc:  # OfflineModeIsEnabled, LocalEntryNotFoundError, HTTP errors, transformers' OSError
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            raise
        raise hub_error(hub_id, revision, exc) from None
    except ValueError as exc:  # an unresolvable revision or repo id
        raise hub_error(hub_id, revision, exc) from None


def check_hub_model(hub_id: str, revision: str | None) -> None:
    """Fetch (or find in the cache) the model's config and tokenizer: the small files every later stage
    needs first. Fails here, at base_model, with HubUnreachable rather than at format with a traceback."""
    from transformers import AutoConfig, AutoTokenizer

    _hub_call(hub_id, revision, lambda: AutoConfig.from_pretrained(hub_id, revision=revision))
    _hub_call(hub_id, revision, lambda: AutoTokenizer.from_pretrained(hub_id, revision=revision))


def load_tokenizer(base: str | Path):
    from transformers import AutoTokenizer

    name, revision = resolve_base(base)
    if revision is None:
        tok = AutoTokenizer.from_pretrained(name)
    else:  # a hub reference
        tok = _hub_call(name, revision, lambda: AutoTokenizer.from_pretrained(name, revision=revision))
    if tok.pad_token is None:
        # Zephyr ships no pad token; its <unk> is never produced, so padding with it is harmless
        tok.pad_token = tok.unk_token or tok.eos_token
    return tok


def quantization_config(q: QuantizationParams):
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=q.load_in_4bit, bnb_4bit_quant_type=q.bnb_4bit_quant_type,
        bnb_4bit_use_double_quant=q.bnb_4bit_use_double_quant,
        bnb_4bit_compute_dtype=getattr(torch, q.bnb_4bit_compute_dtype),
        bnb_4bit_quant_storage=getattr(torch, q.bnb_4bit_quant_storage),
    )


def load_4bit(base: str | Path, q: QuantizationParams, device: str | None = None):
    """Load the base model quantized with bitsandbytes (NF4 by default) on GPU if present, else CPU.

    ``device`` forces one ("cpu"). Under ``accelerate launch`` each process loads onto its own GPU
    (``LOCAL_RANK``); under FSDP no device is given, as in peft's FSDP-QLoRA guide: accelerate places
    and shards the layers itself (a per-rank device_map would put a whole copy on every GPU).
    """
    import os

    import torch
    from transformers import AutoModelForCausalLM

    name, revision = resolve_base(base)
    if device is not None:
        device_map = {"": device}
    elif os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        device_map = None
    elif torch.cuda.is_available():
        device_map = {"": int(os.environ["LOCAL_RANK"]) if "LOCAL_RANK" in os.environ else torch.cuda.current_device()}
    else:
        device_map = {"": "cpu"}
    # with a float quant storage (FSDP) the other weights must share its dtype: FSDP flattens a decoder
    # layer's packed 4-bit weights and its norms into one tensor, which needs a single dtype
    dtype = q.bnb_4bit_quant_storage if q.bnb_4bit_quant_storage != "uint8" else q.bnb_4bit_compute_dtype
    return AutoModelForCausalLM.from_pretrained(
        name, revision=revision, quantization_config=quantization_config(q), device_map=device_map,
        dtype=getattr(torch, dtype),
    )


def check_adapter(adapter: str | Path) -> None:
    """InputError unless ``adapter`` is a peft LoRA adapter folder."""
    if not (Path(adapter) / "adapter_config.json").exists():
        raise InputError(f"{adapter}: no LoRA adapter here (adapter_config.json missing). Run `dvc repro train` "
                         "first (or `dvc pull`).")


def seed_everything(seed: int, threads: int) -> None:
    """Seed every RNG and pin CPU threads: CPU float sums depend on the thread split."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def tokenizer_texts(prompts: dict[str, str], records: Iterable[dict]) -> list[str]:
    """The texts the tiny model's tokenizer is trained on: the prompt templates, then every training
    record's text (a multiple-choice item's context, question and answers; an open question and answer)."""
    texts = list(prompts.values())
    for rec in records:
        if rec["kind"] == "mcq":
            texts += [rec["context"], rec["question"], *rec["answers"]]
        else:
            texts += [rec["question"], rec["answer"]]
    return texts


# --- command: gabarito base-model ----------------------------------------------------------------
@click.command("base-model")
@click.option("--corpus", type=click.Path(dir_okay=False, exists=True), required=True,
              help="clean training records; their text trains the tiny model's tokenizer")
@click.option("--prompts", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--out", type=click.Path(file_okay=False), required=True)
@params_option
@user_errors
def command(corpus, prompts, out, params_path):
    """Build the tiny offline base model, or write a pinned reference to a hub model.

    \b
    Examples:
      dvc repro base_model
      dvc exp run -S base_model.source=hub           # Zephyr-7B-beta at base_model.revision
    """
    from stages.chat_format import load_prompts

    p = load_section("base_model", params_path)
    if p.source == "hub":
        # before anything is written: a reference to a model nobody can load is not a base model
        check_hub_model(p.hub_id, p.revision)
        with io.atomic_path(out, directory=True) as tmp:
            io.write_json(tmp / REFERENCE, {"hub_id": p.hub_id, "revision": p.revision})
        log(f"base-model: {p.hub_id}@{p.revision} (not copied; config and tokenizer in the hub cache)")
        return
    texts = tokenizer_texts(load_prompts(prompts), io.read_jsonl(corpus))
    model, tokenizer = build_tiny(texts, p.tiny)
    with io.atomic_path(out, directory=True) as tmp:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
    n = sum(t.numel() for t in model.parameters())
    log(f"base-model: tiny Llama, {n:,} parameters, vocabulary {len(tokenizer)} -> {out}")
