"""QLoRA training memory, throughput and MFU at the thesis configuration, on a Mistral-7B-shaped model
with random weights built locally (nothing comes from the hub).

    python benchmarks/qlora_memory.py                         # CUDA: Mistral-7B shape, 16 x 512, 10 steps
    python benchmarks/qlora_memory.py --shape small           # CPU: a small shape in seconds (no rot)
    python benchmarks/qlora_memory.py --micro-batch 8 --steps 20 --peak-tflops 312

Zephyr-7B-beta, the thesis base, is a Mistral-7B-v0.1 fine-tune, so this is its shape exactly:
hidden 4096, MLP 14336, 32 layers, 32 query / 8 KV heads, vocabulary 32000 (N = 7.24 B parameters).
The LoRA, 4-bit and trainer settings are the thesis profile's ``train`` section (profiles/thesis.yaml
over the shipped params: r=16 on the six projections, NF4 + double quantization, bf16, gradient
checkpointing, paged_adamw_8bit, micro-batch 16 x 512 = 8,192 tokens), so the benchmark follows the
profile when it changes.

How the random 7B model is built: random bf16 weights are drawn directly on the GPU (14.5 GB; a
7B model in float32 never exists anywhere), saved to a temporary checkpoint, freed, and loaded back
through ``from_pretrained`` with a ``BitsAndBytesConfig``, the path ``gabarito.modeling.load_4bit``
takes. So the quantization, the layers bitsandbytes replaces and what stays in 16 bits (embeddings,
lm_head, norms) are exactly those of the real run. It costs ~30 GB of disk and RAM for a minute;
``--checkpoint DIR`` keeps the checkpoint to skip that on the next run.

Then the steps are trl's SFTTrainer's, set up as stages/train.py sets it up (prepare_model_for_kbit_training,
LoRA weights kept in float32, the profile's SFTConfig fields: bf16, gradient checkpointing, optim,
max_grad_norm), so trl's fused LM head, which never builds the (batch, length, vocabulary) logits,
is in the figures too. The data are random tokens, every position a label and every row max_length
tokens long (the worst case: no padding, the LM head projects every position). One optimizer step
per micro-batch (no gradient accumulation: it changes neither peak memory nor tokens/s much).
Prints N, tokens/step, tokens/s, peak memory (torch.cuda.max_memory_allocated; the process's peak
RSS on CPU) and model FLOPs utilization, MFU = 4 N tokens/s / peak FLOP/s: a LoRA step costs 2N
FLOPs per token forward and 2N backward (activation gradients only: the frozen base has no weight
gradients). Gradient checkpointing's recomputed forward (another 2N) and attention's own FLOPs (~2%
at 512 tokens) are work the hardware does but MFU does not credit, as in the PaLM paper.

Targets (CUDA, thesis shape): peak <= 16 GiB at 8,192 tokens per micro-batch, so the thesis run fits
a 24 GB card; MFU >= 25% on an H100/H200-class GPU.
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SHAPES = {
    # Mistral-7B-v0.1's config.json (the base of Zephyr-7B-beta)
    "mistral-7b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                       num_key_value_heads=8, vocab_size=32000, max_position_embeddings=32768,
                       rope_theta=10000.0, sliding_window=4096, rms_norm_eps=1e-5),
    # every dimension a multiple of 32 (bitsandbytes' CPU 4-bit layout); seconds on two CPU cores
    "small": dict(hidden_size=256, intermediate_size=768, num_hidden_layers=2, num_attention_heads=8,
                  num_key_value_heads=2, vocab_size=2000, max_position_embeddings=1024,
                  rope_theta=10000.0, sliding_window=None, rms_norm_eps=1e-5),
}

# dense bf16 tensor-core peak, TFLOP/s, from the vendor's data sheet (no sparsity)
PEAK_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.0, "H200": 989.0, "GH200": 989.0, "A100": 312.0}

TARGET_PEAK_GIB = 16.0
TARGET_MFU = 0.25


def thesis_train() -> dict:
    """The thesis profile's train section: profiles/thesis.yaml over the shipped params."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from gabarito.tools.profile import load_profile

    return load_profile("thesis", ROOT / "profiles")["train"]


def gpu_peak_tflops(name: str) -> float | None:
    for key, value in PEAK_TFLOPS.items():  # "H100 PCIe" before "H100"
        if key in name:
            return value
    return None


def model_flops_params(config) -> int:
    """N for MFU: every weight a token is multiplied by; the input embedding is a lookup, not a matmul."""
    import torch
    from transformers import MistralForCausalLM

    with torch.device("meta"):
        model = MistralForCausalLM(config)
    return sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()


def build_checkpoint(config, folder: Path, device: str) -> None:
    """Random bf16 weights drawn on ``device``, saved as a safetensors checkpoint in ``folder``.

    A checkpoint already there is reused when it has this shape. A build cut short (a time limit, a
    full disk) leaves only ``folder.partial``, never a ``folder`` with some of its weights.
    """
    import shutil

    import torch
    from transformers import MistralConfig, MistralForCausalLM

    shape_keys = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                  "num_key_value_heads", "vocab_size")
    if (folder / "config.json").exists():
        saved = MistralConfig.from_pretrained(str(folder))
        if any(getattr(saved, k) != getattr(config, k) for k in shape_keys):
            raise SystemExit(f"{folder} holds a checkpoint of another shape; give another --checkpoint or remove it")
        return
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    torch.manual_seed(0)
    with torch.device(device):
        model = MistralForCausalLM._from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(str(partial))
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    partial.rename(folder)


def random_tokenizer(vocab: int):
    """A word-level tokenizer over the random vocabulary: SFTTrainer wants one for padding and EOS."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab)}, unk_token="t0"))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="t0", pad_token="t0", eos_token="t1")


def load_qlora(folder: Path, train: dict, device: str):
    """The base as gabarito.modeling.load_4bit loads it, with LoRA as stages/train.py and SFTTrainer add it."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quant = train["quantization"]
    model = AutoModelForCausalLM.from_pretrained(
        str(folder), quantization_config=BitsAndBytesConfig(**quant), device_map={"": device},
        dtype=getattr(torch, quant["bnb_4bit_compute_dtype"]))
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=train["sft"]["activation_checkpointing"])
    # what SFTTrainer does with peft_config, done here so that a retry after out-of-memory reuses it
    model = get_peft_model(model, LoraConfig(**train["lora"]))
    for param in model.parameters():  # stages/train.py keeps the LoRA weights in float32
        if param.requires_grad:
            param.data = param.data.float()
    return model


def train_steps(model, tokenizer, train: dict, *, micro_batch: int, max_length: int, warmup: int, steps: int,
                optim: str, use_cpu: bool, workdir: str) -> tuple[float, list[float]]:
    """(seconds per timed step, losses of every step): SFTTrainer on random full-length rows."""
    import torch
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    cuda = not use_cpu

    class Clock(TrainerCallback):
        """Times the steps after the warm-up ones, which pay for allocation and kernel selection."""

        start = stop = 0.0

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step in (warmup, warmup + steps):
                if cuda:
                    torch.cuda.synchronize()
                if state.global_step == warmup:
                    self.start = time.perf_counter()
                else:
                    self.stop = time.perf_counter()

    gen = torch.Generator().manual_seed(0)
    rows = torch.randint(0, tokenizer.vocab_size, ((warmup + steps) * micro_batch, max_length), generator=gen)
    dataset = Dataset.from_dict({"input_ids": rows.tolist()})
    sft = train["sft"]
    args = SFTConfig(
        output_dir=workdir, report_to="none", use_cpu=use_cpu, max_steps=warmup + steps,
        per_device_train_batch_size=micro_batch, gradient_accumulation_steps=1, max_length=max_length,
        optim=optim, learning_rate=sft["learning_rate"], weight_decay=sft["weight_decay"],
        max_grad_norm=sft["max_grad_norm"], lr_scheduler_type="constant", warmup_steps=0,
        activation_checkpointing=sft["activation_checkpointing"], bf16=sft["bf16"], fp16=sft["fp16"],
        logging_steps=1, eval_strategy="no", save_strategy="no", dataloader_num_workers=0, disable_tqdm=True,
        seed=sft["seed"],
    )
    clock = Clock()
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, callbacks=[clock])
    trainer.remove_callback(PrinterCallback)  # the figures are printed at the end, not a dict per step
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return (clock.stop - clock.start) / steps, losses


def matmul_tflops(device: str) -> float:
    """What a large bf16 matmul reaches on this GPU: the practical ceiling, for context."""
    import torch

    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    return 2 * 8192**3 * 10 / (time.perf_counter() - start) / 1e12


def human(n: float) -> str:
    return f"{n / 1e9:.3f} B" if n >= 1e9 else f"{n / 1e6:.2f} M"


def quiet_libraries() -> None:
    """Progress bars and deprecation notices of the libraries would bury the figures."""
    import warnings

    import datasets
    import transformers

    warnings.filterwarnings("ignore", category=FutureWarning)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    datasets.disable_progress_bars()


def parse_args(argv: list[str] | None, sft: dict, cuda: bool) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="mistral-7b" if cuda else "small")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 10 on CUDA, 3 on CPU)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--micro-batch", type=int, default=None,
                    help=f"rows per step (default: the thesis profile's {sft['per_device_train_batch_size']} on "
                         "CUDA, halved on out-of-memory; 2 on CPU)")
    ap.add_argument("--max-length", type=int, default=None,
                    help=f"tokens per row (default: the thesis profile's {sft['max_length']} on CUDA; 128 on CPU)")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="the device's dense bf16 peak, the MFU denominator (default: known from the GPU's name, "
                         "e.g. H100/H200 SXM 989; none on CPU)")
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="keep the random checkpoint here and reuse it next time (default: a temporary folder)")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    return ap.parse_args(argv)


def largest_fit(model, vocab: int, train: dict, *, micro_batch: int, cuda: bool,
                **kwargs) -> tuple[float, list[float], int, list[str]]:
    """train_steps() at the largest micro-batch that fits, from ``micro_batch`` down by halves:
    (seconds per step, losses, the micro-batch used, a note per one that ran out of memory)."""
    import torch

    notes = []
    while True:
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        try:
            seconds, losses = train_steps(model, random_tokenizer(vocab), train, micro_batch=micro_batch,
                                          use_cpu=not cuda, **kwargs)
            return seconds, losses, micro_batch, notes
        except torch.OutOfMemoryError:
            if micro_batch == 1:
                raise
            notes.append(f"micro-batch {micro_batch} ran out of memory")
            model.zero_grad(set_to_none=True)
            micro_batch //= 2


def print_report(args: argparse.Namespace, train: dict, r: dict) -> None:
    """The figures of main()'s run ``r``."""
    gib = 2**30
    cuda, n, shape, sft, lora = r["cuda"], r["n"], r["shape"], train["sft"], train["lora"]
    tokens, tokens_per_s, trainable = r["tokens"], r["tokens_per_s"], r["trainable"]
    print(f"QLoRA benchmark: {args.shape} shape on {r['name']}" + ("" if cuda else f" ({args.threads} threads)"))
    print(f"  model          hidden {shape['hidden_size']}, MLP {shape['intermediate_size']}, "
          f"{shape['num_hidden_layers']} layers, {shape['num_attention_heads']}/{shape['num_key_value_heads']} "
          f"heads, vocab {shape['vocab_size']}; random weights, built and loaded in 4-bit in {r['built']:.0f} s")
    print(f"  parameters N   {human(n)} (input embedding excluded); 4N = {4 * n / 1e9:.3g} GFLOP per token")
    print(f"  LoRA           r={lora['r']} alpha={lora['lora_alpha']} dropout={lora['lora_dropout']} on "
          f"{','.join(lora['target_modules'])}: {human(trainable)} trainable ({trainable / n:.2%} of N)")
    print(f"  quantization   {train['quantization']['bnb_4bit_quant_type']}, double quant "
          f"{train['quantization']['bnb_4bit_use_double_quant']}, compute "
          f"{train['quantization']['bnb_4bit_compute_dtype']}; optimizer {r['optim']}; gradient checkpointing "
          f"{sft['activation_checkpointing']}")
    for note in r["notes"]:
        print(f"  note           {note}")
    print(f"  tokens/step    {r['micro_batch']} x {r['max_length']} = {tokens:,}")
    print(f"  steps          {args.warmup} warm-up + {r['steps']} timed: {r['seconds']:.3f} s/step; "
          f"loss {r['losses'][0]:.3f} -> {r['losses'][-1]:.3f}")
    print(f"  throughput     {tokens_per_s:,.0f} tokens/s")
    if cuda:
        print(f"  peak memory    {r['peak'] / gib:.2f} GiB allocated (max_memory_allocated), "
              f"{r['reserved'] / gib:.2f} GiB reserved; host peak RSS {r['rss'] / gib:.1f} GiB")
    else:
        print(f"  peak memory    {r['rss'] / 2**20:.0f} MiB peak RSS of the process (CPU)")
    peak_tflops = r["peak_tflops"]
    mfu = 4 * n * tokens_per_s / (peak_tflops * 1e12) if peak_tflops else None
    if mfu is not None:
        print(f"  MFU            {mfu:.1%} of {peak_tflops:.0f} TFLOP/s "
              f"({4 * n * tokens_per_s / 1e12:.1f} model TFLOP/s)")
    else:
        print("  MFU            n/a (no known peak for this device: give --peak-tflops)")
    if cuda:
        matmul = matmul_tflops(r["device"])
        print(f"  matmul peak    {matmul:.0f} TFLOP/s measured (bf16 8192^3); MFU against it "
              f"{4 * n * tokens_per_s / (matmul * 1e12):.1%}")
        if args.shape == "mistral-7b":
            at = "" if tokens == 8192 else f" (measured at {tokens:,} tokens, not 8,192)"
            print(f"  target memory  peak <= {TARGET_PEAK_GIB:.0f} GiB at 8,192 tokens/micro-batch{at}: "
                  f"{'PASS' if r['peak'] <= TARGET_PEAK_GIB * gib and tokens == 8192 else 'FAIL'}")
            print(f"  target MFU     >= {TARGET_MFU:.0%} on an H100/H200-class GPU: "
                  + ("n/a" if mfu is None else "PASS" if mfu >= TARGET_MFU else "FAIL"))


def main(argv: list[str] | None = None) -> int:
    import torch

    quiet_libraries()
    train = thesis_train()
    sft = train["sft"]
    cuda = torch.cuda.is_available()
    args = parse_args(argv, sft, cuda)

    torch.set_num_threads(args.threads)
    device = f"cuda:{torch.cuda.current_device()}" if cuda else "cpu"
    steps = args.steps or (10 if cuda else 3)
    micro_batch = args.micro_batch or (sft["per_device_train_batch_size"] if cuda else 2)
    max_length = args.max_length or (sft["max_length"] if cuda else 128)
    optim = sft["optim"] if cuda else "adamw_torch"  # paged 8-bit states page to CPU RAM: CUDA only
    shape = dict(SHAPES[args.shape])
    from transformers import MistralConfig

    config = MistralConfig(**shape, tie_word_embeddings=False)
    n = model_flops_params(config)
    name = torch.cuda.get_device_name() if cuda else "CPU"
    peak_tflops = args.peak_tflops or (gpu_peak_tflops(name) if cuda else None)

    # --- build the random checkpoint and load it in 4-bit ---------------------------------------
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qlora-bench-") as tmp:
        folder = args.checkpoint or Path(tmp) / "model"
        build_checkpoint(config, folder, device)
        model = load_qlora(folder, train, device)
        built = time.perf_counter() - started
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

        # --- train: the largest micro-batch that fits, from the asked one down ------------------
        seconds, losses, micro_batch, notes = largest_fit(
            model, config.vocab_size, train, micro_batch=micro_batch, cuda=cuda, max_length=max_length,
            warmup=args.warmup, steps=steps, optim=optim, workdir=tmp)
    tokens = micro_batch * max_length
    peak, reserved = (torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved()) if cuda else (None, None)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux

    # --- report ---------------------------------------------------------------------------------
    print_report(args, train, dict(
        cuda=cuda, name=name, device=device, shape=shape, built=built, n=n, trainable=trainable, optim=optim,
        notes=notes, micro_batch=micro_batch, max_length=max_length, steps=steps, seconds=seconds, losses=losses,
        tokens=tokens, tokens_per_s=tokens / seconds, peak=peak, reserved=reserved, rss=rss,
        peak_tflops=peak_tflops))
    if not all(math.isfinite(x) for x in losses):
        print("  loss is not finite", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
