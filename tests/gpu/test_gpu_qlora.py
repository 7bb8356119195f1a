"""QLoRA on a CUDA GPU: same code path as CPU, with bf16 compute. Skipped without CUDA."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_tiny_qlora_trains_on_gpu_in_bf16(tiny_base, tmp_path):
    from gabarito.chat import load_prompts
    from gabarito.modeling import load_tokenizer
    from gabarito.params import TrainParams
    from stages.format import format_records
    from stages.train import train

    tok = load_tokenizer(tiny_base)
    rec = {"id": "g1", "kind": "mcq", "label": 1, "context": "Choveu o dia todo e fiquei em casa lendo.",
           "question": "O que o narrador fez?", "answers": ["Correu .", "Leu .", "Nadou .", "Dormiu ."]}
    from tests.conftest import ROOT

    prompts = load_prompts(ROOT / "prompts/chat.v1.yaml")
    data = format_records([rec] * 8, tok, prompts, letters=list("ABCD"), answer_prefix="Alternativa", include_open=False)
    params = TrainParams.model_validate({
        "quantization": {"bnb_4bit_compute_dtype": "bfloat16"},
        "sft": {"max_steps": 3, "per_device_train_batch_size": 4, "bf16": True},
    })
    metrics = train(data, tiny_base, tmp_path / "adapter", params)
    assert metrics["steps"] == 3
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
