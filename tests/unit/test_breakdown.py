"""Per split, source, option count and subject (gabarito/breakdown.py) on a hand-made set whose every
number is worked out below: two splits, two sources, four- and five-option items, two subjects."""

from __future__ import annotations

import pytest

from gabarito import stats as st
from gabarito.breakdown import breakdown, render_breakdown
from gabarito.params import EvaluateParams
from stages import evaluate as ev

ALPHABET = list("ABCDEFGHIJ")
SPEC = [  # id, split, source, options, gold, subject, base's letter (None: no answer), fine-tuned's
    ("r0", "validation", "cosmosqa", 4, "A", None, "A", "A"),
    ("r1", "validation", "cosmosqa", 4, "B", None, "A", "B"),
    ("r2", "validation", "enem", 5, "E", "linguagens", "A", "E"),
    ("r3", "validation", "enem", 5, "E", "matematica", "E", "E"),
    ("r4", "test", "enem", 5, "D", "matematica", "A", "D"),
    ("r5", "test", "enem", 5, "C", "linguagens", "C", "B"),
    ("r6", "test", "cosmosqa", 4, "C", None, None, "C"),
    ("r7", "test", "cosmosqa", 4, "A", None, "B", "A"),
]


def _case(mode: str = "letter"):
    records, preds = [], []
    for item, split, source, n, gold, subject, base, ft in SPEC:
        rec = {"id": item, "split": split, "source": source, "answers": [f"o{j}" for j in range(n)],
               "label": ALPHABET.index(gold)}
        records.append({**rec, "subject": subject} if subject else rec)
        preds += [{"id": item, "model": model, "mode": mode, "label": gold, "prediction": x, "correct": x == gold,
                   "category": "valid" if x else "no_answer"}
                  for model, x in (("base", base), ("finetuned", ft))]
    return records, preds


@pytest.fixture
def table():
    records, preds = _case()
    return breakdown(records, preds, modes=["letter"], letters=ALPHABET, method="wilson")


def test_per_split_with_chance_baseline_and_mcnemar(table):
    assert list(table) == ["split", "source", "options", "subject"]
    assert list(table["split"]) == ["test", "validation"]
    val, test = table["split"]["validation"], table["split"]["test"]
    # two four-option and two five-option items: chance (1/4 + 1/4 + 1/5 + 1/5) / 4
    assert (val["n"], val["chance"], test["chance"]) == (4, 0.225, 0.225)
    assert val["majority_baseline"] == {"letter": "E", "accuracy": 0.5}   # gold A B E E
    assert test["majority_baseline"] == {"letter": "C", "accuracy": 0.5}  # gold D C C A
    assert (val["base"]["letter"]["accuracy"], val["finetuned"]["letter"]["accuracy"]) == (0.5, 1.0)
    assert (val["finetuned"]["letter"]["ci95_low"], val["finetuned"]["letter"]["ci95_high"]) == st.proportion_ci(4, 4)
    # validation: fine-tuned alone right on r1, r2; base alone on none -> p = 2 * 0.5^2
    mc = val["mcnemar"]["letter"]
    assert (mc["n"], mc["only_base_correct"], mc["only_finetuned_correct"], mc["p_value"]) == (4, 0, 2, 0.5)
    assert mc["finetuned_minus_base"] == 0.5 and mc["ci95_low"] < 0.5 < mc["ci95_high"]
    # test: base alone right on r5, fine-tuned alone on r4 r6 r7 -> p = 2 * P(X <= 1 | 4, 1/2) = 2 * 5/16
    mc = test["mcnemar"]["letter"]
    assert (mc["only_base_correct"], mc["only_finetuned_correct"], mc["p_value"]) == (1, 3, 0.625)


def test_per_source_and_option_count_letters_as_far_as_the_items_go(table):
    cosmos, enem = table["source"]["cosmosqa"], table["source"]["enem"]
    assert (cosmos["n"], cosmos["chance"], enem["chance"]) == (4, 0.25, 0.2)
    assert cosmos["majority_baseline"] == {"letter": "A", "accuracy": 0.5}
    # four-option items: A-D only (no E column), and r6's missing answer under "-"
    assert cosmos["base"]["letter"]["predicted_letters"] == {"A": 2, "B": 1, "C": 0, "D": 0, "-": 1}
    assert enem["base"]["letter"]["predicted_letters"] == {"A": 2, "B": 0, "C": 1, "D": 0, "E": 1}
    assert (cosmos["base"]["letter"]["accuracy"], enem["base"]["letter"]["accuracy"]) == (0.25, 0.5)
    assert list(table["options"]) == ["4", "5"]
    assert table["options"]["4"]["base"] == cosmos["base"] and table["options"]["5"]["finetuned"] == enem["finetuned"]


def test_subjects_only_for_items_that_have_one(table):
    subj = table["subject"]
    assert {k: v["n"] for k, v in subj.items()} == {"linguagens": 2, "matematica": 2}
    assert subj["linguagens"]["majority_baseline"] == {"letter": "C", "accuracy": 0.5}  # E and C tie: the earlier
    assert subj["matematica"]["finetuned"]["letter"]["accuracy"] == 1.0
    records, preds = _case()
    bare = [{k: v for k, v in r.items() if k not in ("subject", "split")} for r in records]
    out = breakdown(bare, preds, modes=["letter"], letters=ALPHABET, method="wilson")
    assert "subject" not in out and list(out["split"]) == ["validation"]  # no split field: the validation file's


def test_rendered_tables_have_every_group_with_n_and_no_zero_width_interval(table):
    md = "\n".join(render_breakdown(table, modes=["letter"], method="wilson"))
    low, high = st.proportion_ci(1, 4)
    assert (f"| cosmosqa | 4 | 25.00% | A 50.00% | base | letter | 25.00% | {low:.2%}-{high:.2%} "
            "| A:2 B:1 C:0 D:0 -:1 |") in md
    assert "| test | letter | 4 | 1 | 3 | +50.00 pp |" in md and "| 0.6250 |" in md
    assert "### By subject" in md and "| matematica | 2 |" in md
    assert "0.00%-0.00%" not in md


def test_evaluate_report_carries_the_breakdown():
    records, preds = _case()
    p = EvaluateParams(modes=["letter"])
    metrics = {name: {"letter": ev.summarize(records, [x for x in preds if x["model"] == name], p, letters=ALPHABET)}
               for name in ("base", "finetuned")}
    metrics["mcnemar"] = {"letter": st.mcnemar([x["correct"] for x in preds if x["model"] == "base"],
                                               [x["correct"] for x in preds if x["model"] == "finetuned"])}
    metrics["breakdown"] = breakdown(records, preds, modes=["letter"], letters=ALPHABET, method="wilson")
    report = ev.render_report(metrics, ["letter"], method="wilson")
    assert "## Per split, source, option count and subject" in report and "### By split" in report
    # pooled: base alone right on r5, fine-tuned alone on r1 r2 r4 r6 r7 -> +50 pp
    assert "| letter | 1 | 5 | +50.00 pp |" in report
    assert "0.00%-0.00%" not in report
