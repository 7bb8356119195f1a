"""Evaluation without hand annotation: parsing, statistics, guard rails, open-question metrics."""

from __future__ import annotations

import math

import pytest

from gabarito import scoring as sc
from gabarito import stats as st
from gabarito.io import InputError
from gabarito.params import EvaluateParams
from gabarito.scoring import INVENTED, NONE, OPTION_TEXT, SEVERAL, VALID, parse_answer
from stages import evaluate as ev

L = ["A", "B", "C", "D"]
OPTS = ["Ele estava cansado do trabalho noturno .", "Ele ganhou na loteria .", "A padaria fechou .",
        "Nenhuma das alternativas acima ."]
MARKERS = ["resposta", "letra", "opção", "correta", "certa", "é"]


@pytest.mark.parametrize("text,expected", [
    ("Alternativa B", ("B", VALID)),
    ("alternativa: d", ("D", VALID)),
    ("Alternativa (C)", ("C", VALID)),
    (" Alternativa C\nporque o narrador...", ("C", VALID)),
    ("B)", ("B", VALID)),
    ("(A)", ("A", VALID)),
    ("Alternativa E", (None, INVENTED)),
    ("Alternativa K", (None, INVENTED)),
    ("Alternativa A ou Alternativa C", (None, SEVERAL)),
    ("Alternativa B, Alternativa B", ("B", VALID)),
    ("Alternativa B ou C", (None, SEVERAL)),  # a hedge is not an answer
    ("Alternativas B e C", (None, SEVERAL)),
    ("Alternativa A/B", (None, SEVERAL)),
    ("Alternativa B e o narrador concorda", ("B", VALID)),  # "o" is a word, not a letter
    ("Ele ganhou na loteria.", ("B", OPTION_TEXT)),
    ("A resposta é: ele estava cansado do trabalho noturno", ("A", OPTION_TEXT)),
    ("Ele", (None, NONE)),  # too short to pick an option
    ("O narrador estava feliz com a mudança.", (None, NONE)),
    ("Desculpe, não posso responder.", (None, NONE)),
    ("", (None, NONE)),
    # small words after the prefix are Portuguese, not letters
    ("Não há alternativa a escolher", (None, NONE)),
    ("Nenhuma alternativa e nenhuma resposta", (None, NONE)),
    ("A alternativa a ser marcada é a C", ("C", VALID)),
    ("alternativa b)", ("B", VALID)),
    ("Alternativa Bom dia", (None, NONE)),  # a capital inside a word is not a letter
    # other ways of saying the letter (evaluate.answer_markers)
    ("Alternativa correta: B", ("B", VALID)),
    ("Resposta: B", ("B", VALID)),
    ("A resposta correta é a alternativa D.", ("D", VALID)),
    ("Letra A", ("A", VALID)),
    ("Resposta: B ou C", (None, SEVERAL)),
    # a letter at the start of the line, with or without the option's text
    ("C) A padaria fechou.", ("C", VALID)),
    ("B. Porque ele ganhou na loteria", ("B", VALID)),
    ("b) ele ganhou na loteria", ("B", VALID)),
    ("B ou C", (None, SEVERAL)),
    ("A/C", (None, SEVERAL)),
    ("C) Ele ganhou na loteria.", (None, SEVERAL)),  # letter C, text of B: two answers
    ("Alternativa D: Nenhuma das alternativas acima", ("D", VALID)),
    ("Nenhuma das alternativas acima.", ("D", OPTION_TEXT)),
    ("A narradora saiu cedo.", (None, NONE)),  # "A" the article, not the letter
    ("E então ele foi embora.", (None, NONE)),
    # cut off by max_new_tokens before the letter: "a" is the article, not answer A
    ("A resposta correta é a", (None, NONE)),
    ("A opção correta é a", (None, NONE)),
    ("Resposta: a", ("A", VALID)),  # after a colon, alone: the letter
    ("alternativa a)", ("A", VALID)),
    ("a alternativa correta é a b", ("B", VALID)),  # b, c, d are no Portuguese words
    ("Alternativa b, porque sim", ("B", VALID)),
    ("Letra c", ("C", VALID)),
    # hedges with an article before the second letter
    ("Alternativa B ou a C", (None, SEVERAL)),
    ("É a B ou a C?", (None, SEVERAL)),
    ("(B) e (C)", (None, SEVERAL)),
    # another option named later in an explanation is no contradiction
    ("Alternativa B, porque não é a padaria fechou", ("B", VALID)),
    ("Alternativa B.", ("B", VALID)),
])
def test_parse_answer(text, expected):
    assert parse_answer(text, L, "Alternativa", OPTS, MARKERS) == expected


def test_a_capital_article_before_an_options_text_is_that_option():
    opts = ["O carro quebrou .", "A casa caiu .", "Ela saiu .", "Nada ."]
    assert parse_answer("Resposta: A casa caiu", L, "Alternativa", opts, MARKERS) == ("B", OPTION_TEXT)
    assert parse_answer("Resposta: O carro quebrou", L, "Alternativa", opts, MARKERS) == ("A", OPTION_TEXT)
    assert parse_answer("Resposta: A, porque a casa caiu", L, "Alternativa", opts, MARKERS) == ("A", VALID)
    assert parse_answer("Resposta: A mesma coisa", L, "Alternativa", opts, MARKERS) == ("A", VALID)  # no option


def test_markers_come_from_params():
    assert parse_answer("Resposta: B", L, "Alternativa", OPTS) == (None, NONE)  # no markers given
    assert parse_answer("Resposta: B", L, "Alternativa", OPTS, ["resposta"]) == ("B", VALID)
    assert EvaluateParams().answer_markers == MARKERS


def test_option_text_matches_whole_words_only():
    opts = ["Sim", "ir", "c", "d"]
    assert parse_answer("Assim que ela chegou", L, "Alternativa", opts) == (None, NONE)
    assert parse_answer("partir agora mesmo", L, "Alternativa", opts) == (None, NONE)


def test_option_text_matching_two_options_is_not_an_answer():
    opts = ["Ele foi ao mercado .", "Ele foi ao mercado de novo .", "x", "y"]
    assert parse_answer("ele foi ao mercado", L, "Alternativa", opts) == (None, NONE)


def _preds(correct, categories=None, probs=None):
    return [{"id": str(i), "correct": c, "category": (categories or [VALID] * len(correct))[i],
             **({"probs": probs[i]} if probs else {})} for i, c in enumerate(correct)]


def test_summarize_counts_invalid_answers_as_wrong():
    records = [{"id": str(i), "label": 0, "question_type": t, "none_correct": i == 7}
               for i, t in enumerate(["cause", "cause", "effect", "effect", "fact", "fact", "counterfactual", "cause"])]
    correct = [True, True, False, False, False, True, False, True]
    cats = [VALID, VALID, VALID, INVENTED, NONE, OPTION_TEXT, SEVERAL, VALID]
    m = ev.summarize(records, _preds(correct, cats), EvaluateParams())
    assert m["n"] == 8
    assert m["accuracy"] == 0.5
    assert m["invalid_rate"] == 0.375  # invented, none, several
    assert m["accuracy_valid"] == 0.8  # 4 right of 5 answered (valid + option text)
    assert m["invalid"] == {INVENTED: 1, SEVERAL: 1, NONE: 1}
    assert m["by_type"] == {"cause": 1.0, "counterfactual": 0.0, "effect": 0.0, "fact": 0.5,
                            "none_of_the_above": 1.0}
    assert m["ci95_low"] < 0.5 < m["ci95_high"]
    assert "ece" not in m  # no option probabilities in generate mode


def test_nothing_answered_has_no_valid_only_accuracy():
    records = [{"id": str(i), "label": 0, "question_type": "fact", "none_correct": False} for i in range(3)]
    m = ev.summarize(records, _preds([False] * 3, [NONE, INVENTED, SEVERAL]), EvaluateParams())
    assert m["accuracy"] == 0.0 and m["invalid_rate"] == 1.0
    assert m["accuracy_valid"] is None  # not 0%: there is nothing to be right or wrong about


def test_the_report_shows_a_missing_valid_only_accuracy_as_a_dash(repo_root):
    import json

    metrics = json.loads((repo_root / "metrics/eval.json").read_text())  # the pipeline's own: base never answers
    assert metrics["base"]["generate"]["accuracy_valid"] is None
    report = ev.render_report(metrics, ["letter", "generate"])
    m = metrics["base"]["generate"]
    assert f"| base | generate | {m['n']} | 0.00% | 0.00%-{m['ci95_high']:.2%} | - | 100.00% | - |" in report
    assert m["ci95_high"] > 0  # 0 of n right: the interval is not of zero width


def test_accuracy_interval_narrows_with_n_and_never_collapses():
    small = st.accuracy_ci([True, False] * 10)
    large = st.accuracy_ci([True, False] * 1000)
    assert small["ci95_low"] < large["ci95_low"] < 0.5 < large["ci95_high"] < small["ci95_high"]
    assert st.accuracy_ci([True] * 30)["ci95_low"] < 1.0 == st.accuracy_ci([True] * 30)["ci95_high"]


def test_mcnemar_exact_p_value():
    # base right on 2 items the fine-tuned misses, fine-tuned right on 10 the base misses
    base = [True] * 2 + [False] * 10 + [True] * 5
    ft = [False] * 2 + [True] * 10 + [True] * 5
    out = st.mcnemar(base, ft)
    assert out["only_base_correct"] == 2 and out["only_finetuned_correct"] == 10
    expected = 2 * sum(math.comb(12, i) for i in range(3)) / 2 ** 12
    assert out["p_value"] == round(expected, 6) == 0.038574
    assert st.mcnemar([True, False], [True, False])["p_value"] == 1.0


def test_expected_calibration_error():
    conf = [0.95, 0.95, 0.95, 0.95, 0.55, 0.55]
    correct = [True, True, True, False, True, False]
    ece, curve = st.expected_calibration_error(conf, correct, bins=10)
    # bin 9: conf .95 acc .75 (4 items); bin 5: conf .55 acc .5 (2 items)
    assert ece == pytest.approx(abs(0.75 - 0.95) * 4 / 6 + abs(0.5 - 0.55) * 2 / 6)
    assert [(r["bin"], r["count"]) for r in curve] == [(5, 2), (9, 4)]
    assert st.expected_calibration_error([1.0], [True], 10)[0] == 0.0


def test_open_question_metrics():
    ref = "Seis horas diárias e trinta horas semanais."
    assert sc.exact_match("seis horas diarias e trinta horas semanais", ref) == 1.0
    assert sc.exact_match("seis horas", ref) == 0.0
    assert sc.token_f1("seis horas diárias", ref) == pytest.approx(2 * 1.0 * (3 / 7) / (1 + 3 / 7))
    assert sc.token_f1("nada a ver", ref) == 0.0
    # LCS "seis horas semanais" (3 of 3 predicted, 3 of 7 reference)
    assert sc.rouge_l("seis horas semanais", ref) == pytest.approx(2 * 1.0 * (3 / 7) / (1 + 3 / 7))
    assert sc.rouge_l("semanais horas seis", ref) < sc.rouge_l("seis horas semanais", ref)


def _rec(id_, user):
    return {"id": id_, "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": user},
                                    {"role": "assistant", "content": "Alternativa A"}]}


def test_leak_check_refuses_validation_items_seen_in_training():
    train = [_rec("t1", "Contexto: x\nPergunta: y"), _rec("v9", "outra")]
    ev.check_no_leak([_rec("v1", "Contexto: z\nPergunta: w")], train)
    with pytest.raises(InputError, match="1 validation item.*v9"):
        ev.check_no_leak([_rec("v9", "nova")], train)
    with pytest.raises(InputError, match="v2"):
        ev.check_no_leak([_rec("v2", "contexto:   X\npergunta: Y")], train)  # same text, other id


def test_flipped_items_between_two_runs():
    a = [{"id": "1", "model": "finetuned", "mode": "letter", "correct": True, "prediction": "A", "label": "A"},
         {"id": "2", "model": "finetuned", "mode": "letter", "correct": False, "prediction": "B", "label": "C"},
         {"id": "3", "model": "finetuned", "mode": "letter", "correct": True, "prediction": "D", "label": "D"}]
    b = [{**a[0], "correct": False, "prediction": "B"}, {**a[1], "correct": True, "prediction": "C"}, a[2]]
    rows = st.flipped(a, b, model="finetuned", mode="letter")
    assert [(r["id"], r["change"], r["a"], r["b"]) for r in rows] == [("1", "broken", "A", "B"), ("2", "fixed", "B", "C")]


def test_plot_files_are_the_plots_dvc_yaml_declares(repo_root):
    import yaml

    plots = {"confusion": [{"model": "base", "actual": "A", "predicted": "B"},
                           {"model": "finetuned", "actual": "A", "predicted": "A"}],
             "accuracy_by_type": [{"model": "base", "type": "cause", "accuracy": 0.5},
                                  {"model": "finetuned", "type": "cause", "accuracy": 1.0}],
             "accuracy_by_source": [{"model": "base", "source": "enem", "accuracy": 0.5, "n": 2},
                                    {"model": "finetuned", "source": "enem", "accuracy": 1.0, "n": 2}],
             "calibration": [{"model": "base/letter", "bin": 2, "confidence": 0.25, "accuracy": 0.0, "count": 1}]}
    files = ev.plot_files(plots)
    declared = [p for entry in yaml.safe_load((repo_root / "dvc.yaml").read_text())["plots"] for p in entry
                if p.startswith("metrics/plots/")]
    assert sorted(f"metrics/plots/{name}" for name in files) == sorted(declared)
    assert files["confusion_base.json"] == [plots["confusion"][0]]
    assert files["by_type_finetuned.json"] == [plots["accuracy_by_type"][1]]
    assert files["by_source_base.json"] == [plots["accuracy_by_source"][0]]
    assert files["calibration.json"] == plots["calibration"]


def test_headline_lines():
    m = {"accuracy": 0.5, "accuracy_valid": None, "invalid_rate": 1.0, "n": 4}
    assert ev.headline({"base": m, "finetuned": {**m, "accuracy_valid": 0.75}}, ["generate", "letter"]) == [
        "base (generate): accuracy 50.00% (valid-only -), invalid 100.00%, n=4",
        "finetuned (generate): accuracy 50.00% (valid-only 75.00%), invalid 100.00%, n=4"]
