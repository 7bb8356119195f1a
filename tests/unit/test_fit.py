"""Fitting items longer than train.sft.max_length (gabarito/fit.py) and format's counts of them.

Tokens here are words of the rendered item (a stand-in for the real tokenizer, which the unit tier
does not load): the fitting only needs a count that grows with the passage.
"""

from __future__ import annotations

import pytest

from gabarito.fit import DROPPED, FITS, FITTED, KEPT_WHOLE, MARKER, cut_passage, fit_item, length_summary
from stages import format as F

PASSAGE = " ".join(f"w{i:02d}" for i in range(40))  # w00 ... w39
QUESTION = "Qual palavra vem primeiro no texto?"
ANSWERS = ["w00 é a primeira", "w39 é a primeira", "nenhuma delas", "todas elas"]


def item(context=PASSAGE, question=QUESTION, answers=ANSWERS, **extra):
    return {"id": "i1", "kind": "mcq", "context": context, "question": question, "answers": list(answers),
            "label": 0, "source": "enem", **extra}


def n_tokens(rec: dict) -> int:
    """Words of the whole rendered item: passage, question, options and a 2-word answer."""
    return len(" ".join([rec.get("context") or "", rec["question"], *rec.get("answers", [])]).split()) + 2


BASE = n_tokens(item(context=""))  # question + options + answer: 21 words


def test_an_item_that_fits_comes_back_untouched():
    rec = item()
    out, outcome, tokens = fit_item(rec, n_tokens, BASE + 40, "cut_end")
    assert (out, outcome, tokens) == (rec, FITS, BASE + 40)


@pytest.mark.parametrize("how, expected", [
    ("cut_end", "w00 w01 w02 w03 w04 w05 w06 w07 w08 [...]"),
    ("cut_start", "[...] w31 w32 w33 w34 w35 w36 w37 w38 w39"),
    ("cut_middle", "w00 w01 w02 w03 w04 w05 w06 w07 w08 w09 [...] w30 w31 w32 w33 w34 w35 w36 w37 w38 w39"),
])
def test_the_passage_is_cut_on_the_chosen_side_with_the_marker_and_nothing_else_is(how, expected):
    limit = BASE + (21 if how == "cut_middle" else 10)  # room for the marker and 9 (or 20) words
    out, outcome, tokens = fit_item(item(), n_tokens, limit, how)
    assert outcome == FITTED and tokens == BASE + 40
    assert out["context"] == expected
    # the question, the options and the answer are never cut
    assert (out["question"], out["answers"], out["label"]) == (QUESTION, ANSWERS, 0)
    # the longest passage that fits: one more word would not
    assert n_tokens(out) == limit
    assert n_tokens({**out, "context": cut_passage(PASSAGE, len(out["context"].split()), how)}) > limit


def test_the_cut_keeps_the_passages_own_line_breaks():
    text = "Primeiro parágrafo do texto.\n\nSegundo parágrafo, mais longo que o primeiro."
    assert cut_passage(text, 6, "cut_end") == "Primeiro parágrafo do texto.\n\nSegundo parágrafo, [...]"
    assert cut_passage(text, 4, "cut_start") == f"{MARKER} longo que o primeiro."
    assert cut_passage(text, 99, "cut_middle") == text


def test_an_item_whose_question_and_options_alone_are_too_long_is_dropped_not_crashed():
    for rec in (item(), item(context="")):  # with a passage (even the marker alone is too much), and without
        assert fit_item(rec, n_tokens, BASE - 1, "cut_end") == (None, DROPPED, n_tokens(rec))


def test_drop_leaves_out_an_item_that_could_have_been_fitted():
    assert fit_item(item(), n_tokens, BASE + 10, "drop") == (None, DROPPED, BASE + 40)


def test_length_summary_gives_median_p95_and_max_against_the_limit():
    assert length_summary(list(range(1, 21)), 18) == {"n": 20, "median": 10.5, "p95": 19, "max": 20,
                                                       "over_max_length": 2}
    assert length_summary([], 512)["n"] == 0


# --- format: where the fitting is called, and what it counts -------------------------------------------
def test_format_fits_training_items_and_never_drops_a_scored_one():
    long_q = item(context="", question=QUESTION + " " + " ".join(["muito"] * 30), id="long")
    records = [item(id="a"), item(id="b", context="Curto."), long_q]
    kept, rows = F.fit_records(records, "train", n_tokens, max_length=BASE + 10, how="cut_end")
    assert [r["id"] for r in kept] == ["a", "b"]
    assert kept[0]["fitted"] == "cut_end" and kept[0]["tokens_before_fit"] == BASE + 40 and "fitted" not in kept[1]
    assert [r["outcome"] for r in rows] == [FITTED, FITS, DROPPED]
    # validation and test keep every item: cut (at the end even under fit: drop), or whole when it cannot be
    kept, rows = F.fit_records(records, "test", n_tokens, max_length=BASE + 10, how="drop")
    assert [r["id"] for r in kept] == ["a", "b", "long"] and kept[2] == long_q
    assert kept[0]["context"].endswith(MARKER) and kept[0]["fitted"] == "cut_end"
    assert [r["outcome"] for r in rows] == [FITTED, FITS, KEPT_WHOLE]


def test_open_questions_are_counted_together():
    rec = {"id": "o1", "kind": "open", "question": "Qual o prazo?", "answer": "Dois anos.", "source": "qa.json[3]"}
    _, rows = F.fit_records([rec], "train", lambda r: 10, max_length=512, how="cut_end")
    assert rows == [{"split": "train", "source": "open", "tokens": 10, "outcome": FITS}]


def test_format_counts_per_split_and_source_and_warns_in_one_line():
    rows = [{"split": "train", "source": "enem", "tokens": 600, "outcome": FITTED},
            {"split": "train", "source": "enem", "tokens": 900, "outcome": DROPPED},
            {"split": "test", "source": "enem2022", "tokens": 700, "outcome": FITTED},
            {"split": "validation", "source": "cosmosqa", "tokens": 200, "outcome": FITS}]
    report = F.fit_report(rows, max_length=512, how="cut_end")
    assert report["fitted"] == {"test": {"enem2022": 1}, "train": {"enem": 1}} and report["fitted_total"] == 2
    assert report["dropped"] == {"train": {"enem": 1}} and report["kept_whole_total"] == 0
    assert report["tokens_by_source"]["enem"] == {"n": 2, "median": 750.0, "p95": 900, "max": 900,
                                                 "over_max_length": 2}
    line = F.fit_warning(report, "metrics/format.json")
    assert line.startswith("format: WARNING: 3 item(s) longer than train.sft.max_length=512 tokens")
    assert "fitted (passage cut, marked [...]) {'test': {'enem2022': 1}, 'train': {'enem': 1}}" in line
    assert "dropped {'train': {'enem': 1}}" in line and "scored whole" not in line
    assert F.fit_warning(F.fit_report(rows[3:], max_length=512, how="cut_end"), "m.json") is None
