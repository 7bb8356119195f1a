#!/usr/bin/env bash
# Wheels for a GPU machine with no package index: the packages a stock PyTorch CUDA image lacks, or
# holds at other versions, at this project's pins (requirements.lock). gpu_checks.sh installs them:
#
#   bash benchmarks/gpu_wheels.sh [DIR]             # default DIR .whl (git-ignored), for CPython 3.12
#   PYVER=3.11 bash benchmarks/gpu_wheels.sh DIR    # for another Python
#   WHEELS=DIR bash benchmarks/gpu_checks.sh OUT    # then, on the GPU machine
#
# The image's own torch (a CUDA build), accelerate, tokenizers, safetensors, huggingface-hub, numpy,
# pandas and pyarrow are used as they are; pyarrow and torch are too large to carry. bitsandbytes'
# one wheel holds the kernels of every CUDA version from 11.8 to 13.2 (~43 MB); all together ~62 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.whl}
pyver=${PYVER:-3.12}
# what the pipeline, the benchmarks and tests/gpu import, beyond such an image, with their own needs
packages=(bitsandbytes trl datasets dill multiprocess transformers peft
          pydantic pydantic_core annotated-types typing-inspection typing_extensions)
mkdir -p "$dir"
for name in "${packages[@]}"; do
  pin=$(grep -i "^${name}==" requirements.lock) || { echo "gpu_wheels: $name is not pinned in requirements.lock" >&2; exit 1; }
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version "$pyver" --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$dir" "$pin" 2>&1 \
    | grep -v "is neither a file nor a directory" || true
  ls "$dir" | grep -qi "^${name//-/_}-${pin#*==}-" \
    || { echo "gpu_wheels: no wheel of $pin for CPython $pyver on manylinux x86_64" >&2; exit 1; }
done
echo "gpu_wheels: ${#packages[@]} wheels for CPython $pyver in $dir ($(du -sh "$dir" | cut -f1))"
