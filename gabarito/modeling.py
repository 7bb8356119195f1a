"""Loading a base model for the stages and tools that run it: where a base written by the base_model stage
lives (a folder, or a pinned hub reference), its tokenizer, the 4-bit NF4 load with the CPU kernel choice,
adapters, seeds and threads.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

from gabarito.clikit import log
from gabarito.io import InputError
from gabarito.params import (
    QuantizationParams,
)

REFERENCE = "reference.json"


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


# bitsandbytes' two CPU paths for a 4-bit layer in inference (eval mode, no grad):
# - portable: dequantize the NF4 weight to the compute dtype, then a plain float matmul. The same numbers on
#   every x86 CPU, so the committed metrics reproduce anywhere (the default).
# - packed: on CPUs with AVX512-BF16, bitsandbytes repacks each weight for a fused bf16 kernel the first time
#   the layer runs without grad. Faster on big layers (benchmarks/cpu_kernel.py), but it computes in bf16 with
#   bf16 scales (letter probabilities ~1e-2 away, so other letters), and exists only on such CPUs.
# bitsandbytes picks packed by itself wherever the CPU has it; gabarito makes it a choice.
CPU_KERNELS = ("portable", "packed")


PACK_ROWS = 32  # the packed layout tiles a weight in blocks of 32 output rows (bitsandbytes' block_n)


def packable(layer) -> bool:
    """Whether bitsandbytes' packed CPU layout can hold this Linear4bit: its rows tile by 32 and each row
    holds whole quantization blocks. A narrower layer (a toy's 16-wide projection) fails to repack with
    ``shape '[32, 0]' is invalid``, so it stays on the portable path."""
    blocksize = layer.weight.quant_state.blocksize
    return layer.out_features % PACK_ROWS == 0 and layer.in_features % blocksize == 0


def use_cpu_kernel(model, kernel: str) -> dict[str, int]:
    """Set every 4-bit layer of ``model`` to ``kernel`` ("portable" or "packed"); return how many layers
    run each path. Packed is taken only where the CPU has AVX512-BF16 and the layer fits the layout."""
    import bitsandbytes as bnb
    from bitsandbytes.functional import has_avx512bf16

    if kernel not in CPU_KERNELS:
        raise ValueError(f"cpu kernel {kernel!r}: expected one of {', '.join(CPU_KERNELS)}")
    cpu_has_it = bool(has_avx512bf16())
    counts = {"portable": 0, "packed": 0}
    for layer in model.modules():
        if isinstance(layer, bnb.nn.Linear4bit):
            packed = kernel == "packed" and cpu_has_it and packable(layer)
            # bitsandbytes reads this flag in every forward; False keeps dequantize + float matmul
            layer.support_avx512bf16_for_cpu = packed
            counts["packed" if packed else "portable"] += 1
    if kernel == "packed" and not cpu_has_it:
        log("cpu_4bit_kernel packed: this CPU has no AVX512-BF16, so every 4-bit layer runs the portable path")
    elif kernel == "packed" and counts["portable"]:
        log(f"cpu_4bit_kernel packed: {counts['portable']} of {sum(counts.values())} 4-bit layers are too narrow "
            "for the packed layout and run the portable path")
    return counts


def load_4bit(base: str | Path, q: QuantizationParams, device: str | None = None, cpu_kernel: str = "portable"):
    """Load the base model quantized with bitsandbytes (NF4 by default) on GPU if present, else CPU.

    ``device`` forces one ("cpu"). Under ``accelerate launch`` each process loads onto its own GPU
    (``LOCAL_RANK``); under FSDP no device is given, as in peft's FSDP-QLoRA guide: accelerate places
    and shards the layers itself (a per-rank device_map would put a whole copy on every GPU).
    ``cpu_kernel`` is the CPU inference path of the 4-bit layers (see ``CPU_KERNELS``); training, merge and
    the in-training evaluation keep the portable one, so checkpoints are chosen alike on every CPU.
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
    model = AutoModelForCausalLM.from_pretrained(
        name, revision=revision, quantization_config=quantization_config(q), device_map=device_map,
        dtype=getattr(torch, dtype),
    )
    use_cpu_kernel(model, cpu_kernel)
    return model


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
