"""Evaluation of items with any number of options (issue 14): letters per item, metrics per source and
per option count, the majority-letter baseline and the predicted-letter warning."""

from __future__ import annotations

import pytest

from gabarito import scoring as sc
from gabarito import stats as st
from gabarito.params import EvaluateParams
from gabarito.scoring import INVENTED, VALID, parse_answer
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


# --- the answer parser -------------------------------------------------------------------------------
def test_parser_takes_e_on_five_options_and_calls_f_invented():
    five, four = sc.option_letters(5, ALPHABET), sc.option_letters(4, ALPHABET)
    assert parse_answer("Alternativa E", five, "Alternativa") == ("E", VALID)
    assert parse_answer("E) porque sim", five, "Alternativa") == ("E", VALID)
    assert parse_answer("Alternativa F", five, "Alternativa") == (None, INVENTED)
    assert parse_answer("Alternativa E", four, "Alternativa") == (None, INVENTED)
    assert sc.item_letters({"answers": ["a"] * 5}, ALPHABET) == list("ABCDE")


# --- metrics on a hand-made prediction list ----------------------------------------------------------
def _case():
    """8 items: 4 Cosmos QA (4 options), 3 ENEM (5 options), 1 without a source (5 options)."""
    spec = [  # source, options, gold, predicted (None: invalid)
        ("cosmosqa", 4, "A", "A"), ("cosmosqa", 4, "B", "A"), ("cosmosqa", 4, "A", "A"), ("cosmosqa", 4, "C", "C"),
        ("enem", 5, "E", "E"), ("enem", 5, "E", "A"), ("enem", 5, "D", None), (None, 5, "E", "B")]
    records, preds = [], []
    for i, (source, n, gold, pred) in enumerate(spec):
        rec = {"id": str(i), "answers": [f"o{j}" for j in range(n)], "label": ALPHABET.index(gold),
               "question_type": "fact"}
        if source:
            rec["source"] = source
        records.append(rec)
        preds.append({"id": str(i), "label": gold, "prediction": pred, "correct": pred == gold,
                      "category": VALID if pred else INVENTED})
    return records, preds


def test_accuracy_per_source_and_per_option_count():
    records, preds = _case()
    p = EvaluateParams(bootstrap_samples=200)
    m = ev.summarize(records, preds, p, letters=ALPHABET)
    assert m["n"] == 8 and m["accuracy"] == 0.5
    src = {k: (v["n"], v["accuracy"]) for k, v in m["by_source"].items()}
    assert src == {"cosmosqa": (4, 0.75), "enem": (3, 0.333333), "unknown": (1, 0.0)}
    assert {k: (v["n"], v["accuracy"]) for k, v in m["by_options"].items()} == {"4": (4, 0.75), "5": (4, 0.25)}
    # each group's interval is the seeded bootstrap of that group's items
    assert (m["by_source"]["enem"]["ci95_low"], m["by_source"]["enem"]["ci95_high"]) == \
        st.bootstrap_ci([True, False, False], 200, 0)
    assert (m["by_source"]["unknown"]["ci95_low"], m["by_source"]["unknown"]["ci95_high"]) == (0.0, 0.0)


def test_majority_baseline_and_predicted_letters():
    records, preds = _case()
    m = ev.summarize(records, preds, EvaluateParams(bootstrap_samples=50), letters=ALPHABET)
    # gold letters: A A B C D E E E -> E, 3 of 8
    assert m["majority_baseline"] == {"letter": "E", "accuracy": 0.375}
    assert m["predicted_letters"] == {"A": 4, "B": 1, "C": 1, "D": 0, "E": 1}  # A-E: the widest item's letters
    assert (m["top_letter"], m["top_letter_share"], m["top_letter_warning"]) == ("A", 0.5, False)
    assert st.majority_baseline(["B", "A", "B", "A"]) == {"letter": "A", "accuracy": 0.5}  # a tie: the earlier
    assert st.majority_baseline([]) == {"letter": None, "accuracy": 0.0}


def test_a_letter_over_the_share_is_flagged_and_warned():
    records, preds = _case()
    # A on 4 of 8 items is exactly 0.5: not more than the default share
    assert ev.summarize(records, preds, EvaluateParams(bootstrap_samples=50), letters=ALPHABET)["top_letter_warning"] is False
    low = EvaluateParams(bootstrap_samples=50, max_letter_share=0.49)
    m = ev.summarize(records, preds, low, letters=ALPHABET)
    assert m["top_letter_warning"] is True
    # the toy model's collapse: A on 55 of 58 items
    collapsed = st.letter_distribution(["A"] * 55 + ["B", "C", None], list("ABCD"), 0.5)
    assert collapsed == {"predicted_letters": {"A": 55, "B": 1, "C": 1, "D": 0}, "top_letter": "A",
                         "top_letter_share": 0.948276, "top_letter_warning": True}
    assert st.letter_distribution([None, None], list("ABCD"), 0.5)["top_letter"] is None
    metrics = {"base": {"letter": m}, "finetuned": {"letter": {**m, "top_letter_warning": False}}}
    assert ev.letter_warnings(metrics, ["letter"], 0.49) == [
        "base (letter) answers A on 4 of 8 items (50.00% > evaluate.max_letter_share 0.49): it answers by position, "
        "not by the question (majority-letter baseline: E 37.50%, accuracy 50.00%)"]


def test_the_report_shows_sources_option_counts_baseline_and_the_warning():
    records, preds = _case()
    m = ev.summarize(records, preds, EvaluateParams(bootstrap_samples=50, max_letter_share=0.49), letters=ALPHABET)
    metrics = {"base": {"letter": m}, "finetuned": {"letter": m},
               "mcnemar": {"letter": st.mcnemar([p["correct"] for p in preds], [p["correct"] for p in preds])}}
    report = ev.render_report(metrics, ["letter"], max_letter_share=0.49)
    enem = m["by_source"]["enem"]
    assert (f"| base | letter | enem | 3 | 33.33% | {enem['ci95_low']:.2%}-{enem['ci95_high']:.2%} |") in report
    assert "| finetuned | letter | 5 | 4 | 25.00% |" in report
    assert "| base | letter | E | 37.50% | 50.00% | A:4 B:1 C:1 D:0 E:1 | A 50.00% | **warning** |" in report
    assert "WARNING: base (letter) answers A on 4 of 8 items" in report
