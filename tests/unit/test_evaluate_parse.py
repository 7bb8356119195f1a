"""The answer parser files every output under one category, as people once did by hand."""

from __future__ import annotations

import pytest

from stages.evaluate import INVENTED, NONE, SEVERAL, VALID, parse_answer, score

L = ["A", "B", "C", "D"]


@pytest.mark.parametrize("text,expected", [
    ("Alternativa B", ("B", VALID)),
    ("alternativa: d", ("D", VALID)),
    (" Alternativa C\nporque o narrador...", ("C", VALID)),
    ("B)", ("B", VALID)),
    ("(A)", ("A", VALID)),
    ("Alternativa E", (None, INVENTED)),
    ("Alternativa K", (None, INVENTED)),
    ("Alternativa A ou Alternativa C", (None, SEVERAL)),
    ("Alternativa B, Alternativa B", ("B", VALID)),
    ("O narrador estava cansado porque trabalhava à noite.", (None, NONE)),
    ("Desculpe, não posso responder.", (None, NONE)),
    ("", (None, NONE)),
])
def test_parse_answer(text, expected):
    assert parse_answer(text, L, "Alternativa") == expected


def test_score_counts_invalid_answers_as_wrong():
    records = [{"id": str(i), "label": i % 4} for i in range(8)]
    outputs = ["Alternativa A", "Alternativa B", "Alternativa A", "Alternativa E",
               "blá", "Alternativa B", "Alternativa A ou B? Alternativa C", "Alternativa D"]
    metrics, preds = score(records, outputs, L, "Alternativa", "base")
    # correct: items 0, 1, 5 (label 1 -> B), 7 (label 3 -> D)
    assert metrics["n"] == 8
    assert metrics["accuracy"] == 0.5
    assert metrics["invalid_rate"] == 0.375
    assert metrics["accuracy_valid"] == 0.8
    assert metrics["invalid"] == {INVENTED: 1, SEVERAL: 1, NONE: 1}
    assert [p["correct"] for p in preds] == [True, True, False, False, False, True, False, True]
