"""Chat formatting with the tiny base model's tokenizer and template, and loss masking on the answer only."""

from __future__ import annotations

import pytest

from gabarito.chat import load_prompts
from gabarito.modeling import load_tokenizer
from stages.format import format_records, openai_export
from stages.train import IGNORE, tokenize_dataset, tokenize_example

LETTERS = ["A", "B", "C", "D"]
MCQ = {"id": "x1", "kind": "mcq", "split": "train", "label": 2,
       "context": "Fui ao mercado ontem e esqueci a carteira em casa.",
       "question": "Por que o narrador voltou para casa?",
       "answers": ["Para dormir .", "Para ver TV .", "Para buscar a carteira .", "Nenhuma das alternativas acima ."]}
OPEN = {"id": "pdf-1", "kind": "open", "split": "train", "question": "Qual é a carga horária máxima do estágio?",
        "answer": "Seis horas diárias e trinta horas semanais."}


@pytest.fixture(scope="module")
def tok(tiny_base):
    return load_tokenizer(tiny_base)


@pytest.fixture(scope="module")
def prompts(repo_root):
    return load_prompts(repo_root / "prompts/chat.v1.yaml")


def test_mcq_is_rendered_with_the_zephyr_template(tok, prompts):
    [rec] = format_records([MCQ], tok, prompts, letters=LETTERS, answer_prefix="Alternativa", include_open=True)
    assert rec["messages"][-1] == {"role": "assistant", "content": "Alternativa C"}
    assert rec["prompt"].startswith("<|system|>\n")
    assert "<|user|>\nContexto: Fui ao mercado" in rec["prompt"]
    assert "\nC) Para buscar a carteira .\nD) Nenhuma das alternativas acima .</s>\n" in rec["prompt"]
    assert rec["prompt"].endswith("<|assistant|>\n")
    assert rec["completion"] == "Alternativa C</s>"
    assert rec["label"] == 2


def test_open_questions_are_included_only_when_asked(tok, prompts):
    both = format_records([MCQ, OPEN], tok, prompts, letters=LETTERS, answer_prefix="Alternativa", include_open=True)
    only = format_records([MCQ, OPEN], tok, prompts, letters=LETTERS, answer_prefix="Alternativa", include_open=False)
    assert [r["kind"] for r in both] == ["mcq", "open"]
    assert [r["kind"] for r in only] == ["mcq"]
    assert both[1]["completion"] == OPEN["answer"] + "</s>"


def test_openai_export_keeps_only_messages(tok, prompts):
    recs = format_records([MCQ], tok, prompts, letters=LETTERS, answer_prefix="Alternativa", include_open=True)
    [line] = openai_export(recs)
    assert list(line) == ["messages"]
    assert [m["role"] for m in line["messages"]] == ["system", "user", "assistant"]


def test_labels_mask_every_prompt_token_and_keep_the_eos(tok, prompts):
    [rec] = format_records([MCQ], tok, prompts, letters=LETTERS, answer_prefix="Alternativa", include_open=True)
    ex = tokenize_example(tok, rec["prompt"], rec["completion"])
    n_prompt = len(tok(rec["prompt"], add_special_tokens=False)["input_ids"])
    assert len(ex["input_ids"]) == len(ex["labels"])
    assert all(label == IGNORE for label in ex["labels"][:n_prompt])
    learned = [t for t in ex["labels"] if t != IGNORE]
    assert learned == ex["input_ids"][n_prompt:]
    assert learned[-1] == tok.eos_token_id
    assert tok.decode(learned, skip_special_tokens=False) == "Alternativa C</s>"


def test_too_long_examples_are_skipped_and_counted(tok, prompts):
    recs = format_records([MCQ, OPEN], tok, prompts, letters=LETTERS, answer_prefix="Alternativa", include_open=True)
    lengths = [len(tokenize_example(tok, r["prompt"], r["completion"])["input_ids"]) for r in recs]
    kept, skipped = tokenize_dataset(tok, recs, max_length=max(lengths) - 1)
    assert skipped == 1 and len(kept) == 1
    kept, skipped = tokenize_dataset(tok, recs, max_length=max(lengths))
    assert skipped == 0 and len(kept) == 2


# --- any number of options; items without a passage ------------------------------------------------
ALPHABET = list("ABCDEFGHIJ")  # format.letters
ENEM = {"id": "enem-01", "split": "validation", "label": 4, "context": "", "source": "enem", "language": "pt",
        "subject": "geografia", "doc": "enem.pdf", "page": 2,
        "question": "Texto I: A capital do Brasil foi transferida em 1960.\nQual cidade passou a ser a capital?",
        "answers": ["Rio de Janeiro", "Salvador", "São Paulo", "Recife", "Brasília"]}


def test_a_five_option_portuguese_item_goes_through_clean_and_format_with_letters_a_to_e(tok, prompts):
    from gabarito.params import CleanParams
    from stages.clean import clean_records

    _, validation, _, quarantine = clean_records([ENEM], [], CleanParams(), max_options=len(ALPHABET))
    assert quarantine == []
    [rec] = format_records(validation, tok, prompts, letters=ALPHABET, answer_prefix="Alternativa", include_open=True)
    system, user, assistant = rec["messages"]
    assert assistant == {"role": "assistant", "content": "Alternativa E"}
    assert rec["completion"] == "Alternativa E</s>"
    # no passage: no "Contexto:" line at all, the question opens the user turn
    assert user["content"] == ("Pergunta: Texto I: A capital do Brasil foi transferida em 1960.\n"
                               "Qual cidade passou a ser a capital?\n"
                               "A) Rio de Janeiro\nB) Salvador\nC) São Paulo\nD) Recife\nE) Brasília")
    assert "Contexto" not in rec["prompt"]
    # what evaluation reports by (source, language, option count) and re-renders from travels along
    assert {k: rec[k] for k in ("source", "language", "subject", "doc", "page", "label", "answers")} == {
        "source": "enem", "language": "pt", "subject": "geografia", "doc": "enem.pdf", "page": 2, "label": 4,
        "answers": ENEM["answers"]}
    [line] = openai_export([rec])
    assert line["messages"][-1]["content"] == "Alternativa E" and "E) Brasília" in line["messages"][1]["content"]


def test_a_four_option_item_reads_the_same_with_the_whole_alphabet(tok, prompts):
    """Cosmos QA's items keep A-D: format.letters A-J changes none of their bytes."""
    four = format_records([MCQ], tok, prompts, letters=LETTERS, answer_prefix="Alternativa", include_open=True)
    ten = format_records([MCQ], tok, prompts, letters=ALPHABET, answer_prefix="Alternativa", include_open=True)
    assert ten == four and "E)" not in ten[0]["prompt"]


def test_letters_follow_the_option_count_and_refuse_more_options_than_letters(tok, prompts):
    from gabarito.io import InputError

    two = {**MCQ, "answers": ["Sim .", "Não ."], "label": 1}
    [rec] = format_records([two], tok, prompts, letters=ALPHABET, answer_prefix="Alternativa", include_open=True)
    assert rec["messages"][1]["content"].endswith("A) Sim .\nB) Não .") and rec["completion"] == "Alternativa B</s>"
    with pytest.raises(InputError, match="an item has 5 options; gabarito takes 2 to 4"):
        format_records([{**ENEM, "kind": "mcq"}], tok, prompts, letters=LETTERS, answer_prefix="Alternativa", include_open=True)


# --- items longer than train.sft.max_length: fitted by the format command, never lost silently -------
def test_format_fits_a_long_passage_with_the_real_tokenizer_and_counts_it(tiny_base, repo_root, tmp_path):
    import json

    import yaml

    from gabarito.fit import MARKER
    from gabarito.io import read_jsonl, write_jsonl
    from tests.cli_runner import invoke

    long = {**MCQ, "id": "long", "source": "enem", "context": " ".join(["O narrador esqueceu a carteira em casa."] * 80)}
    split = {"train": [MCQ, long], "validation": [{**MCQ, "id": "v1", "split": "validation"}],
             "test": [{**long, "id": "t-long", "split": "test"}]}
    for name, recs in split.items():
        write_jsonl(tmp_path / f"{name}.jsonl", recs)
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["train"]["sft"]["max_length"] = 200
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    result = invoke(["format", "--train", "train.jsonl", "--validation", "validation.jsonl", "--test", "test.jsonl",
                     "--base", str(tiny_base), "--prompts", str(repo_root / "prompts/chat.v1.yaml"),
                     "--out-dir", "out", "--metrics", "format.json", "--params", "params.yaml"], tmp_path)
    assert result.exit_code == 0, result.output
    assert ("format: WARNING: 2 item(s) longer than train.sft.max_length=200 tokens (format.fit cut_end): "
            "fitted (passage cut, marked [...]) {'test': {'enem': 1}, 'train': {'enem': 1}}") in result.output
    assert "format: train 2, validation 1, test 1 -> out" in result.output
    train, test = read_jsonl(tmp_path / "out/train.jsonl"), read_jsonl(tmp_path / "out/test.jsonl")
    tok = load_tokenizer(tiny_base)
    for rec in (train[1], test[0]):
        assert rec["fitted"] == "cut_end" and rec["tokens_before_fit"] > 200
        assert rec["context"].endswith(MARKER) and long["context"].startswith(rec["context"][:-len(MARKER) - 1])
        assert (rec["question"], rec["answers"]) == (MCQ["question"], MCQ["answers"])
        assert f"{MCQ['question']}" in rec["prompt"] and rec["completion"].startswith("Alternativa C")
        assert len(tokenize_example(tok, rec["prompt"], rec["completion"])["input_ids"]) <= 200
    assert "fitted" not in train[0]
    assert tokenize_dataset(tok, train, max_length=200)[1] == 0  # train now skips nothing
    report = json.loads((tmp_path / "format.json").read_text())
    assert report["fitted"] == {"test": {"enem": 1}, "train": {"enem": 1}} and report["dropped_total"] == 0
    assert report["tokens_by_source"]["enem"]["max"] == train[1]["tokens_before_fit"] > 200

    # fit: drop leaves the training item out (counted), while the test item is still cut
    params["format"]["fit"] = "drop"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    result = invoke(["format", "--train", "train.jsonl", "--validation", "validation.jsonl", "--test", "test.jsonl",
                     "--base", str(tiny_base), "--prompts", str(repo_root / "prompts/chat.v1.yaml"),
                     "--out-dir", "out", "--metrics", "format.json", "--params", "params.yaml"], tmp_path)
    assert result.exit_code == 0, result.output
    assert "dropped {'train': {'enem': 1}}" in result.output
    assert [r["id"] for r in read_jsonl(tmp_path / "out/train.jsonl")] == ["x1"]
    assert read_jsonl(tmp_path / "out/test.jsonl")[0]["fitted"] == "cut_end"
