"""Evaluation of items with any number of options (issue 14) on the tiny model: letter and loglik
scoring and the position-bias rotation over each item's own options. The parser and metrics on
hand-made predictions are in tests/unit/test_eval_n_options.py."""

from __future__ import annotations

import pytest

from gabarito import scoring as sc
from gabarito.params import EvaluateParams
from stages import evaluate as ev

ALPHABET = list("ABCDEFGHIJ")
FIFTH = "Nenhuma das alternativas anteriores ."


# --- mixed four- and five-option items on the tiny model ---------------------------------------------
@pytest.fixture(scope="module")
def mixed(tiny_base, formatted, repo_root):
    """(dense tiny model, tokenizer, prompts file, 6 validation items: the first 3 given a fifth option,
    the third with it as the answer)."""
    from transformers import AutoModelForCausalLM

    from gabarito.chat import load_prompts, mcq_messages, split_prompt_completion
    from gabarito.modeling import load_tokenizer

    tok = load_tokenizer(tiny_base)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_base))
    model.eval()
    prompts = load_prompts(repo_root / "prompts/chat.v1.yaml")
    recs = []
    for i, rec in enumerate(formatted[1]):
        if i < 3:
            rec = {**rec, "answers": [*rec["answers"], FIFTH], "label": 4 if i == 2 else rec["label"],
                   "source": "enem_sample"}
            msgs = mcq_messages(rec, prompts, sc.item_letters(rec, ALPHABET), "Alternativa")
            prompt, completion = split_prompt_completion(tok, msgs)
            rec = {**rec, "messages": msgs, "prompt": prompt, "completion": completion}
        else:
            rec = {**rec, "source": "cosmosqa"}
        recs.append(rec)
    return model, tok, prompts, recs


def test_letter_mode_probabilities_are_over_each_items_own_letters(mixed):
    import torch

    model, tok, _, recs = mixed
    p = EvaluateParams(batch_size=4)
    preds = sc.predict(model, tok, recs, "letter", p, letters=ALPHABET, answer_prefix="Alternativa", name="base")
    assert [len(pr["probs"]) for pr in preds] == [5, 5, 5, 4, 4, 4]
    assert all(abs(sum(pr["probs"]) - 1) < 1e-5 for pr in preds)
    assert preds[2]["label"] == "E"
    assert all(pr["prediction"] in "ABCD" for pr in preds[3:])
    # a four-option item scores exactly as with the letters A-D alone (Cosmos QA's numbers unchanged) ...
    four = sc.score_letters(model, tok, [r["prompt"] for r in recs[3:]], answer_prefix="Alternativa",
                            letters=list("ABCD"), batch_size=4)
    assert [[round(x, 6) for x in row] for row in four] == [pr["probs"] for pr in preds[3:]]
    # ... and a five-option one is the softmax of its five letters' logits after the prefix
    prefix_ids, letter_ids = sc.letter_token_ids(tok, "Alternativa", list("ABCDE"))
    ids = tok(recs[0]["prompt"], add_special_tokens=False)["input_ids"] + prefix_ids
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
    expected = torch.softmax(logits[letter_ids].float(), dim=-1).tolist()
    assert preds[0]["probs"] == pytest.approx(expected, abs=2e-6)


def test_loglik_mode_scores_each_items_own_options(mixed):
    model, tok, _, recs = mixed
    two = [recs[0], recs[3]]  # five options, then four
    preds = sc.predict(model, tok, two, "loglik", EvaluateParams(batch_size=9), letters=ALPHABET,
                       answer_prefix="Alternativa", name="base")
    assert [len(pr["probs"]) for pr in preds] == [5, 4]
    assert all(abs(sum(pr["probs"]) - 1) < 1e-5 for pr in preds)
    # the same as scoring the four-option item alone: none of its neighbour's options counted in its own
    alone = sc.score_loglik(model, tok, [recs[3]["prompt"]], [recs[3]["answers"]], batch_size=9)[0]
    assert preds[1]["probs"] == pytest.approx(alone, abs=2e-6)  # other padding: last-digit rounding


def test_position_bias_rotates_each_item_over_its_own_options(mixed):
    model, tok, prompts, recs = mixed
    p = EvaluateParams(batch_size=8)
    pb = ev.position_bias(model, tok, recs, prompts, p, letters=ALPHABET, answer_prefix="Alternativa")
    assert pb["n_by_shift"] == {"shift_0": 6, "shift_1": 6, "shift_2": 6, "shift_3": 6, "shift_4": 3}
    assert set(pb) == {"shift_0", "shift_1", "shift_2", "shift_3", "shift_4", "spread", "n_by_shift"}
    letter = sc.predict(model, tok, recs, "letter", p, letters=ALPHABET, answer_prefix="Alternativa", name="base")
    assert pb["shift_0"] == round(sum(pr["correct"] for pr in letter) / 6, 6)
    # shift 4 is scored on the five-option items alone; spread only over the rotations all items have
    assert pb["spread"] == round(max(pb[f"shift_{s}"] for s in range(4)) - min(pb[f"shift_{s}"] for s in range(4)), 6)
    prompts4, labels4 = ev.permuted_prompts(recs[:3], tok, prompts, 4, letters=ALPHABET, answer_prefix="Alternativa")
    assert labels4 == [(recs[i]["label"] + 4) % 5 for i in range(3)]
    assert "E) " in prompts4[0] and "F) " not in prompts4[0]
    probs = sc.score_letters(model, tok, prompts4, answer_prefix="Alternativa", letters=ALPHABET, batch_size=8,
                             counts=[5, 5, 5])
    hits = [max(range(5), key=lambda i: (pr[i], -i)) == y for pr, y in zip(probs, labels4)]
    assert pb["shift_4"] == round(sum(hits) / 3, 6)
