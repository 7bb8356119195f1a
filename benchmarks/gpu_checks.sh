#!/usr/bin/env bash
# Every GPU check of the project in one run on one CUDA machine, each step's output and a summary
# saved to a folder: what a borrowed GPU's few minutes should be spent on.
#
#   bash benchmarks/gpu_checks.sh [OUTDIR [STEP ...]]     # default OUTDIR gpu-checks (git-ignored), all steps
#   WHEELS=.whl bash benchmarks/gpu_checks.sh OUT         # no package index there: install these wheels
#                                                         # first (benchmarks/gpu_wheels.sh makes them)
#   bash benchmarks/gpu_checks.sh OUT eval-letter         # rerun one step
#
# Steps, in this order, each under its own time limit (seconds, from the environment):
#   env           GPU, driver, Python, the packages of record, and that the stages import   LIMIT_ENV=120
#   gpu-tests     pytest tests/gpu: the tiny model's QLoRA in bf16 on CUDA                  LIMIT_TESTS=180
#   qlora-memory  benchmarks/qlora_memory.py: peak <= 16 GiB at 8,192 tokens, MFU >= 25%    LIMIT_QLORA=300
#   eval-letter   benchmarks/eval_letter_7b.py: 2,985 items in letter mode in < 2 minutes   LIMIT_EVAL=360
# QLORA_ARGS and EVAL_ARGS add flags to the benchmarks. The two share one random Mistral-7B-shaped
# checkpoint (~14.5 GB, built once) in CHECKPOINT, by default a folder under TMPDIR removed at the end.
# Relative paths (OUTDIR, WHEELS, CHECKPOINT, PYTHON) are taken from where the script is run.
# Without a GPU it still runs, the benchmarks in their small CPU shapes: a rehearsal, not figures;
# where nvidia-smi sees a GPU that torch cannot use (a CPU build of torch), the env step fails.
# Exit status: 0 when every step ran and met its targets, 1 otherwise (OUTDIR/summary.txt says
# which and why), 130 when interrupted: Ctrl-C or a SIGTERM stops the running step too.
set -uo pipefail
here=$PWD
abs() { case $1 in /*) echo "$1" ;; *) echo "$here/$1" ;; esac; }
out=$(abs "${1:-gpu-checks}")
shift $(( $# > 0 ? 1 : 0 ))
[ -z "${WHEELS:-}" ] || WHEELS=$(abs "$WHEELS")
[ -z "${CHECKPOINT:-}" ] || CHECKPOINT=$(abs "$CHECKPOINT")
case ${PYTHON:-} in */*) PYTHON=$(abs "$PYTHON") ;; esac
cd "$(dirname "$0")/.."
all=(env gpu-tests qlora-memory eval-letter)
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=("${all[@]}")
for step in "${steps[@]}"; do
  [[ " ${all[*]} " == *" $step "* ]] || { echo "gpu_checks: no step '$step'; the steps: ${all[*]}" >&2; exit 2; }
done
mkdir -p "$out"

python=${PYTHON:-}
[ -n "$python" ] || { [ -x .venv/bin/python ] && python=$PWD/.venv/bin/python || python=python3; }
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
site= own_checkpoint= child= interrupted=
trap 'rm -rf ${own_checkpoint:+"$own_checkpoint"} ${site:+"$site"}' EXIT
# timeout runs each step in a process group of its own, which a Ctrl-C at the terminal does not
# reach: pass INT/TERM/HUP on to it (timeout forwards them to the step), then stop
trap 'interrupted=1; [ -z "$child" ] || kill -TERM "$child" 2>/dev/null' INT TERM HUP
if [ -n "${WHEELS:-}" ]; then
  site=$(mktemp -d "${TMPDIR:-/tmp}/gabarito-site.XXXXXX")
  "$python" -m pip install --quiet --disable-pip-version-check --no-index --no-deps --no-compile \
    --no-cache-dir --upgrade --target "$site" "$WHEELS"/*.whl \
    || { echo "gpu_checks: could not install the wheels in $WHEELS" >&2; exit 1; }
  export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
fi
if [ -z "${CHECKPOINT:-}" ]; then
  own_checkpoint=$(mktemp -d "${TMPDIR:-/tmp}/gabarito-7b.XXXXXX")
  CHECKPOINT=$own_checkpoint/model
fi

summary=$out/summary.txt
: >"$summary"
failed=0

env_step() {
  date -u +"%Y-%m-%d %H:%M:%S UTC"
  local gpu_seen=
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader && gpu_seen=1
  else
    echo "nvidia-smi: not found"
  fi
  GPU_SEEN=$gpu_seen "$python" - <<'PY'
import importlib.metadata as md
import os
import platform
import sys

print("python", platform.python_version(), sys.executable)
for name in ("torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate", "datasets", "tokenizers",
             "huggingface-hub", "pydantic", "pyarrow", "numpy"):
    try:
        print(f"{name:<16}{md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name:<16}MISSING")
import torch

cuda = torch.cuda.is_available()
if cuda:
    print(f"cuda {torch.version.cuda}: {torch.cuda.get_device_name()}, bf16 {torch.cuda.is_bf16_supported()}")
else:
    print(f"cuda: NOT available (torch {torch.__version__}): a CPU rehearsal, the benchmarks in their small shapes")
# what the steps import: a missing or clashing package shows here, in seconds, not after a 7B build
import bitsandbytes, datasets, peft, trl  # noqa: E401,F401
import stages.evaluate, gabarito.modeling, stages.train  # noqa: E401,F401
print("imports ok: bitsandbytes, datasets, peft, trl, stages.train/evaluate/modeling")
if os.environ.get("GPU_SEEN") and not cuda:
    sys.exit("nvidia-smi sees a GPU that torch cannot use: a CPU build of torch, or a driver too old for "
             f"its CUDA ({torch.version.cuda}); the benchmarks would measure the CPU")
PY
  local rc=$?
  "$python" -m pip check 2>&1 | sed 's/^/pip check: /' || true
  return $rc
}

run_step() {  # NAME LIMIT COMMAND...: the output to OUTDIR/NAME.txt and the screen, the verdict to the summary
  local name=$1 limit=$2 rc start elapsed tailer
  shift 2
  echo "== $name (limit ${limit} s)"
  start=$SECONDS
  timeout -k 15 "$limit" "$@" >"$out/$name.txt" 2>&1 &
  child=$!
  tail -n +1 -f --pid="$child" "$out/$name.txt" &
  tailer=$!
  while :; do  # a trapped signal ends `wait` early: wait again, for the step itself
    wait "$child"
    rc=$?
    kill -0 "$child" 2>/dev/null || break
  done
  child=
  wait "$tailer" 2>/dev/null
  elapsed=$(( SECONDS - start ))
  if [ -n "$interrupted" ]; then
    echo "$name: INTERRUPTED after $elapsed s" >>"$summary"
  elif [ "$rc" -eq 0 ] && grep -qE "^  target .*: FAIL" "$out/$name.txt"; then
    echo "$name: ran in $elapsed s, but a target FAILED (below)" >>"$summary"
    failed=1
  elif [ "$rc" -eq 0 ]; then
    echo "$name: ok in $elapsed s" >>"$summary"
  elif [ "$rc" -eq 124 ] || { [ "$rc" -eq 137 ] && [ "$elapsed" -ge "$limit" ]; }; then
    echo "$name: FAILED: over its ${limit} s limit (raise LIMIT_* or rerun the step alone)" >>"$summary"
    failed=1
  elif [ "$rc" -eq 137 ]; then
    echo "$name: FAILED: killed (exit 137) after $elapsed s, inside its limit: out of memory?" >>"$summary"
    failed=1
  else
    echo "$name: FAILED (exit $rc) in $elapsed s; see $name.txt" >>"$summary"
    failed=1
  fi
}

ran=()
for step in "${steps[@]}"; do
  [ -z "$interrupted" ] || break
  ran+=("$step")
  case $step in
    env) export -f env_step; export python; run_step env "${LIMIT_ENV:-120}" bash -c env_step ;;
    gpu-tests) run_step gpu-tests "${LIMIT_TESTS:-180}" "$python" -m pytest -q -p no:cacheprovider -m gpu tests/gpu ;;
    # shellcheck disable=SC2086  # the *_ARGS are word-split on purpose
    qlora-memory) run_step qlora-memory "${LIMIT_QLORA:-300}" \
                    "$python" benchmarks/qlora_memory.py --checkpoint "$CHECKPOINT" ${QLORA_ARGS:-} ;;
    # shellcheck disable=SC2086
    eval-letter) run_step eval-letter "${LIMIT_EVAL:-360}" \
                   "$python" benchmarks/eval_letter_7b.py --checkpoint "$CHECKPOINT" ${EVAL_ARGS:-} ;;
  esac
done

{
  echo
  # the figures the issues ask for, as the benchmarks printed them: this run's steps only
  for step in "${ran[@]}"; do
    case $step in
      qlora-memory|eval-letter)
        grep -hE "^(QLoRA|letter-mode) benchmark|^  (tokens/step|throughput|peak memory|MFU|matmul peak|target|base|note)" \
          "$out/$step.txt" ;;
      gpu-tests) grep -hE "passed|failed|skipped|error" "$out/gpu-tests.txt" | tail -1 | sed 's/^/gpu-tests: /' ;;
    esac
  done
} >>"$summary"
echo "== summary ($out/summary.txt)"
cat "$summary"
[ -z "$interrupted" ] || exit 130
exit $failed
