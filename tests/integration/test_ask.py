"""`gabarito ask` on the tiny model (CPU, real 4-bit NF4 base + LoRA): the question is asked with the
evaluation prompt, so the answer and its probabilities are exactly what `evaluate` scores."""

from __future__ import annotations

import pytest

from gabarito.io import InputError
from gabarito.params import EvaluateParams, QuantizationParams
from gabarito.scoring import predict, score_letters
from gabarito.tools import ask
from tests.cli_runner import invoke

LETTERS = list("ABCD")
PREFIX = "Alternativa"
Q = QuantizationParams()


@pytest.fixture(scope="module")
def prompts(repo_root):
    from gabarito.chat import load_prompts

    return load_prompts(repo_root / "prompts/chat.v1.yaml")


@pytest.fixture(scope="module")
def adapter(tiny_base, tmp_path_factory):
    """A LoRA adapter whose B is random, not zero (as in test_merge): it visibly changes the answers,
    which a few seconds of training on the tiny model would hardly do."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny_base)),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj"],
                                      init_lora_weights=False, task_type="CAUSAL_LM"))
    out = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def finetuned(tiny_base, adapter):
    return ask.load(tiny_base, adapter, Q)


@pytest.fixture(scope="module")
def base_only(tiny_base):
    return ask.load(tiny_base, None, Q)


def ask_record(model, tokenizer, rec, prompts) -> dict:
    return ask.answer(model, tokenizer, context=rec["context"], question=rec["question"], options=rec["answers"],
                      prompts=prompts, letters=LETTERS, answer_prefix=PREFIX)


# --- the prompt and the answer are evaluation's -----------------------------------------------------
def test_prompt_is_the_formatted_evaluation_prompt(finetuned, formatted, prompts):
    _, tokenizer = finetuned
    _, validation = formatted
    for rec in validation:
        built = ask.build_prompt(tokenizer, context=rec["context"], question=rec["question"], options=rec["answers"],
                                 prompts=prompts, letters=LETTERS, answer_prefix=PREFIX)
        assert built == rec["prompt"]


def test_pasted_text_is_normalized_as_the_training_text_was(finetuned, formatted, prompts):
    import unicodedata

    _, tokenizer = finetuned
    rec = next(r for r in formatted[1] if any(c in "áéíóúãõç" for c in r["context"]))
    # a macOS paste (NFD), doubled spaces and a no-break space: the clean stage removed all three
    pasted = dict(context=unicodedata.normalize("NFD", rec["context"]).replace(" ", "  ", 3),
                  question=rec["question"].replace(" ", "\u00a0", 1), options=rec["answers"])
    assert pasted["context"] != rec["context"]
    built = ask.build_prompt(tokenizer, **pasted, prompts=prompts, letters=LETTERS, answer_prefix=PREFIX)
    assert built == rec["prompt"]


def test_answer_agrees_with_evaluate_letter_mode(finetuned, formatted, prompts):
    model, tokenizer = finetuned
    _, validation = formatted
    batched = score_letters(model, tokenizer, [r["prompt"] for r in validation], answer_prefix=PREFIX,
                            letters=LETTERS, batch_size=16)
    for rec, batch_probs in zip(validation, batched, strict=True):
        result = ask_record(model, tokenizer, rec, prompts)
        probs = [result["probabilities"][letter] for letter in LETTERS]
        assert abs(sum(probs) - 1) < 1e-5
        assert result["index"] == LETTERS.index(result["letter"])
        assert result["option"] == rec["answers"][result["index"]]
        # evaluate's own per-item prediction (probabilities rounded to 6 places there)
        pred = predict(model, tokenizer, [rec], "letter", EvaluateParams(), letters=LETTERS, answer_prefix=PREFIX,
                       name="finetuned")[0]
        assert pred["prediction"] == result["letter"]
        assert max(abs(a - b) for a, b in zip(probs, pred["probs"])) < 1e-6
        # and the batched scoring evaluate runs over the whole split (left padding changes only rounding)
        assert max(range(4), key=lambda i: (batch_probs[i], -i)) == result["index"]
        assert max(abs(a - b) for a, b in zip(probs, batch_probs)) < 1e-5


FIVE = {"context": "", "question": "Qual cidade é a capital do Brasil desde 1960?",
        "answers": ["Rio de Janeiro", "Salvador", "São Paulo", "Recife", "Brasília"]}
ALPHABET = list("ABCDEFGHIJ")  # format.letters


def test_five_options_are_asked_as_format_renders_them_and_scored_over_a_to_e(finetuned, prompts):
    from stages.format import format_records

    model, tokenizer = finetuned
    [rec] = format_records([{**FIVE, "id": "q5", "kind": "mcq", "label": 4}], tokenizer, prompts, letters=ALPHABET,
                           answer_prefix=PREFIX, include_open=False)
    built = ask.build_prompt(tokenizer, context="", question=FIVE["question"], options=FIVE["answers"],
                             prompts=prompts, letters=ALPHABET, answer_prefix=PREFIX)
    assert built == rec["prompt"] and "E) Brasília" in built and "Contexto" not in built
    result = ask.answer(model, tokenizer, context="", question=FIVE["question"], options=FIVE["answers"],
                        prompts=prompts, letters=ALPHABET, answer_prefix=PREFIX)
    assert list(result["probabilities"]) == list("ABCDE")
    assert abs(sum(result["probabilities"].values()) - 1) < 1e-5
    want = score_letters(model, tokenizer, [built], answer_prefix=PREFIX, letters=list("ABCDE"), batch_size=1)[0]
    assert max(abs(result["probabilities"][k] - p) for k, p in zip("ABCDE", want)) < 1e-6
    assert result["option"] == FIVE["answers"][result["index"]] and result["letter"] == "ABCDE"[result["index"]]


def test_adapter_is_applied_and_base_alone_works(finetuned, base_only, formatted, prompts):
    from peft import PeftModel

    assert isinstance(finetuned[0], PeftModel) and not isinstance(base_only[0], PeftModel)
    assert not finetuned[0].training and not base_only[0].training
    _, validation = formatted
    moved = 0.0
    for rec in validation[:3]:  # a forward pass takes ~0.5 s with CPU 4-bit kernels
        a = ask_record(*finetuned, rec, prompts)["probabilities"]
        b = ask_record(*base_only, rec, prompts)["probabilities"]
        assert abs(sum(b.values()) - 1) < 1e-5
        moved = max(moved, max(abs(a[k] - b[k]) for k in LETTERS))
    assert moved > 1e-3


def test_missing_adapter_is_a_clear_error(tiny_base, tmp_path):
    with pytest.raises(InputError, match="no LoRA adapter here.*dvc repro train"):
        ask.load(tiny_base, tmp_path, Q)


@pytest.mark.parametrize("change, message", [
    ({"options": ["um"]}, "expected 2 to 4 options \\(A to D, one --option each, in order\\), got 1"),
    ({"options": ["um", "dois", "três", "quatro", "cinco"]}, "expected 2 to 4 options .*, got 5"),
    ({"question": "   "}, "the question is empty: write it after 'Pergunta:'"),
    ({"options": ["um", " ", "três", ""]}, "option\\(s\\) B, D empty"),
])
def test_bad_input_says_what_to_fix(finetuned, prompts, change, message):
    model, tokenizer = finetuned
    args = {"context": "Um texto.", "question": "Qual?", "options": ["um", "dois", "três", "quatro"], **change}
    with pytest.raises(InputError, match=message):
        ask.answer(model, tokenizer, **args, prompts=prompts, letters=LETTERS, answer_prefix=PREFIX)


# --- text blocks -----------------------------------------------------------------------------------
def test_parse_block_round_trips(formatted):
    train, validation = formatted
    for rec in train + validation:
        text = ask.format_block(rec["context"], rec["question"], rec["answers"])
        assert ask.parse_block(text) == {"context": rec["context"], "question": rec["question"],
                                         "options": rec["answers"]}


def test_parse_block_forms_people_type():
    text = """
    Context: First paragraph.

    Second paragraph, A. Lincoln said.
    QUESTION: Which statements are true?
    I. the first
    II. the second
    (A) I only
    b. II only
    C) both
      still part of C
    d) neither
    """
    assert ask.parse_block(text) == {
        "context": "First paragraph.\n\nSecond paragraph, A. Lincoln said.",
        "question": "Which statements are true?\nI. the first\nII. the second",
        "options": ["I only", "II only", "both\nstill part of C", "neither"],
    }
    # no context is fine: the prompt then has an empty one
    assert ask.parse_block("Pergunta: Qual?\nA) a\nB) b\nC) c\nD) d")["context"] == ""


@pytest.mark.parametrize("text, message", [
    ("Contexto: x\nA) a\nB) b\nC) c\nD) d", "no question: add a line 'Pergunta: ...'"),
    ("Pergunta: Qual?\nA) a\nB) b\nD) d", "missing option\\(s\\) C\\)"),
    ("Pergunta: Qual?\nA) a\nB) b\nC) c\nD) d\nK) k", "option K\\) is not one of A, B, C, D, E, F, G, H, I, J"),
    ("Pergunta: Qual?\nA) a\nB) b\nB) c\nD) d", "option B\\) appears twice"),
    ("Pergunta: Qual?\nA) a\nC) c\nB) b\nD) d", "options out of order \\(A, C, B, D\\): write them A, B, C, D"),
    # before the first option only A) starts one: "B) b" is still the question's text
    ("Pergunta: Qual?\nB) b\nA) a\nC) c\nD) d", "missing option\\(s\\) B\\)"),
    ("Pergunta: Qual?\nA) só uma", "missing option\\(s\\) B\\)"),
    ("Pergunta: Qual?\nA) a\nB) \nC) c\nD) d", "option\\(s\\) B empty"),
    ("Pergunta:   \nA) a\nB) b\nC) c\nD) d", "the question is empty"),
    ("Pergunta: Qual?\nContexto: x\nA) a\nB) b\nC) c\nD) d", "'Contexto:' must come before 'Pergunta:'"),
    ("Pergunta: Um?\nPergunta: Dois?\nA) a\nB) b\nC) c\nD) d", "'Pergunta:' appears twice"),
    ("Um texto solto\nPergunta: Qual?\nA) a\nB) b\nC) c\nD) d", "unexpected text before"),
])
def test_parse_block_names_the_missing_part(text, message):
    with pytest.raises(InputError, match=message):
        ask.parse_block(text)


def test_parse_blocks_of_a_file():
    one = ask.format_block("C1", "Q1?", ["a", "b", "c", "d"])
    two = ask.format_block("", "Q2?", ["e", "f", "g", "h"])
    blocks = ask.parse_blocks(f"{one}---\n{two}\n---\n")
    assert [b["question"] for b in blocks] == ["Q1?", "Q2?"]
    with pytest.raises(InputError, match="^question 2: missing option"):
        ask.parse_blocks(f"{one}---\nPergunta: Q?\nA) a\n")
    with pytest.raises(InputError, match="no question found"):
        ask.parse_blocks("\n---\n")


# --- output ----------------------------------------------------------------------------------------
def test_render():
    options = ["O mercado estava fechado.", "Choveu.", "Esqueceu a carteira.", "Nenhuma das alternativas."]
    result = {"letter": "A", "index": 0, "option": options[0],
              "probabilities": {"A": 0.7, "B": 0.2, "C": 0.075, "D": 0.025}}
    lines = ask.render(result, options, LETTERS).splitlines()
    assert lines[0] == "Answer: A) O mercado estava fechado.  (70.0%)"
    assert lines[2] == "> A) O mercado estava fechado.   70.0%  " + "█" * 14
    assert lines[3] == "  B) Choveu.                     20.0%  " + "█" * 4
    assert lines[5].startswith("  D) Nenhuma das alternativas.    2.5%  ")
    # long options are cut so the percentages stay in one column
    long = ["x" * 200, "y", "z", "w"]
    out = ask.render({**result, "option": long[0]}, long, LETTERS).splitlines()
    assert len({line.index("%") for line in out[2:]}) == 1 and "…" in out[2]


# --- the command ----------------------------------------------------------------------------------


@pytest.fixture
def cli_args(tiny_base, adapter, repo_root):
    return ["ask", "--base", str(tiny_base), "--adapter", str(adapter),
            "--prompts", str(repo_root / "prompts/chat.v1.yaml"), "--params", str(repo_root / "params.yaml")]


def test_ask_command_answers_like_the_function(cli_args, finetuned, formatted, prompts, tmp_path):
    import json

    rec = formatted[1][0]
    opts = [x for o in rec["answers"] for x in ("--option", o)]
    result = invoke([*cli_args, "--json", "--context", rec["context"], "--question", rec["question"], *opts], tmp_path)
    assert result.exit_code == 0, result.output
    got = json.loads(result.output.strip().splitlines()[-1])
    want = ask_record(*finetuned, rec, prompts)
    assert got["letter"] == want["letter"]
    assert all(abs(got["probabilities"][k] - want["probabilities"][k]) < 1e-6 for k in LETTERS)
    text = invoke([*cli_args, "--context", rec["context"], "--question", rec["question"], *opts], tmp_path)
    assert text.exit_code == 0 and f"Answer: {want['letter']})" in text.output


def test_ask_command_reads_a_file_and_answers_interactively(cli_args, formatted, tmp_path):
    recs = formatted[1][:2]
    # with a byte-order mark, as Windows Notepad saves UTF-8
    (tmp_path / "q.txt").write_text("\n---\n".join(ask.format_block(r["context"], r["question"], r["answers"])
                                                   for r in recs), encoding="utf-8-sig")
    result = invoke([*cli_args, "--file", "q.txt"], tmp_path)
    assert result.exit_code == 0, result.output
    assert result.output.count("Answer: ") == 2
    # an empty option ends the options, an empty question the session
    typed = "\n".join(["um contexto", recs[0]["question"], *recs[0]["answers"], "", "", ""]) + "\n"
    session = invoke(cli_args, tmp_path, input=typed)
    assert session.exit_code == 0, session.output
    assert session.output.count("Answer: ") == 1


def test_ask_command_bad_input_is_a_message(cli_args, tmp_path):
    result = invoke([*cli_args, "--question", "Por quê?", "--option", "a"], tmp_path)
    assert result.exit_code == 1 and "expected 2 to 10 options (A to J" in result.output
    assert "Traceback" not in result.output
    missing = invoke([*cli_args, "--base", str(tmp_path / "nope"), "--question", "x", *["--option", "y"] * 4],
                      tmp_path)
    assert missing.exit_code == 1 and "no base model here" in missing.output


def test_ask_command_takes_five_options_given_or_typed(cli_args, tmp_path):
    import json

    opts = [x for o in FIVE["answers"] for x in ("--option", o)]
    given = invoke([*cli_args, "--json", "--question", FIVE["question"], *opts], tmp_path)
    assert given.exit_code == 0, given.output
    got = json.loads(given.output.strip().splitlines()[-1])
    assert list(got["probabilities"]) == list("ABCDE") and got["options"] == FIVE["answers"]
    # typed: five options, then an empty one ends them (an empty one before the second is asked again)
    typed = "\n".join(["", FIVE["question"], FIVE["answers"][0], "", *FIVE["answers"][1:], "", "", ""]) + "\n"
    session = invoke(cli_args, tmp_path, input=typed)
    assert session.exit_code == 0, session.output
    assert "A question needs at least 2 options." in session.output
    assert session.output.count("Answer: ") == 1 and "E) Brasília" in session.output and "F)" in session.output
