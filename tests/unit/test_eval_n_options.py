"""Evaluation of items with any number of options (issue 14): letters per item, metrics per source and
per option count, the majority-letter baseline and the predicted-letter warning. Scoring on the tiny
model is in tests/integration/test_eval_n_options.py."""

from __future__ import annotations

from gabarito import scoring as sc
from gabarito import stats as st
from gabarito.params import EvaluateParams
from gabarito.scoring import INVENTED, VALID, parse_answer
from stages import evaluate as ev

ALPHABET = list("ABCDEFGHIJ")


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
    p = EvaluateParams()
    m = ev.summarize(records, preds, p, letters=ALPHABET)
    assert m["n"] == 8 and m["accuracy"] == 0.5
    src = {k: (v["n"], v["accuracy"]) for k, v in m["by_source"].items()}
    assert src == {"cosmosqa": (4, 0.75), "enem": (3, 0.333333), "unknown": (1, 0.0)}
    assert {k: (v["n"], v["accuracy"]) for k, v in m["by_options"].items()} == {"4": (4, 0.75), "5": (4, 0.25)}
    # each group's interval is Wilson's of that group's items (evaluate.proportion_ci_method), never 0-0
    assert (m["by_source"]["enem"]["ci95_low"], m["by_source"]["enem"]["ci95_high"]) == st.proportion_ci(1, 3)
    assert (m["by_source"]["unknown"]["ci95_low"], m["by_source"]["unknown"]["ci95_high"]) == (0.0, 0.793451)
    exact = ev.summarize(records, preds, EvaluateParams(proportion_ci_method="exact"), letters=ALPHABET)
    assert exact["by_source"]["unknown"]["ci95_high"] == 0.975  # Clopper-Pearson 0/1: 1 - 0.025


def test_majority_baseline_and_predicted_letters():
    records, preds = _case()
    m = ev.summarize(records, preds, EvaluateParams(), letters=ALPHABET)
    # gold letters: A A B C D E E E -> E, 3 of 8
    assert m["majority_baseline"] == {"letter": "E", "accuracy": 0.375}
    assert m["predicted_letters"] == {"A": 4, "B": 1, "C": 1, "D": 0, "E": 1}  # A-E: the widest item's letters
    assert (m["top_letter"], m["top_letter_share"], m["top_letter_warning"]) == ("A", 0.5, False)
    assert st.majority_baseline(["B", "A", "B", "A"]) == {"letter": "A", "accuracy": 0.5}  # a tie: the earlier
    assert st.majority_baseline([]) == {"letter": None, "accuracy": 0.0}


def test_a_letter_over_the_share_is_flagged_and_warned():
    records, preds = _case()
    # A on 4 of 8 items is exactly 0.5: not more than the default share
    assert ev.summarize(records, preds, EvaluateParams(), letters=ALPHABET)["top_letter_warning"] is False
    low = EvaluateParams(max_letter_share=0.49)
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
    m = ev.summarize(records, preds, EvaluateParams(max_letter_share=0.49), letters=ALPHABET)
    metrics = {"base": {"letter": m}, "finetuned": {"letter": m},
               "mcnemar": {"letter": st.mcnemar([p["correct"] for p in preds], [p["correct"] for p in preds])}}
    report = ev.render_report(metrics, ["letter"], max_letter_share=0.49)
    # per source and option count: gabarito/breakdown.py's tables (tests/unit/test_breakdown.py)
    assert "| base | letter | E | 37.50% | 50.00% | A:4 B:1 C:1 D:0 E:1 | A 50.00% | **warning** |" in report
    assert "WARNING: base (letter) answers A on 4 of 8 items" in report
