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
# Without CUDA it still runs, the benchmarks in their small CPU shapes: a rehearsal, not figures.
# Exit status: 0 when every step passed, 1 otherwise; OUTDIR/summary.txt says which and why.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-checks}
shift $(( $# > 0 ? 1 : 0 ))
all=(env gpu-tests qlora-memory eval-letter)
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=("${all[@]}")
for step in "${steps[@]}"; do
  [[ " ${all[*]} " == *" $step "* ]] || { echo "gpu_checks: no step '$step'; the steps: ${all[*]}" >&2; exit 2; }
done
mkdir -p "$out"
out=$(cd "$out" && pwd)

python=${PYTHON:-}
[ -n "$python" ] || { [ -x .venv/bin/python ] && python=.venv/bin/python || python=python3; }
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
site= own_checkpoint=
trap 'rm -rf ${own_checkpoint:+"$own_checkpoint"} ${site:+"$site"}' EXIT
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
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  else
    echo "nvidia-smi: not found"
  fi
  "$python" - <<'EOF'
import importlib.metadata as md
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
import stages.evaluate, stages.modeling, stages.train  # noqa: E401,F401
print("imports ok: bitsandbytes, datasets, peft, trl, stages.train/evaluate/modeling")
EOF
  local rc=$?
  "$python" -m pip check 2>&1 | sed 's/^/pip check: /' || true
  return $rc
}

run_step() {  # NAME LIMIT COMMAND...: the output to OUTDIR/NAME.txt and the screen, the verdict to the summary
  local name=$1 limit=$2 rc start
  shift 2
  echo "== $name (limit ${limit} s)"
  start=$SECONDS
  timeout -k 15 "$limit" "$@" 2>&1 | tee "$out/$name.txt"
  rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 0 ]; then
    echo "$name: ok in $(( SECONDS - start )) s" >>"$summary"
  elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "$name: FAILED: over its ${limit} s limit (raise LIMIT_* or rerun the step alone)" >>"$summary"
    failed=1
  else
    echo "$name: FAILED (exit $rc) in $(( SECONDS - start )) s; see $name.txt" >>"$summary"
    failed=1
  fi
}

for step in "${steps[@]}"; do
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
  # the figures the issues ask for, as the benchmarks printed them
  grep -hE "^(QLoRA|letter-mode) benchmark|^  (tokens/step|throughput|peak memory|MFU|matmul peak|target|base|note)" \
    "$out"/qlora-memory.txt "$out"/eval-letter.txt 2>/dev/null
  grep -hE "passed|failed|skipped|error" "$out"/gpu-tests.txt 2>/dev/null | tail -1 | sed 's/^/gpu-tests: /'
} >>"$summary"
echo "== summary ($out/summary.txt)"
cat "$summary"
exit $failed
