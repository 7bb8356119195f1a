"""4-bit QLoRA fine-tuning with bitsandbytes, peft and trl's SFTTrainer.

    gabarito train --train data/processed/train.jsonl --validation data/processed/validation.jsonl \\
        --base models/base --out models/adapter --checkpoints models/checkpoints \\
        --live-dir metrics/train_live --metrics metrics/train.json

Sections: tokenize (loss on the answer only) / load the 4-bit base / LoRA / train / save the
adapter. Every knob comes from ``train`` in params.yaml under the library's own field names:
``train.quantization`` -> BitsAndBytesConfig, ``train.lora`` -> LoraConfig, ``train.sft`` -> SFTConfig.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import click

from gabarito import io
from gabarito.checkpoints import (COMPLETE, Pusher, Remote, last_complete_checkpoint, open_remote,  # noqa: F401
                                  read_marker, run_fingerprint, write_marker)
from gabarito.clikit import log, params_option, user_errors
from gabarito.io import InputError, scrub_secrets
from gabarito.params import LaunchParams, TrainParams, load_section

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


class Interrupted(Exception):
    """SIGINT, SIGTERM or SIGHUP arrived: a checkpoint was saved and training stopped cleanly."""


def checkpoint_world_size(ckpt: Path) -> int:
    """How many processes wrote ``ckpt``."""
    return (read_marker(ckpt) or {}).get("world_size", 1)


def world_size_mismatch(ckpt: Path | None, world_size: int) -> str | None:
    """Why ``ckpt`` cannot be resumed by ``world_size`` processes, or None when it can.

    Each rank saves its own RNG state and takes its own share of every batch, so a checkpoint of N
    processes resumed by M would restore the wrong RNG streams and skip the wrong number of examples.
    """
    if ckpt is None or checkpoint_world_size(ckpt) == world_size:
        return None
    saved = checkpoint_world_size(ckpt)
    return (f"{ckpt} was saved by {saved} training process(es), and this run has {world_size}. Set "
            f"train.launch.num_processes back to {saved} to resume it, or delete {ckpt.parent} to start over.")


def fingerprint_mismatch(ckpt: Path | None, fingerprint: str) -> str | None:
    """Why ``ckpt`` cannot be resumed by a run of other params or data, or None when it can."""
    saved = (read_marker(ckpt) or {}).get("fingerprint") if ckpt is not None else None
    if saved is None or saved == fingerprint:  # nothing to resume, or a marker from before fingerprints
        return None
    return (f"{ckpt} comes from a run with other train params, data or base model than this one, so "
            "resuming it would continue the old optimizer and schedule under the new settings. Put "
            f"params.yaml and the data back to resume it, or delete {ckpt.parent} (rm -rf {ckpt.parent}/*) "
            "to start over.")


# --- callbacks ------------------------------------------------------------------------------------
# Plain classes here, made TrainerCallbacks in _callbacks(): importing transformers takes seconds and
# prints bitsandbytes' notices, so this module imports it only when training starts (as it imports
# torch), not when `gabarito train --help` or a test imports the module. Each one implements only the
# events it handles; TrainerCallback supplies the others as no-ops.
class Checkpoints:
    """Marks a checkpoint complete (write_marker) once every rank has written its part, then hands it to
    the ``pusher`` (train.push_checkpoints), which pushes it in the background."""

    def __init__(self, fingerprint: str | None, pusher: Pusher | None = None):
        self.fingerprint, self.pusher = fingerprint, pusher

    def on_save(self, args, state, control, **kwargs):
        import torch

        if args.world_size > 1:  # every rank has written its part (its RNG state, its FSDP shard) first
            torch.distributed.barrier()
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and ckpt.is_dir():
            write_marker(ckpt, state.global_step, args.world_size, self.fingerprint)
            if self.pusher is not None:
                self.pusher.submit(ckpt, state.global_step)


class Signals:
    """SIGINT/SIGTERM/SIGHUP (Ctrl-C, a shutdown, a dropped SSH session) save a checkpoint and stop.

    SIGINT too: Python's default turns it into a KeyboardInterrupt wherever the step is, which kills
    the run with no checkpoint since the last ``save_steps`` one (up to 19 steps lost with the shipped
    params). A second Ctrl-C, for someone who will not wait for the checkpoint, still interrupts at once
    (the marker keeps a checkpoint cut short from being resumed). ``restore()`` puts the previous
    handlers back once training is over.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self):
        self.received = None
        self.previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}

    def _handle(self, signum, frame):
        if signum == signal.SIGINT and self.received == "SIGINT":
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def agree(self, args) -> None:
        """With several processes, a signal any rank got stops every rank at the same step: a rank that
        stopped alone would leave the others waiting forever in the next gradient all-reduce (one
        8-byte all-reduce per step, nothing next to a training step)."""
        import torch

        if args.world_size == 1:
            return
        signum = torch.tensor([signal.Signals[self.received].value if self.received else 0], device=args.device)
        torch.distributed.all_reduce(signum, op=torch.distributed.ReduceOp.MAX)
        if signum.item():
            self.received = signal.Signals(int(signum.item())).name

    def on_step_end(self, args, state, control, **kwargs):
        self.agree(args)
        if self.received:
            control.should_save = True
            control.should_training_stop = True


class Throughput:
    """Adds tokens/s and peak memory to every log line, and prints them: they are wall-clock
    figures, so they stay out of the DVC outputs (see WALL_CLOCK)."""

    def __init__(self):
        self.last = (time.monotonic(), 0)

    def on_log(self, args, state, control, logs=None, **kwargs):
        import resource

        import torch

        if logs is None or "num_tokens" not in logs:
            return
        now, tokens = time.monotonic(), float(logs["num_tokens"])
        elapsed = now - self.last[0]
        if elapsed > 0 and tokens > self.last[1]:
            logs["tokens_per_second"] = round((tokens - self.last[1]) / elapsed, 2)
        self.last = (now, tokens)
        if torch.cuda.is_available():
            logs["peak_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        else:  # ru_maxrss is in KiB on Linux
            logs["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        # the Trainer appended a copy of this log line to state.log_history before calling us: add the
        # figures there too, so checkpoints keep them and a resumed run's DVCLive history has them
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update({k: logs[k] for k in ("tokens_per_second", "peak_memory_mb")
                                          if k in logs})
        if state.is_world_process_zero and "loss" in logs:
            speed = f", {logs['tokens_per_second']:,.0f} tokens/s" if "tokens_per_second" in logs else ""
            log(f"train: step {state.global_step}/{state.max_steps}, loss {logs['loss']:.4f}{speed}, "
                f"peak memory {logs['peak_memory_mb']:,.0f} MB")


class LogBeforeSave:
    """Log the running loss at every checkpoint (and at the last step). The Trainer keeps the loss of
    steps since the last log line in memory only; without this, a run resumed from a checkpoint
    between two log lines would have lost those steps' loss, and its train_loss could not be the
    mean over every step. Runs after Signals, which may ask for a save."""

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_save or control.should_training_stop:
            control.should_log = True


class LiveHistory:
    """DVCLive history with step = the Trainer's global step, whole across a resume.

    transformers' own DVCLiveCallback counts log events as steps (a train line and an eval line at
    the same step are two), and a resumed run would start its history over, or append to one that
    holds steps past the checkpoint that are trained again. Here the live folder starts empty
    and, on a resume, first replays the history the checkpoint carries (state.log_history).
    """

    def __init__(self, live):
        self.live = live
        self.resumed_from = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.resumed_from = state.global_step
        if state.is_world_process_zero:
            self.live.log_params(args.to_dict())
            for entry in state.log_history:
                self.write(entry)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or logs is None:
            return
        entry = {**logs, "step": state.global_step}
        if "train_loss" in entry:  # the Trainer's end-of-run summary: its mean covers this process only
            entry["train_loss"] = run_mean_loss(state.log_history, self.resumed_from, state.global_step,
                                                entry["train_loss"])
        self.write(entry)

    def write(self, entry: dict) -> None:
        from dvclive.plots import Metric
        from dvclive.utils import standardize_metric_name

        self.live.step = int(entry["step"])
        for key, value in entry.items():
            if key != "step" and not is_wall_clock(key) and Metric.could_log(value):
                self.live.log_metric(standardize_metric_name(key, "dvclive.huggingface"), value)
        self.live.make_summary()


def _callbacks(p: TrainParams, live, fingerprint: str | None = None, pusher: Pusher | None = None):
    """Markers on complete checkpoints (pushed by ``pusher``), clean stops on signals, throughput and
    memory in the logs."""
    from transformers import EarlyStoppingCallback, TrainerCallback

    def hooked(cls, *args):  # cls with TrainerCallback's no-op events for those it does not handle
        return type(cls.__name__, (cls, TrainerCallback), {})(*args)

    signals = hooked(Signals)
    callbacks = [hooked(Checkpoints, fingerprint, pusher), signals, hooked(LogBeforeSave), hooked(Throughput)]
    if p.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=p.early_stopping_patience))
    if live is not None:
        callbacks.append(hooked(LiveHistory, live))  # after Throughput, which adds to the logs it reads
    return callbacks, signals


# Figures that measure the machine, not the run: seconds, rates and peak memory differ from one run
# to the next. metrics/train_live is a DVC output (dvc.lock records its hash), so they stay out of it
# and out of metrics/train.json, and two runs on one machine give the same dvc.lock; the stage prints
# them as it goes, and benchmarks/ measure speed properly.
WALL_CLOCK = ("runtime", "per_second", "peak_memory")


def is_wall_clock(key: str) -> bool:
    return any(part in key for part in WALL_CLOCK)


def run_mean_loss(log_history: list[dict], resumed_from: int, steps: int, this_run_mean: float) -> float:
    """The mean training loss over every step of a run, also of one resumed from a checkpoint.

    The Trainer's own ``training_loss`` averages only the steps of the current process: after a resume
    at step 6 of 12 it is the mean of steps 7-12, and 0.0 after a resume at the last step. The steps
    before ``resumed_from`` are in the checkpoint's log history: each train line's ``loss`` is the mean
    over the steps since the line before. Steps whose loss no line covers (a checkpoint written by an
    older version between two log lines) are left out of the mean rather than counted as zero.
    """
    total, covered = 0.0, 0
    for entry in log_history:
        if "loss" in entry and entry.get("step", 0) <= resumed_from:
            total += entry["loss"] * (entry["step"] - covered)
            covered = entry["step"]
    n = covered + steps - resumed_from
    return (total + this_run_mean * (steps - resumed_from)) / n if n else 0.0


def _from_main(ranks, value):
    """``value`` as rank 0 computed it, on every rank (``value`` itself in a single process)."""
    if ranks.num_processes == 1:
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value])[0]


def clear_checkpoints(checkpoint_dir: str | Path) -> None:
    """Empty the checkpoint folder once the adapter is safely in place: the next run starts fresh.
    (Not inside train(): a crash between emptying it and renaming the adapter into place would lose both.)"""
    for leftover in Path(checkpoint_dir).iterdir():  # trl also leaves a model card there
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()


def _resume_point(stack: contextlib.ExitStack, checkpoint_dir: str | Path | None, ranks,
                  fingerprint: str) -> tuple[Path, Path | None]:
    """(the folder checkpoints go to, the checkpoint to resume from or None), the same on every rank.

    Without ``checkpoint_dir`` the folder is a temporary one that ``stack`` removes. InputError when
    the last complete checkpoint was saved by another number of processes or by another run.
    """
    main = ranks.is_main_process
    if checkpoint_dir:
        work = Path(checkpoint_dir)
    else:  # every rank must save to and reload from the same folder: rank 0's
        work = _from_main(ranks, Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="gabarito-train-"))) if main else None)
    resume, mismatch = None, None
    if main:  # rank 0 alone looks, and removes half-written checkpoints; every rank resumes from its pick
        work.mkdir(parents=True, exist_ok=True)
        resume = last_complete_checkpoint(work)
        mismatch = (world_size_mismatch(resume, ranks.num_processes)
                    or fingerprint_mismatch(resume, fingerprint))
    resume, mismatch = _from_main(ranks, (resume, mismatch))  # every rank stops, or none
    if mismatch:
        raise InputError(mismatch)
    return work, resume


def _push_remote(p: TrainParams, fingerprint: str) -> Remote | None:
    """The run's folder on the remote of train.push_checkpoints (None: off), opened and written to once
    (the run's params in run.json), so a wrong URL or missing credentials stop the run before it trains."""
    if p.push_checkpoints.remote is None:
        return None
    try:
        remote = open_remote(p.push_checkpoints.remote, fingerprint)
        remote.fs.makedirs(remote.folder, exist_ok=True)
        remote.fs.pipe_file(remote.path("run.json"), json.dumps(
            {"fingerprint": fingerprint, "train": p.model_dump()}, indent=2, sort_keys=True, default=str).encode())
    except Exception as exc:  # noqa: BLE001 -- ValueError from open_remote, or the remote's own error
        raise InputError(f"train.push_checkpoints: cannot write to {p.push_checkpoints.remote!r}: "
                         f"{type(exc).__name__}: {scrub_secrets(str(exc))[:300]}. Check the remote and its "
                         "credentials (`dvc push` must work; docs/remotes.md), or set it to null.") from None
    log(f"train: checkpoints are pushed to {remote.name} as they are written "
        f"(the newest {p.push_checkpoints.keep} kept)")
    return remote


def _start_pusher(stack: contextlib.ExitStack, remote: Remote | None, p: TrainParams, work: Path,
                  live_dir: str | Path | None) -> Pusher | None:
    """The background pusher, closed (its last checkpoint pushed) when ``stack`` closes, also after a signal."""
    if remote is None:
        return None
    pusher = Pusher(remote, p.push_checkpoints.keep, work / ".push", Path(live_dir) if live_dir else None)
    stack.callback(pusher.close)
    return pusher


def _sft_config(p: TrainParams, work: Path, evaluating: bool):
    """``train.sft`` as trl's SFTConfig, with what this stage fixes: checkpoints in ``work``, no hub or
    tracker reports (DVCLive is a callback), evaluation only when there is a validation set."""
    import torch
    from trl import SFTConfig

    sft = p.sft.model_dump()
    if not evaluating:  # nothing to pick a best checkpoint by
        sft.update(load_best_model_at_end=False)
    return SFTConfig(
        output_dir=str(work), report_to="none", use_cpu=not torch.cuda.is_available(),
        eval_strategy="steps" if evaluating else "no", save_strategy="steps",
        data_seed=p.sft.seed, dataloader_num_workers=0, disable_tqdm=False,
        # a resumed run is the run: the early-stopping counter (evaluations without a gain so far) is in
        # every checkpoint's trainer_state.json, but transformers reads it back only with this on; off,
        # a run resumed 2 evaluations into a plateau waits `early_stopping_patience` more and trains
        # (and picks its best checkpoint) past the step where the uninterrupted run stopped. It restores
        # TrainerControl too, whose flags the Trainer resets before they are read
        restore_callback_states_from_checkpoint=True,
        # DDP: every LoRA layer takes part in every forward, and the search for unused ones clashes
        # with reentrant gradient checkpointing; ignored in a single process
        ddp_find_unused_parameters=False, **sft,
    )


def _run(trainer, args, resume: Path | None, signals, work: Path) -> tuple[int, object]:
    """(trainable parameters, the Trainer's TrainOutput) of a run from ``resume`` or from the start;
    Interrupted when a signal stopped it (a checkpoint is saved by then)."""
    # trl stores the LoRA weights of a quantized model in bf16, but a resumed run reloads them
    # from the checkpoint in fp32: keep them fp32 from the start so both paths train alike
    # (they are ~0.1% of the parameters; the 4-bit base is what saves the memory). Under FSDP
    # each LoRA layer is a unit of its own (peft's wrap policy), so fp32 mixes with nothing
    for param in trainer.model.parameters():
        if param.requires_grad:
            param.data = param.data.float()
    trainable = sum(t.numel() for t in trainer.model.parameters() if t.requires_grad)  # before FSDP shards them
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    signals.agree(args)  # a signal after the last step: every rank stops, or none
    if signals.received:
        raise Interrupted(f"{signals.received} at step {trainer.state.global_step}: checkpoint saved in "
                          f"{work}; run `dvc repro` again to resume.")
    return trainable, result


def _save_adapter(trainer, ranks, out_dir: str | Path | None, fsdp: bool) -> None:
    """Rank 0 writes the trained adapter (the best checkpoint when load_best_model_at_end) to ``out_dir``."""
    adapter, gathered = trainer.model, {}
    if fsdp:  # gather the sharded LoRA weights onto rank 0 (a collective: every rank takes part)
        gathered = {"state_dict": trainer.accelerator.get_state_dict(trainer.model)}
        adapter = trainer.accelerator.unwrap_model(trainer.model)
    ranks.wait_for_everyone()  # every rank has reloaded the best checkpoint before rank 0 removes it
    if ranks.is_main_process:
        adapter.save_pretrained(str(out_dir), **gathered)
        _sort_target_modules(Path(out_dir) / "adapter_config.json")
        # the checkpoints stay until the caller has the adapter in place: clear_checkpoints()


def _metrics(state, training_loss: float, resume: Path | None, examples: list[dict], eval_examples: list[dict],
             skipped: int, trainable: int, world_size: int) -> dict:
    """metrics/train.json from the Trainer's final ``state``: no wall-clock figure, so the same run gives
    the same bytes."""
    history = [h for h in state.log_history if "loss" in h]
    evals = [h["eval_loss"] for h in state.log_history if "eval_loss" in h]
    # None when no step was logged (logging_steps > steps): JSON has no NaN
    first, last = (round(history[0]["loss"], 6), round(history[-1]["loss"], 6)) if history else (None, None)
    planned = state.max_steps
    resumed_from = int(resume.name.split("-")[-1]) if resume else 0
    metrics = {
        "examples": len(examples),
        "eval_examples": len(eval_examples),
        "skipped_too_long": skipped,
        "steps": state.global_step,
        "stopped_early": state.global_step < planned,
        "resumed_from_step": resumed_from,
        "train_loss": round(run_mean_loss(state.log_history, resumed_from, state.global_step, training_loss), 6),
        "first_logged_loss": first,
        "last_logged_loss": last,
        "best_eval_loss": round(min(evals), 6) if evals else None,
        "trainable_params": trainable,
        "answer_tokens": sum(sum(1 for t in ex["labels"] if t != IGNORE) for ex in examples),
    }
    if world_size > 1:  # only then, so a single-process run's metrics keep their bytes (and DVC hash)
        metrics["world_size"] = world_size
    return metrics


def train(records: list[dict], base: str | Path, out_dir: str | Path | None, p: TrainParams, *,
          eval_records: list[dict] | None = None, checkpoint_dir: str | Path | None = None,
          live_dir: str | Path | None = None) -> dict:
    """Train a LoRA adapter on a 4-bit base; save it to ``out_dir``; return metrics.

    With ``checkpoint_dir`` (a ``persist: true`` output), checkpoints survive a crash and the next
    run resumes from the last complete one, optimizer, scheduler, RNG and data position included;
    the caller removes them (clear_checkpoints) once the adapter is in place. With ``eval_records``, the validation loss is
    computed every ``eval_steps``, training stops early after ``early_stopping_patience``
    evaluations without improvement, and the best checkpoint becomes the adapter. ``live_dir``
    receives DVCLive logs (loss, eval loss, learning rate, tokens/s, peak memory).

    Under ``accelerate launch`` (``train.launch``) every process runs this function on its share of
    each batch; rank 0 alone writes files (adapter, checkpoint markers, DVCLive logs), so the other
    ranks may pass ``out_dir=None``. With FSDP (an accelerate config with ``distributed_type: FSDP``)
    the 4-bit base is sharded across the GPUs.
    """
    import datetime

    import torch
    from accelerate import PartialState
    from datasets import Dataset
    from peft import LoraConfig, prepare_model_for_kbit_training
    from trl import SFTTrainer

    from gabarito.modeling import load_4bit, load_tokenizer, seed_everything

    seed_everything(p.sft.seed, p.torch_threads)
    # one process, or one of N started by `accelerate launch` (gloo on CPU, nccl on GPUs); the Trainer
    # later finds this same state. 30 min is the Trainer's own ddp_timeout
    ranks = PartialState(cpu=not torch.cuda.is_available(), timeout=datetime.timedelta(minutes=30))
    main = ranks.is_main_process
    fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"  # set by accelerate launch
    if fsdp and p.quantization.bnb_4bit_quant_storage == "uint8":
        raise InputError("FSDP shards only float tensors: set train.quantization.bnb_4bit_quant_storage to "
                         "the compute dtype (bfloat16), e.g. `dvc exp run -S train.quantization."
                         "bnb_4bit_quant_storage=bfloat16`.")

    # --- data -----------------------------------------------------------------------------------
    tokenizer = load_tokenizer(base)
    examples, skipped = tokenize_dataset(tokenizer, records, p.sft.max_length)
    if not examples:
        raise InputError(f"no training example fits train.sft.max_length={p.sft.max_length}; raise it.")
    dataset = Dataset.from_list(examples)
    eval_examples = tokenize_dataset(tokenizer, eval_records or [], p.sft.max_length)[0]
    eval_dataset = Dataset.from_list(eval_examples) if eval_examples else None
    fingerprint = run_fingerprint(p, records, eval_records, base)
    remote = _push_remote(p, fingerprint) if main else None  # before the model: a bad remote fails in seconds

    # --- model ----------------------------------------------------------------------------------
    model = load_4bit(base, p.quantization)
    # not under FSDP: it upcasts norms and embeddings to fp32, while FSDP flattens each decoder layer
    # (bf16-stored 4-bit weights and norms) into one tensor of one dtype; the Trainer turns on
    # gradient checkpointing itself
    if not fsdp:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=p.sft.activation_checkpointing)
    lora = LoraConfig(**p.lora.model_dump())

    # --- train ----------------------------------------------------------------------------------
    with contextlib.ExitStack() as stack:
        work, resume = _resume_point(stack, checkpoint_dir, ranks, fingerprint)
        evaluating = eval_dataset is not None
        args = _sft_config(p, work, evaluating)
        live = None
        if live_dir is not None and main:
            from dvclive import Live

            # always a fresh folder: on a resume, LiveHistory rewrites the history up to the checkpoint
            live = stack.enter_context(Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=None, report=None))
        callbacks, signals = _callbacks(p if evaluating else p.model_copy(update={"early_stopping_patience": None}),
                                        live, fingerprint, _start_pusher(stack, remote, p, work, live_dir))
        stack.callback(signals.restore)  # Ctrl-C in the caller (a test, a notebook) interrupts again
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, eval_dataset=eval_dataset,
                             processing_class=tokenizer, peft_config=lora, callbacks=callbacks)
        trainable, result = _run(trainer, args, resume, signals, work)

        # --- save -------------------------------------------------------------------------------
        _save_adapter(trainer, ranks, out_dir, fsdp)
    return _metrics(trainer.state, result.training_loss, resume, examples, eval_examples, skipped, trainable,
                    ranks.num_processes)


# --- several processes (train.launch) -------------------------------------------------------------
def is_main_process() -> bool:
    """True in a single process and in rank 0 under ``accelerate launch``, before torch.distributed starts."""
    return int(os.environ.get("RANK", "0")) == 0


LAUNCHED = "GABARITO_LAUNCHED"  # set in the environment of the processes `gabarito train` launches


def launched() -> bool:
    """True inside a process that `gabarito train` started through ``accelerate launch``.

    Not LOCAL_RANK: accelerate's plain launcher (a config with ``distributed_type: NO`` or a CPU-only
    one) does not set it, and the process would launch itself again, forever.
    """
    return os.environ.get(LAUNCHED) == "1"


def accelerate_command(launch: LaunchParams, cli_args: list[str]) -> list[str]:
    """``accelerate launch`` running ``python -m gabarito.cli CLI_ARGS`` in ``launch.num_processes`` processes."""
    import sys

    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(launch.num_processes)]
    if launch.config_file:
        cmd += ["--config_file", launch.config_file]
    else:  # DDP, also on a machine without GPUs (torchrun starts the processes, gloo connects them); port 0:
        # a free one, so two runs on one machine do not collide
        cmd += ["--multi_gpu", "--main_process_port", "0"]
    return cmd + ["-m", "gabarito.cli", *cli_args]


def launch_mismatch(launch: LaunchParams, world_size: int) -> str | None:
    """Why the processes accelerate started do not match ``train.launch``, or None when they do."""
    if world_size == launch.num_processes:
        return None
    return (f"accelerate started {world_size} process(es), not train.launch.num_processes={launch.num_processes}: "
            f"check train.launch.config_file ({launch.config_file}); its distributed_type must be MULTI_GPU, "
            "FSDP or MULTI_CPU.")


def summary(result: dict, out: str) -> str:
    """The log line of a finished run."""
    resumed = f" (resumed from step {result['resumed_from_step']})" if result["resumed_from_step"] else ""
    return (f"train: {result['steps']} steps{resumed}, loss {result['first_logged_loss']} -> "
            f"{result['last_logged_loss']}, best eval loss {result['best_eval_loss']} -> {out}")


# --- command: gabarito train ---

@click.command("train")
@click.option("--train", "train_path", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--validation", type=click.Path(dir_okay=False, exists=True), required=True,
              help="evaluated every train.sft.eval_steps; picks the best checkpoint")
@click.option("--base", type=click.Path(file_okay=False, exists=True), required=True)
@click.option("--out", type=click.Path(file_okay=False), required=True)
@click.option("--checkpoints", type=click.Path(file_okay=False), required=True,
              help="checkpoint folder kept across crashes (a persist: true output)")
@click.option("--live-dir", type=click.Path(file_okay=False), required=True, help="DVCLive logs")
@click.option("--metrics", type=click.Path(dir_okay=False), required=True)
@params_option
@user_errors
def command(train_path, validation, base, out, checkpoints, live_dir, metrics, params_path):
    """4-bit QLoRA fine-tuning (bitsandbytes NF4 + peft LoRA + trl SFTTrainer).

    After a crash, a power cut or `kill`, run it again (`dvc repro`): it resumes from the last
    complete checkpoint. Ctrl-C (SIGINT), SIGTERM and SIGHUP save a checkpoint and stop cleanly
    (a second Ctrl-C stops at once).

    With train.launch.num_processes > 1 it re-runs itself under `accelerate launch` (one process
    per GPU; DDP, or FSDP with train.launch.config_file=configs/accelerate/fsdp_qlora.yaml).

    \b
    Examples:
      dvc repro train
      dvc exp run -S train.lora.r=32     # an experiment with another LoRA rank
      dvc exp run -S train.launch.num_processes=2   # DDP on 2 GPUs
      dvc plots show metrics/train_live/plots/metrics   # loss, eval loss, lr, grad norm
    """
    import shlex
    import sys

    p = load_section("train", params_path)
    if p.launch.num_processes > 1 and not launched():
        if p.launch.config_file and not Path(p.launch.config_file).is_file():
            raise InputError(f"train.launch.config_file: {p.launch.config_file} not found. Give a file from "
                             "configs/accelerate/, or null for plain DDP.")
        cmd = accelerate_command(p.launch, [
            "train", "--train", train_path, "--validation", validation, "--base", base, "--out", out,
            "--checkpoints", checkpoints, "--live-dir", live_dir, "--metrics", metrics, "--params", params_path])
        log(f"train: {p.launch.num_processes} processes: {shlex.join(cmd)}")
        sys.stdout.flush()
        sys.stderr.flush()
        # this process becomes the launcher, so a SIGTERM sent to it (dvc, systemd, kill) reaches every
        # rank through torchrun, which waits this long for the checkpoint before it sends SIGKILL
        os.execve(sys.executable, cmd, {"TORCH_ELASTIC_SHUTDOWN_TIMEOUT": "300", **os.environ, LAUNCHED: "1"})
    if launched():
        mismatch = launch_mismatch(p.launch, int(os.environ.get("WORLD_SIZE", "1")))
        if mismatch:
            raise InputError(mismatch)
    main = is_main_process()  # under accelerate launch, rank 0 alone writes the outputs
    try:
        if main:
            with io.atomic_path(out, directory=True) as tmp:
                result = train(io.read_jsonl(train_path), base, tmp, p, eval_records=io.read_jsonl(validation),
                               checkpoint_dir=checkpoints, live_dir=live_dir)
            clear_checkpoints(checkpoints)  # only now that the adapter is in place
        else:
            train(io.read_jsonl(train_path), base, None, p, eval_records=io.read_jsonl(validation),
                  checkpoint_dir=checkpoints)
            return
    except Interrupted as exc:
        if not main:
            sys.exit(1)  # rank 0 says why
        raise click.ClickException(f"training interrupted by {exc}") from None
    io.write_json(metrics, result)
    log(summary(result, out))
