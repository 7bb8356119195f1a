"""Check that this machine can run the pipeline, before an hour is spent finding out.

    gabarito doctor

Each check is a plain function that returns one row, ``{"check", "status", "detail", "hint"}``,
with ``status`` one of ``ok``, ``warn`` (runs, but not the way the thesis profile needs) or ``fail``
(a stage will stop). Checks take what they look at as parameters (an environment mapping, a
directory, a command name), so a test can drive each outcome for real; nothing here prints.
``render`` turns the rows into the table a person reads and ``overall`` into the exit status.

Secrets are never shown: an API key or token is reported as set or not set, and a URL (a DVC remote,
``OPENAI_BASE_URL``) loses any user:password part and query string before it is shown.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Mapping, Sequence

import click

from gabarito.clikit import params_option, user_errors
from gabarito.io import redact_url
from gabarito.params import TrainParams, load_all, redact_base_url

OK, WARN, FAIL = "ok", "warn", "fail"
MARKS = {OK: "✓", WARN: "!", FAIL: "✗"}

# docs/thesis-and-gpu.md's figure for the thesis profile: Zephyr-7B in 4-bit + LoRA r=16, batch 16 x 512 tokens
THESIS_GPU_GB = 24.0
# bitsandbytes' CPU 4-bit kernels pack weights in blocks of 32 rows, so the probe layer's sides are
# multiples of 32; 64 x 64 is the smallest square that also exercises more than one block
PROBE_SIDE = 64
# a real forward pass differs from x @ dequantized(W).T only by float32 rounding
PROBE_TOLERANCE = 1e-4
SUBPROCESS_TIMEOUT_S = 30.0


def row(check: str, status: str, detail: str, hint: str | None = None) -> dict:
    return {"check": check, "status": status, "detail": detail, "hint": hint}




# --- GPU and CUDA --------------------------------------------------------------------------------
def gpu_facts() -> dict:
    """What torch sees: its version, the CUDA it was built for, and each visible GPU."""
    import torch

    devices = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            devices.append({
                "name": props.name,
                "memory_gb": props.total_memory / 1e9,
                # bf16 arithmetic is native from compute capability 8.0 (Ampere) on; older cards emulate it
                "bf16": (props.major, props.minor) >= (8, 0),
            })
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "devices": devices}


def check_gpu(facts: dict | None = None, *, min_gb: float = THESIS_GPU_GB) -> dict:
    """A CUDA GPU with ``min_gb`` of memory and bf16, as the thesis profile needs; CPU is a warning."""
    facts = gpu_facts() if facts is None else facts
    devices = facts["devices"]
    if not devices:
        build = f"built for CUDA {facts['cuda']}, but no GPU is visible" if facts["cuda"] else "a CPU build"
        return row("gpu", WARN, f"no CUDA GPU (torch {facts['torch']}, {build})",
                   "training and evaluation run on CPU: fine for the offline profile, slow beyond it. The thesis "
                   f"profile needs a CUDA GPU with {min_gb:g} GB or more (run `make setup` there: it installs the "
                   "CUDA build of torch).")
    names = ", ".join(f"{d['name']} ({d['memory_gb']:.1f} GB)" for d in devices)
    bf16 = all(d["bf16"] for d in devices)
    detail = (f"{len(devices)} GPU(s): {names}; CUDA {facts['cuda']}, torch {facts['torch']}, "
              f"bf16 {'yes' if bf16 else 'no'}")
    hints = []
    if max(d["memory_gb"] for d in devices) < min_gb:
        hints.append(f"the thesis profile needs {min_gb:g} GB on one GPU; on less, lower train.sft.per_device_train_"
                     "batch_size and raise gradient_accumulation_steps, or turn on train.sft.activation_checkpointing.")
    if not bf16:
        hints.append("a GPU without native bf16 (compute capability < 8.0): set train.quantization."
                     "bnb_4bit_compute_dtype: float16 and train.sft.bf16: false, fp16: true.")
    if hints:
        return row("gpu", WARN, detail, " ".join(hints))
    return row("gpu", OK, detail)


# --- which profile fits this GPU -----------------------------------------------------------------
# profiles/ for the GPUs people can get, largest first: (name, the least memory of the cards it is for, needs
# bf16). Each profile's own memory estimate (gabarito/memory.py) must fit the card as well
GPU_PROFILES = (("thesis", 40.0, True), ("gpu24", 20.0, True), ("t4", 14.0, False))


def profile_estimates(profiles_dir: str | Path = "profiles") -> dict[str, float]:
    """GB each of GPU_PROFILES needs for Zephyr-7B-beta: the figure its header states ("# memory: N GB
    expected"), which tests/unit/test_gpu_profiles.py keeps equal to gabarito/memory.py's estimate."""
    import re

    found = {}
    for name, _, _ in GPU_PROFILES:
        text = (Path(profiles_dir) / f"{name}.yaml").read_text(encoding="utf-8")
        stated = re.search(r"^# memory: ([\d.]+) GB expected", text, re.M)
        if stated is None:
            raise ValueError(f"{profiles_dir}/{name}.yaml states no '# memory: N GB expected' line")
        found[name] = float(stated.group(1))
    return found


def fitting_profile(device: dict, estimates: Mapping[str, float]) -> str | None:
    """The largest of GPU_PROFILES for ``device`` ({"memory_gb", "bf16"}), or None when none fits."""
    for name, least_gb, needs_bf16 in GPU_PROFILES:
        if device["memory_gb"] >= least_gb and estimates[name] <= device["memory_gb"] and (device["bf16"] or not needs_bf16):
            return name
    return None


def check_fit(facts: dict | None = None, estimates: Mapping[str, float] | None = None) -> dict:
    """Which profile to switch to on the GPU found (`make profile PROFILE=...`), with its memory estimate."""
    facts = gpu_facts() if facts is None else facts
    if not facts["devices"]:
        return row("gpu profile", OK, "no CUDA GPU: the offline or small profile (CPU)")
    estimates = profile_estimates() if estimates is None else estimates
    device = min(facts["devices"], key=lambda d: d["memory_gb"])  # every rank needs its copy: the smallest card
    name = fitting_profile(device, estimates)
    count = len(facts["devices"])
    if name is None:
        return row("gpu profile", WARN, f"{device['name']} ({device['memory_gb']:.1f} GB): no GPU profile fits "
                   f"(the smallest, t4, needs ~{estimates['t4']:g} GB)", "lower train.sft.per_device_train_batch_size "
                   "and raise gradient_accumulation_steps from profiles/t4.yaml, or use a larger GPU.")
    ddp = (f"; {count} GPUs: add -S train.launch.num_processes={count} and divide gradient_accumulation_steps "
           f"by {count} (docs/several-gpus.md)" if count > 1 else "")
    return row("gpu profile", OK, f"{device['name']} ({device['memory_gb']:.1f} GB): `make profile PROFILE={name}` "
               f"(~{estimates[name]:g} GB by gabarito/memory.py's estimate){ddp}")


# --- the active params against this machine --------------------------------------------------------
# accelerate's distributed types that put each process on its own GPU (MULTI_CPU and plain DDP without
# a config file run over gloo on CPU: slow, but they run)
GPU_DISTRIBUTED_TYPES = ("MULTI_GPU", "FSDP", "DEEPSPEED")


def gpu_settings(train: TrainParams) -> list[str]:
    """The settings in ``train`` that only a CUDA GPU can run, as ``key=value``."""
    needs = []
    q, sft, launch = train.quantization, train.sft, train.launch
    if q.bnb_4bit_compute_dtype in ("bfloat16", "float16"):
        needs.append(f"train.quantization.bnb_4bit_compute_dtype={q.bnb_4bit_compute_dtype}")
    if sft.bf16:
        needs.append("train.sft.bf16=true")
    if sft.fp16:
        needs.append("train.sft.fp16=true")
    if launch.num_processes > 1 and launch.config_file:
        try:
            import yaml

            kind = (yaml.safe_load(Path(launch.config_file).read_text(encoding="utf-8")) or {}).get("distributed_type")
        except (OSError, ValueError, AttributeError):
            kind = None  # a missing or broken file is train's own error to report
        if kind in GPU_DISTRIBUTED_TYPES:
            needs.append(f"train.launch.num_processes={launch.num_processes} with {launch.config_file} ({kind})")
    return needs


def check_profile(train: TrainParams, params_name: str = "params.yaml", facts: dict | None = None) -> dict:
    """Whether this machine can run the ACTIVE params: a GPU setting with no CUDA GPU is a failure
    (train would crash after every stage before it ran), as is asking for more processes than GPUs."""
    facts = gpu_facts() if facts is None else facts
    devices, needs = facts["devices"], gpu_settings(train)
    n = train.launch.num_processes
    if not devices and needs:
        return row("profile", FAIL, f"{params_name} needs a CUDA GPU ({', '.join(needs)}); this machine has none",
                   "run it on a machine with a CUDA GPU (`make setup` there installs the CUDA build of torch), or "
                   "use the CPU profile: `make profile PROFILE=offline` (float32 compute, bf16 and fp16 false).")
    if devices and n > 1 and needs and n > len(devices):
        return row("profile", FAIL, f"{params_name} starts {n} processes, one per GPU; this machine has "
                                    f"{len(devices)} GPU(s)", f"set train.launch.num_processes to {len(devices)} or less.")
    bf16 = [x for x in needs if "bf16" in x or "bfloat16" in x]
    if devices and bf16 and not all(d["bf16"] for d in devices):
        return row("profile", FAIL, f"{params_name} computes in bf16 ({', '.join(bf16)}); a GPU here has no "
                                    "native bf16", "set train.quantization.bnb_4bit_compute_dtype: float16 and "
                                                   "train.sft.bf16: false, fp16: true.")
    where = f"{len(devices)} GPU(s)" if devices else "CPU"
    return row("profile", OK, f"{params_name} runs here ({where}"
               + (f"; needs {', '.join(needs)}" if needs else "; no GPU setting") + ")")


# --- bitsandbytes ----------------------------------------------------------------------------------
def check_bitsandbytes(device: str | None = None) -> dict:
    """bitsandbytes imports and a real 4-bit NF4 layer (double quantization) computes the right thing."""
    try:
        import bitsandbytes as bnb
    except Exception as exc:  # ImportError, or a native library that fails to load at import
        return row("bitsandbytes", FAIL, f"cannot import bitsandbytes: {type(exc).__name__}: {exc}",
                   "run `make setup` (it installs the pinned bitsandbytes).")
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        gen = torch.Generator().manual_seed(0)
        layer = bnb.nn.Linear4bit(PROBE_SIDE, PROBE_SIDE, bias=False, compute_dtype=torch.float32,
                                  compress_statistics=True, quant_type="nf4")
        layer = layer.to(device)  # moving the layer is what quantizes its weight
        x = torch.randn(2, PROBE_SIDE, generator=gen).to(device)
        with torch.no_grad():
            y = layer(x)
            state = layer.weight.quant_state
            expected = x @ bnb.functional.dequantize_4bit(layer.weight.data, state).float().T
        error = (y.float() - expected).abs().max().item()
    except Exception as exc:
        return row("bitsandbytes", FAIL,
                   f"bitsandbytes {bnb.__version__}: a 4-bit NF4 layer fails on {device}: {type(exc).__name__}: {exc}",
                   "on a GPU, torch and bitsandbytes must be builds for the same CUDA (`make setup` on that "
                   "machine); on CPU, bitsandbytes 0.50 or later is needed.")
    if state.quant_type != "nf4" or not state.nested or not error <= PROBE_TOLERANCE:
        return row("bitsandbytes", FAIL,
                   f"bitsandbytes {bnb.__version__}: the 4-bit layer on {device} computed a wrong result "
                   f"(max error {error:.2g}, quant type {state.quant_type}, double quant {state.nested})",
                   "reinstall with `make setup`; if it persists, report the bitsandbytes version and device.")
    from bitsandbytes.functional import has_avx512bf16

    packed = ("; this CPU has AVX512-BF16, so evaluate.cpu_4bit_kernel: packed is available (other numbers)"
              if device == "cpu" and has_avx512bf16() else "")
    return row("bitsandbytes", OK, f"{bnb.__version__}; a {PROBE_SIDE}x{PROBE_SIDE} NF4 layer with double "
                                   f"quantization runs on {device}{packed}")


# --- tesseract -------------------------------------------------------------------------------------
def check_tesseract(cmd: str = "tesseract", lang: str = "por", *,
                    which: Callable[[str], str | None] = shutil.which) -> dict:
    """tesseract on PATH, its version, and the ``lang`` data the extract stage OCRs with."""
    install = f"Debian/Ubuntu: `apt-get install tesseract-ocr tesseract-ocr-{lang}`, or `make system-deps` (as root)."
    exe = which(cmd)
    if exe is None:
        return row("tesseract", FAIL, f"'{cmd}' is not on PATH; scanned PDF pages cannot be OCR'd", install)
    try:
        version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S)
        langs = subprocess.run([exe, "--list-langs"], capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return row("tesseract", FAIL, f"{exe} does not run: {exc}", install)
    # tesseract 4 printed its version on stderr, 5 on stdout
    first = (version.stdout or version.stderr).strip().splitlines()
    name = first[0] if first else f"{exe} (version unknown)"
    # the first line is a header: 'List of available languages in "/usr/share/...tessdata/" (3):'
    installed = [ln.strip() for ln in (langs.stdout or langs.stderr).splitlines()[1:] if ln.strip()]
    if lang not in installed:
        return row("tesseract", FAIL, f"{name}; no '{lang}' language data (has: {', '.join(installed) or 'none'})",
                   install)
    return row("tesseract", OK, f"{name}; languages include '{lang}'")


# --- API keys (set or not: never their values) ---------------------------------------------------
def _is_set(env: Mapping[str, str], name: str) -> bool:
    return bool(env.get(name, "").strip())


def check_openai_key(env: Mapping[str, str] | None = None, needed_by: Sequence[str] = ()) -> dict:
    """Whether OPENAI_API_KEY is set (never any part of it), and OPENAI_BASE_URL, which is not secret.
    ``needed_by``: the active params' settings that call the API (e.g. "translate.provider=openai");
    without a key those stages fail, so doctor does too."""
    env = os.environ if env is None else env
    endpoint = (f"; OPENAI_BASE_URL {redact_base_url(env['OPENAI_BASE_URL'].strip())}" if _is_set(env, "OPENAI_BASE_URL")
                else "; OPENAI_BASE_URL not set (the OpenAI API)")
    if _is_set(env, "OPENAI_API_KEY"):
        return row("openai api key", OK, "OPENAI_API_KEY set" + endpoint)
    how = "export it in your shell or in a git-ignored .env you source (a local server accepts any key)."
    if needed_by:
        return row("openai api key", FAIL, "OPENAI_API_KEY not set" + endpoint,
                   f"the active params call the API ({', '.join(needed_by)}): {how}")
    return row("openai api key", WARN, "OPENAI_API_KEY not set" + endpoint,
               "the active params call no API; translate/synthesize with provider openai or batch do: " + how)


def api_settings(params: Mapping[str, object]) -> list[str]:
    """The settings in loaded params whose stages call an OpenAI-compatible API."""
    return [f"{name}.provider={params[name].provider}" for name in ("translate", "synthesize")
            if name in params and params[name].provider in ("openai", "batch")]


def check_hf_token(env: Mapping[str, str] | None = None) -> dict:
    """Whether HF_TOKEN is set (never any part of it)."""
    env = os.environ if env is None else env
    if _is_set(env, "HF_TOKEN"):
        return row("hf token", OK, "HF_TOKEN set")
    return row("hf token", WARN, "HF_TOKEN not set",
               "the offline profile needs none, nor does the public Zephyr base; a gated hub model does: export "
               "HF_TOKEN (a token saved by `hf auth login` also works).")


# --- disk ------------------------------------------------------------------------------------------
def check_disk(path: str | Path, required_gb: float) -> dict:
    """Free space on the filesystem that holds ``path`` (which may not exist yet) against ``required_gb``.

    ``required_gb`` is ``base_model.download_gb``; 0 means the tiny offline model, which downloads nothing.
    """
    path = Path(path).expanduser().absolute()
    where = path
    while not where.exists() and where != where.parent:
        where = where.parent
    free_gb = shutil.disk_usage(where).free / 1e9  # decimal GB, as the hub quotes download sizes
    if required_gb <= 0:
        return row("disk", OK, f"{free_gb:.1f} GB free for {path}; the tiny offline model downloads nothing")
    detail = f"{free_gb:.1f} GB free for {path}; the base model needs ~{required_gb:g} GB"
    if free_gb < required_gb:
        return row("disk", FAIL, detail,
                   f"free {required_gb - free_gb:.1f} GB more on that disk, or point HF_HOME (or HF_HUB_CACHE) at "
                   "one with room before `dvc repro`.")
    return row("disk", OK, detail)


# --- DVC remote ------------------------------------------------------------------------------------
def check_dvc_remote(root: str | Path) -> dict:
    """The DVC repository's default remote, by name and URL (credentials never shown)."""
    from dvc.exceptions import DvcException, NotDvcRepoError
    from dvc.repo import Repo

    try:
        # Repo's config merges system, global, repo and local (git-ignored) files as `dvc push` sees them
        with Repo(str(root)) as repo:
            config = repo.config
            name = config["core"].get("remote")
            remotes = {k: dict(v) for k, v in config["remote"].items()}
    except NotDvcRepoError:
        return row("dvc remote", FAIL, f"{root} is not in a DVC repository",
                   "run gabarito from the repository root (a fresh project needs `dvc init`).")
    except DvcException as exc:
        return row("dvc remote", FAIL, f"cannot read the DVC config: {type(exc).__name__}: {exc}",
                   "fix .dvc/config or .dvc/config.local (`dvc config --list --show-origin` shows each setting).")
    if not name:
        known = f" (remotes: {', '.join(sorted(remotes))})" if remotes else ""
        return row("dvc remote", WARN, f"no default remote{known}; `dvc push` has nowhere to go",
                   "set one: `dvc remote add -d NAME URL` (a folder, s3://..., gs://..., ssh://...).")
    if name not in remotes or not remotes[name].get("url"):
        return row("dvc remote", FAIL, f"default remote '{name}' is not defined (no url)",
                   f"`dvc remote add -f -d {name} URL`, or pick another with `dvc remote default NAME`.")
    return row("dvc remote", OK, f"default '{name}': {redact_url(str(remotes[name]['url']))}")


# --- all checks, summary, table --------------------------------------------------------------------
def run_all(*, root: str | Path, download_gb: float, model_dir: str | Path | None = None,
            env: Mapping[str, str] | None = None, tesseract: str = "tesseract", ocr_lang: str = "por",
            train: TrainParams | None = None, params_name: str = "params.yaml",
            api_needed_by: Sequence[str] = ()) -> list[dict]:
    """Every check, in the order a person fixes them. ``model_dir``: where the base model is downloaded
    (default: the Hugging Face hub cache); ``download_gb``: ``base_model.download_gb``; ``train``: the
    active params' train section, checked against this machine (the "profile" row) when given."""
    if model_dir is None:
        from huggingface_hub.constants import HF_HUB_CACHE

        model_dir = HF_HUB_CACHE
    checks: list[tuple[str, Callable[[], dict]]] = [
        ("gpu", check_gpu),
        ("gpu profile", check_fit),
        *([("profile", lambda: check_profile(train, params_name))] if train is not None else []),
        ("bitsandbytes", check_bitsandbytes),
        ("tesseract", lambda: check_tesseract(tesseract, ocr_lang)),
        ("openai api key", lambda: check_openai_key(env, api_needed_by)),
        ("hf token", lambda: check_hf_token(env)),
        ("disk", lambda: check_disk(model_dir, download_gb)),
        ("dvc remote", lambda: check_dvc_remote(root)),
    ]
    rows = []
    for name, check in checks:
        try:
            rows.append(check())
        except Exception as exc:
            # one broken check (a driver error, say) must not hide what the others find
            rows.append(row(name, FAIL, f"the check itself failed: {type(exc).__name__}: {exc}",
                            "report this with the output of `gabarito doctor`."))
    return rows


def overall(rows: list[dict]) -> int:
    """Exit status: 1 if any check failed, else 0 (warnings do not fail)."""
    return int(any(r["status"] == FAIL for r in rows))


def render(rows: list[dict]) -> str:
    """An aligned table with ✓ / ! / ✗ marks, each warning's and failure's hint under its row."""
    width = max((len(r["check"]) for r in rows), default=0)
    lines = []
    for r in rows:
        lines.append(f"{MARKS[r['status']]} {r['check']:<{width}}  {r['detail']}")
        if r["status"] != OK and r["hint"]:
            lines.append(f"  {'':<{width}}  hint: {r['hint']}")
    fails = sum(r["status"] == FAIL for r in rows)
    warns = sum(r["status"] == WARN for r in rows)
    lines.append(f"{len(rows)} checks: {len(rows) - fails - warns} ok, {warns} warning(s), {fails} failure(s)")
    return "\n".join(lines) + "\n"


# --- command: gabarito doctor --------------------------------------------------------------------
@click.command("doctor")
@params_option
@user_errors
def command(params_path):
    """Check this machine for gabarito: GPU and CUDA, bitsandbytes, tesseract, keys, disk, DVC remote.

    The active params (--params) are checked against the machine: a profile that needs a GPU (bf16
    compute, mixed precision, one process per GPU) fails where there is none. API keys are reported
    as set or not set, never shown. Exits 1 when a check fails (warnings do not fail: the offline
    profile needs no GPU and no key).

    \b
    Examples:
      gabarito doctor
      gabarito doctor --params profiles/thesis.yaml   # before switching to the thesis profile
      make doctor
    """
    import sys

    params = load_all(params_path)
    rows = run_all(root=".", download_gb=params["base_model"].download_gb, ocr_lang=params["extract"].ocr_lang,
                   train=params["train"], params_name=params_path, api_needed_by=api_settings(params))
    click.echo(render(rows))
    sys.exit(overall(rows))
