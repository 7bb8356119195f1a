"""The CPU path of the 4-bit layers is a choice (evaluate.cpu_4bit_kernel), not the CPU's.

bitsandbytes switches a Linear4bit to a packed bf16 kernel in inference wherever the CPU has AVX512-BF16.
These tests force each path, so they say the same on CPUs with and without it: portable must give the
dequantize-then-matmul numbers everywhere; packed runs where the CPU has it and falls back where it does not."""

from __future__ import annotations

import pytest
import torch

from gabarito.modeling import load_4bit, packable, use_cpu_kernel
from gabarito.params import QuantizationParams

bnb = pytest.importorskip("bitsandbytes")
from bitsandbytes.functional import (  # noqa: E402
    _convert_weight_packed_for_cpu,
    dequantize_4bit,
    has_avx512bf16,
)

CPU_HAS_PACKED = bool(has_avx512bf16())


def four_bit(n_in: int, n_out: int) -> torch.nn.Module:
    torch.manual_seed(0)
    layer = bnb.nn.Linear4bit(n_in, n_out, bias=False, compute_dtype=torch.float32, compress_statistics=True,
                              quant_type="nf4")
    return layer.to("cpu")  # moving the layer is what quantizes it


def layers(model) -> list:
    return [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]


def test_portable_overrides_what_bitsandbytes_picked_for_this_cpu(tiny_base):
    model = load_4bit(tiny_base, QuantizationParams(), device="cpu")
    for layer in layers(model):
        layer.support_avx512bf16_for_cpu = True  # what bitsandbytes sets on an AVX512-BF16 CPU
    assert use_cpu_kernel(model, "portable") == {"portable": 14, "packed": 0}
    assert not any(layer.support_avx512bf16_for_cpu for layer in layers(model))


def test_portable_is_the_dequantized_matmul_in_inference(tiny_base):
    model = load_4bit(tiny_base, QuantizationParams(), device="cpu").eval()
    ids = torch.arange(3, 40).reshape(1, -1)
    with torch.no_grad():
        model(input_ids=ids)
        layer = layers(model)[0]
        state = layer.weight.quant_state
        assert not getattr(state, "packing_format_for_cpu", False)  # no layer was repacked
        x = torch.randn(5, layer.in_features, generator=torch.Generator().manual_seed(1))
        expected = x @ dequantize_4bit(layer.weight.data, state).float().T
        assert torch.allclose(layer(x), expected, rtol=0, atol=1e-6)


def test_the_packed_layout_holds_exactly_the_layers_packable_says():
    # 64 in x 32 out fits; 16 in is under one 64-value quantization block; 48 out is not a multiple of 32
    for n_in, n_out, fits in ((64, 32, True), (192, 64, True), (16, 32, False), (64, 48, False)):
        layer = four_bit(n_in, n_out)
        assert packable(layer) is fits, (n_in, n_out)
        try:
            _convert_weight_packed_for_cpu(layer.weight.data.clone(), layer.weight.quant_state)
            converted = True
        except (RuntimeError, AssertionError):
            converted = False
        assert converted is fits, (n_in, n_out)


def test_packed_runs_narrow_layers_portably_and_falls_back_without_the_cpu_feature(capsys):
    model = torch.nn.Sequential(four_bit(64, 32), four_bit(32, 64)).eval()  # the second is too narrow
    counts = use_cpu_kernel(model, "packed")
    x = torch.randn(3, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y = model(x)  # before: RuntimeError shape '[32, 0]' is invalid on an AVX512-BF16 CPU
    assert y.shape == (3, 64) and torch.isfinite(y).all()
    err = capsys.readouterr().err
    if CPU_HAS_PACKED:
        assert counts == {"packed": 1, "portable": 1}
        assert getattr(model[0].weight.quant_state, "packing_format_for_cpu", False)
        assert "1 of 2 4-bit layers are too narrow" in err
    else:
        assert counts == {"packed": 0, "portable": 2}
        assert "no AVX512-BF16" in err


@pytest.mark.skipif(not CPU_HAS_PACKED, reason="the packed kernel exists only on CPUs with AVX512-BF16")
def test_packed_is_bf16_close_to_portable_and_not_equal(tiny_base):
    ids = torch.arange(3, 60).reshape(1, -1)
    probs = {}
    for kernel in ("portable", "packed"):
        model = load_4bit(tiny_base, QuantizationParams(), device="cpu", cpu_kernel=kernel).eval()
        with torch.no_grad():
            probs[kernel] = model(input_ids=ids).logits.float().softmax(-1)
        assert any(getattr(m.weight.quant_state, "packing_format_for_cpu", False) for m in layers(model)) \
            is (kernel == "packed")
    gap = (probs["packed"] - probs["portable"]).abs().max().item()
    # bf16 keeps 8 bits of mantissa (relative error ~4e-3 per product) in activations and scales: the
    # probabilities move (0.0096 seen on an AMD EPYC), by far less than the 0.1 that would mean a broken kernel
    assert 0 < gap < 0.1


def test_the_hub_kernel_notice_is_dropped():
    import logging
    import subprocess
    import sys

    # what a stage prints: peft imports bitsandbytes, which warns on AVX512-BF16 CPUs
    proc = subprocess.run([sys.executable, "-c", "import stages.evaluate; import peft"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "kernels-community" not in proc.stderr, proc.stderr

    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    record = logger.makeRecord(logger.name, logging.WARNING, __file__, 1,
                               "Failed to load CPU gemm_4bit_forward from kernels-community: %s", ("x",), None)
    assert not logger.filter(record)
    other = logger.makeRecord(logger.name, logging.WARNING, __file__, 1, "something else", (), None)
    assert logger.filter(other)


def test_the_benchmark_prints_both_paths_on_a_small_model():
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, str(root / "benchmarks/cpu_kernel.py"), "--hidden", "256", "--layers", "1",
                           "--vocab", "500", "--batch", "2", "--tokens", "16", "--repeats", "1", "--threads", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = dict(re.findall(r"^\s+(portable|packed)\s+\d+ ms\s+[\d.]+ ms\s+(\d+) packed", proc.stdout, re.M))
    assert rows["portable"] == "0"  # 7 layers, none packed on the portable path
    assert rows["packed"] == ("7" if CPU_HAS_PACKED else "0")
    assert re.search(r"portable / packed time: prompt [\d.]+x, step [\d.]+x", proc.stdout)
