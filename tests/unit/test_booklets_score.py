"""The scorer of tests/booklets.py judged on its own: it must be right before it judges the exam reader."""

from __future__ import annotations

import pytest

from tests.booklets import inep_booklet, score

TRUTH = [
    {"number": 1, "language": "ingles", "context": "", "question": "The city council changed the use of public "
     "spaces in recent years. O objetivo do texto é", "options": ["informar.", "criticar.", "narrar.", "descrever.",
     "convencer."], "letter": "B", "annulled": False, "needs_figure": False, "page": 2},
    {"number": 1, "language": "espanhol", "context": "", "question": "El ayuntamiento ha cambiado el uso de los "
     "espacios públicos. O objetivo do texto é", "options": ["alertar.", "ironizar.", "relatar.", "negar.",
     "elogiar."], "letter": "D", "annulled": False, "needs_figure": False, "page": 3},
    {"number": 10, "language": None, "context": "Texto comum às duas questões, com um parágrafo inteiro.",
     "question": "A leitura do texto permite inferir que", "options": ["a escola muda.", "a cidade cresce.",
     "o campo resiste.", "a imprensa cala.", "o voto amplia."], "letter": "C", "annulled": False,
     "needs_figure": True, "page": 4},
    {"number": 11, "language": None, "context": "", "question": "Questão anulada pela banca.",
     "options": ["a", "b", "c", "d", "e"], "letter": "A", "annulled": True, "needs_figure": False, "page": 4},
]


def item(t, **change):
    out = {"number": t["number"], "language": t["language"], "context": t["context"], "question": t["question"],
           "answers": list(t["options"]), "label": "ABCDE".index(t["letter"])}
    out.update(change)
    return out


def test_the_truth_as_items_is_all_right():
    s = score([item(t) for t in TRUTH if not t["annulled"]], TRUTH)
    assert (s["n_truth"], s["n_truth_no_figure"], s["right"], s["right_no_figure"]) == (3, 2, 3, 2)
    assert s["share_right_no_figure"] == 1.0 and s["wrong"] == [] and s["missing"] == [] and s["extra"] == []


def test_similar_text_passes_and_whitespace_does_not_count():
    t = TRUTH[0]
    near = item(t, question=t["question"].replace("changed", "chanced").replace(" ", "  \n"))
    assert score([near], TRUTH)["right"] == 1


def test_an_option_below_0_9_fails():
    t = TRUTH[2]
    bad = item(t, answers=["a escola muda.", "a cidade cresce.", "o campo resiste muito mais.", "a imprensa cala.",
                           "o voto amplia."])
    s = score([bad], TRUTH)
    assert s["right"] == 0 and s["wrong"][0]["what"] == ["options"]
    assert score([item(t, answers=t["options"][:4])], TRUTH)["wrong"][0]["what"] == ["options"]


def test_a_wrong_letter_fails():
    s = score([item(TRUTH[2], label=0)], TRUTH)
    assert s["right"] == 0 and s["wrong"][0]["what"] == ["letter"]


def test_the_shared_passage_counts_as_context():
    t = TRUTH[2]
    assert score([item(t, context="")], TRUTH)["wrong"][0]["what"] == ["question"]
    # a reader that glued the passage into the question is as right as one that kept it apart
    assert score([item(t, context="", question=t["context"] + " " + t["question"])], TRUTH)["right"] == 1


def test_two_language_copies_are_matched_by_language():
    en, es = TRUTH[0], TRUTH[1]
    s = score([item(es, id="prova-q01", number=None, language=None, foreign_language="espanhol"),
               item(en, language="inglês")], TRUTH)
    assert s["right"] == 2 and s["duplicates"] == []
    # the Spanish copy answered with the English letter is wrong
    s = score([item(es, label="ABCDE".index(en["letter"]))], TRUTH)
    assert s["wrong"][0]["what"] == ["letter"] and s["wrong"][0]["language"] == "espanhol"


def test_missing_extra_annulled_and_header_leaks_are_listed():
    s = score([item(TRUTH[0]), item(TRUTH[3]), {"number": 99, "question": "x", "answers": [], "label": 0},
               item(TRUTH[2], question=TRUTH[2]["question"] + " ENEM2024")], TRUTH, headers=["ENEM2024"])
    assert s["missing"] == [1] and s["extra"] == [99] and s["annulled_items"] == [11]
    assert s["header_leaks"] == [{"number": 10, "strings": ["ENEM2024"]}]


def test_needs_figure_agreement():
    s = score([item(TRUTH[2], needs_figure=False), item(TRUTH[0], needs_figure=True)], TRUTH)
    assert s["needs_figure"] == {"true_positive": 0, "false_positive": 1, "false_negative": 1, "true_negative": 0}


@pytest.mark.parametrize("colour", ["AMARELO"])
def test_a_generated_booklet_scored_against_itself(colour):
    b = inep_booklet(colour, day=2)
    items = [item(t) for t in b.truth]
    s = score(items, b.truth, headers=b.meta["headers"] + b.meta["footers"] + b.meta["page_codes"])
    assert s["right"] == s["n_truth"] == 89 and s["share_right_no_figure"] == 1.0
    assert s["annulled_items"] == [123] and s["header_leaks"] == []
