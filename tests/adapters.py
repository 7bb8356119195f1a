"""Comparing two trained LoRA adapters across processes, resumes and CPUs."""

from __future__ import annotations

from pathlib import Path


def load(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "adapter_model.safetensors"))


def relative_distance(a: dict, b: dict) -> float:
    """||a - b|| / ||b|| over all tensors of two adapters with the same keys.

    Why not the largest element difference: AdamW's first steps move every weight by about the learning rate
    times the sign of its gradient, so a weight whose gradient is ~0 gets +lr or -lr from float noise alone
    (another summation order: another CPU, a thread split, gloo's all-reduce). One such weight differs by
    ~2 x lr (6e-3 at lr 3e-3) while the adapter as a whole is the same. The relative norm counts it in
    proportion, and still moves by ~1e-2 when one batch is skipped or repeated."""
    assert a.keys() == b.keys(), (sorted(a), sorted(b))
    num = sum(float(((a[k].double() - b[k].double()) ** 2).sum()) for k in a)
    den = sum(float((b[k].double() ** 2).sum()) for k in b)
    return (num / den) ** 0.5
