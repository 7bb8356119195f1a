"""4-bit QLoRA fine-tuning with bitsandbytes, peft and trl's SFTTrainer.

    gabarito train --train data/processed/train.jsonl --base models/base --out models/adapter \\
        --metrics metrics/train.json

Sections: tokenize (loss on the answer only) / load the 4-bit base / LoRA / train / save the
adapter. Every knob comes from ``train`` in params.yaml under the library's own field names:
``train.quantization`` -> BitsAndBytesConfig, ``train.lora`` -> LoraConfig, ``train.sft`` -> SFTConfig.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from stages.io import InputError
from stages.params import TrainParams

IGNORE = -100  # label value the loss skips (transformers' convention)


def tokenize_example(tokenizer, prompt: str, completion: str) -> dict:
    """input_ids = prompt + completion; labels hide every prompt token so only the answer is learned.

    The two parts are tokenized separately, so the boundary can never drift into the answer.
    """
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    return {"input_ids": prompt_ids + completion_ids,
            "labels": [IGNORE] * len(prompt_ids) + completion_ids}


def tokenize_dataset(tokenizer, records: list[dict], max_length: int) -> tuple[list[dict], int]:
    """Tokenized examples and how many were skipped for exceeding ``max_length``.

    Long examples are skipped rather than truncated: cutting the end would cut the answer, and
    cutting the start would cut the instructions.
    """
    examples, skipped = [], 0
    for rec in records:
        ex = tokenize_example(tokenizer, rec["prompt"], rec["completion"])
        if len(ex["input_ids"]) > max_length:
            skipped += 1
            continue
        examples.append(ex)
    return examples, skipped


def _sort_target_modules(path: Path) -> None:
    """peft writes target_modules from a set, whose order changes with the interpreter's hash seed;
    sorting it keeps the adapter's bytes (and so its DVC hash) the same from run to run."""
    config = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def train(records: list[dict], base: str | Path, out_dir: str | Path, p: TrainParams) -> dict:
    """Train a LoRA adapter on a 4-bit base; save it to ``out_dir``; return metrics."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, prepare_model_for_kbit_training
    from trl import SFTConfig, SFTTrainer

    from stages.modeling import load_4bit, load_tokenizer, seed_everything

    seed_everything(p.sft.seed, p.torch_threads)

    # --- data -----------------------------------------------------------------------------------
    tokenizer = load_tokenizer(base)
    examples, skipped = tokenize_dataset(tokenizer, records, p.sft.max_length)
    if not examples:
        raise InputError(f"no training example fits train.sft.max_length={p.sft.max_length}; raise it.")
    dataset = Dataset.from_list(examples)

    # --- model ----------------------------------------------------------------------------------
    model = load_4bit(base, p.quantization)
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=p.sft.gradient_checkpointing)
    lora = LoraConfig(**p.lora.model_dump())

    # --- train ----------------------------------------------------------------------------------
    with tempfile.TemporaryDirectory(prefix="gabarito-train-") as work:
        args = SFTConfig(
            output_dir=work, report_to="none", save_strategy="no", use_cpu=not torch.cuda.is_available(),
            data_seed=p.sft.seed, dataloader_num_workers=0, disable_tqdm=False, **p.sft.model_dump(),
        )
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                             peft_config=lora)
        result = trainer.train()
        history = [h for h in trainer.state.log_history if "loss" in h]

    # --- save -----------------------------------------------------------------------------------
    trainer.model.save_pretrained(str(out_dir))
    _sort_target_modules(Path(out_dir) / "adapter_config.json")
    trainable = sum(t.numel() for t in trainer.model.parameters() if t.requires_grad)
    # None when no step was logged (logging_steps > steps): JSON has no NaN
    first, last = (round(history[0]["loss"], 6), round(history[-1]["loss"], 6)) if history else (None, None)
    return {
        "examples": len(examples),
        "skipped_too_long": skipped,
        "steps": trainer.state.global_step,
        "train_loss": round(result.training_loss, 6),
        "first_logged_loss": first,
        "last_logged_loss": last,
        "trainable_params": trainable,
        "answer_tokens": sum(sum(1 for t in ex["labels"] if t != IGNORE) for ex in examples),
    }
