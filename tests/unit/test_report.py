"""The experiment-vs-baseline report: paired deltas, McNemar, params diff, flips, rendering."""

from __future__ import annotations

import json
import math
import random
from html.parser import HTMLParser

import pytest

from gabarito.io import InputError
from gabarito.params import EvaluateParams
from gabarito.scoring import VALID
from gabarito.stats import proportion_ci
from gabarito.tools import report as rp
from stages.evaluate import summarize

N = 100
IDS = [f"q{i:03d}" for i in range(N)]
TYPES = ["cause", "effect", "fact", "counterfactual"]
BASELINE_RIGHT = set(range(50))                           # 50 right
FIXED = set(range(50, 75))                                # 25 the current run gets right in addition
BROKEN = set(range(5))                                    # 5 it gets wrong that the baseline got right
CURRENT_RIGHT = (BASELINE_RIGHT - BROKEN) | FIXED         # 70 right
SCRIPT = 'Por que <script>alert("x")</script> & "aspas" | barra?'


def _records():
    return [{"id": i, "question_type": TYPES[k % 4], "question": f"Pergunta número {k} sobre o texto?"}
            for k, i in enumerate(IDS)]


def _preds(model: str, right: set[int]) -> list[dict]:
    out = []
    for k, i in enumerate(IDS):
        ok = k in right
        out.append({"id": i, "model": model, "mode": "letter", "output": "A" if ok else "B", "category": VALID,
                    "prediction": "A" if ok else "B", "label": "A", "correct": ok,
                    "probs": [0.7, 0.1, 0.1, 0.1] if ok else [0.2, 0.6, 0.1, 0.1]})
    return out


def _side(right: set[int], *, params: dict, train: dict) -> dict:
    """A side as load_side returns it, with metrics made by evaluate.summarize itself."""
    records = _records()
    p = EvaluateParams()
    metrics, preds = {}, []
    for model, r in (("base", set(range(30))), ("finetuned", right)):  # the base model does not change
        pr = _preds(model, r)
        m = summarize(records, pr, p)
        metrics[model] = {"letter": m, **{k: m[k] for k in ("accuracy", "accuracy_valid", "invalid_rate", "n")}}
        preds += pr
    return {"label": "x", "metrics": metrics, "predictions": preds, "train": train, "params": params,
            "questions": {r["id"]: r["question"] for r in records}}


PARAMS_A = {"train": {"lora": {"r": 16, "lora_alpha": 16, "lora_dropout": 0.05},
                      "sft": {"learning_rate": 4e-5}}, "evaluate": {"modes": ["letter"], "limit": None}}
PARAMS_B = {"train": {"lora": {"r": 8, "lora_alpha": 16, "use_rslora": True},
                      "sft": {"learning_rate": 4e-5}}, "evaluate": {"modes": ["letter", "generate"], "limit": None}}


@pytest.fixture
def sides():
    a = _side(BASELINE_RIGHT, params=PARAMS_A, train={"train_loss": 3.25, "best_eval_loss": 2.0, "steps": 114})
    b = _side(CURRENT_RIGHT, params=PARAMS_B, train={"train_loss": 3.0, "best_eval_loss": 2.5, "steps": 100})
    b["questions"]["q050"] = SCRIPT  # a fixed item whose question holds markup
    return a, b


def _build(a, b, **kw):
    return rp.build_report(a, b, labels=("main", "workspace"),
                           plots=["metrics/plots/by_type_finetuned.json"], baseline_rev="main", **kw)


def _row(report, model, mode="letter"):
    return next(r for r in report["accuracy"] if r["model"] == model and r["mode"] == mode)


def test_accuracy_delta_with_paired_interval_and_mcnemar(sides):
    report = _build(*sides)
    ft = _row(report, "finetuned")
    assert (ft["a"], ft["b"], ft["delta"]) == (0.5, 0.7, 0.2)
    p = ft["paired"]
    assert (p["n"], p["fixed"], p["broken"]) == (100, 25, 5) and (ft["n_a"], ft["n_b"], ft["shared"]) == (100, 100, 100)
    # per-item differences: +1 x25, -1 x5, 0 x70: the paired Wald interval is 0.2 +- 1.96 * sqrt(30 - 20**2/100)/100
    # = 0.2 +- 0.10; Newcombe's is close to it here, a little shifted towards 0.5
    assert 0.09 < p["ci95_low"] < 0.12 and 0.28 < p["ci95_high"] < 0.31
    exact = 2 * sum(math.comb(30, i) for i in range(5 + 1)) / 2 ** 30
    assert p["p_value"] == pytest.approx(exact, abs=1e-6)
    base = _row(report, "base")
    # the same answers on 100 items: delta 0, a narrow interval (the pairs agree), but never of zero width
    assert base["delta"] == 0.0 and -0.05 < base["paired"]["ci95_low"] < 0 < base["paired"]["ci95_high"] < 0.05
    assert base["paired"]["p_value"] == 1.0
    assert report["item_sets"] == []  # the same items: no line about them


def test_paired_interval_is_far_narrower_than_unpaired(sides):
    p = _row(_build(*sides), "finetuned")["paired"]
    # independent per-run 95% intervals at n=100 are ~+-0.1 each: subtracting them would give ~0.4 wide
    wa, wb = (proportion_ci(k, 100) for k in (50, 70))
    assert p["ci95_high"] - p["ci95_low"] < 0.25 < (wa[1] - wa[0]) + (wb[1] - wb[0])


def test_only_items_on_both_sides_are_paired(sides):
    a, b = sides
    b["predictions"] = [r for r in b["predictions"] if r["id"] not in {"q098", "q099"}]  # both wrong in either
    row = _row(_build(a, b), "finetuned")
    assert row["paired"]["n"] == 98 and (row["paired"]["fixed"], row["paired"]["broken"]) == (25, 5)
    assert (row["n_a"], row["n_b"], row["shared"]) == (100, 98, 98)


def test_different_item_sets_are_compared_on_the_shared_items_and_said_first(sides):
    a, b = sides
    # the current run scored 20 items fewer (q080-q099, all wrong on both sides) and 10 new ones, all right:
    # over its own items it has 80/90; over the 80 shared ones it has 70 against the baseline's 50
    b["predictions"] = [r for r in b["predictions"] if int(r["id"][1:]) < 80] + [
        {"id": f"n{k}", "model": m, "mode": "letter", "prediction": "A", "label": "A", "correct": True}
        for m in ("base", "finetuned") for k in range(10)]
    b["metrics"]["finetuned"]["letter"].update(accuracy=round(80 / 90, 6), n=90)
    report = _build(a, b)
    ft = _row(report, "finetuned")
    assert (ft["n_a"], ft["n_b"], ft["shared"]) == (100, 90, 80)
    assert (ft["a"], ft["b"], ft["delta"]) == (0.625, 0.875, 0.25)  # 50/80, 70/80: not 0.5 against 0.889
    assert (ft["a_all"], ft["b_all"]) == (0.5, 0.888889)
    assert (ft["paired"]["fixed"], ft["paired"]["broken"]) == (25, 5)
    line = ("The item sets differ: main scored 100 items, workspace 90, both 80; accuracies and deltas are on "
            "the 80 shared items (other tables: each side on its own items).")
    assert report["item_sets"] == [line]  # base and finetuned differ alike: one line
    md = rp.render_markdown(report)
    assert md.split("\n")[2] == line  # first, right under the title
    assert "| finetuned | letter | 62.50% | 87.50% | +25.00 pp |" in md and "| 100 | 90 | 80 | 25 | 5 |" in md
    page = rp.render_html(report)
    _parse(page)
    assert page.index(line) < page.index("Accuracy counts invalid answers")


def test_without_predictions_different_counts_are_said(sides):
    a, b = sides
    a = {**a, "predictions": None}
    b["metrics"]["finetuned"]["letter"]["n"] = 90
    report = _build(a, b)
    assert report["item_sets"] == ["The item sets differ: main scored 100 items, workspace 90; without per-item "
                                   "predictions on both sides the deltas below are between different items."]


def test_secondary_and_training_deltas(sides):
    report = _build(*sides)
    rows = {(r["model"], r["metric"]): r for r in report["metrics"]}
    assert rows[("finetuned", "invalid_rate")]["delta"] == 0.0
    assert rows[("finetuned", "accuracy_valid")]["delta"] == 0.2
    ece = rows[("finetuned", "ece")]
    assert ece["delta"] == round(ece["b"] - ece["a"], 6)
    assert report["train"] == [{"metric": "best_eval_loss", "a": 2.0, "b": 2.5, "delta": 0.5},
                               {"metric": "train_loss", "a": 3.25, "b": 3.0, "delta": -0.25}]


def test_params_that_differ_by_dotted_key(sides):
    assert rp.params_diff(PARAMS_A, PARAMS_B) == [
        {"key": "evaluate.modes", "a": ["letter"], "b": ["letter", "generate"], "change": "changed"},
        {"key": "train.lora.lora_dropout", "a": 0.05, "b": None, "change": "removed"},
        {"key": "train.lora.r", "a": 16, "b": 8, "change": "changed"},
        {"key": "train.lora.use_rslora", "a": None, "b": True, "change": "added"},
    ]
    md = rp.render_markdown(_build(*sides))
    assert "| train.lora.r | 16 | 8 |" in md
    assert "| train.lora.use_rslora | (absent) | true |" in md
    assert '| evaluate.modes | ["letter"] | ["letter", "generate"] |' in md
    assert "evaluate.limit" not in md  # null on both sides: not a difference


def test_flipped_items_with_question_text(sides):
    report = _build(*sides, question_width=30)
    ft = next(f for f in report["flipped"] if f["model"] == "finetuned")
    assert (ft["fixed"], ft["broken"]) == (25, 5)
    assert [r["id"] for r in ft["broken_items"]] == [f"q{k:03d}" for k in range(5)]
    first = ft["fixed_items"][0]
    assert (first["id"], first["a"], first["b"], first["label"]) == ("q050", "B", "A", "A")
    assert len(first["question"]) == 30 and first["question"].endswith("…")
    base = next(f for f in report["flipped"] if f["model"] == "base")
    assert (base["fixed"], base["broken"]) == (0, 0)
    # counts stay complete when the lists are cut
    short = next(f for f in _build(*sides, max_flipped=3)["flipped"] if f["model"] == "finetuned")
    assert (short["fixed"], len(short["fixed_items"])) == (25, 3)
    assert "Fixed in workspace (first 3)" in rp.render_markdown(_build(*sides, max_flipped=3))


def test_accuracy_by_type_side_by_side(sides):
    report = _build(*sides)
    block = next(b for b in report["by_type"] if b["model"] == "finetuned")
    rows = {r["type"]: r for r in block["rows"]}
    # 25 items per type (k % 4 == 0 is cause): baseline right on 0-49 (13 causes), current on 5-74 (17)
    assert (rows["cause"]["a"], rows["cause"]["b"], rows["cause"]["delta"]) == (0.52, 0.68, 0.16)
    md = rp.render_markdown(report)
    assert "### finetuned, letter" in md and "| cause | 52.00% | 68.00% | +16.00 pp |" in md


class StrictHTML(HTMLParser):
    """Fails on any end tag that does not close the innermost open element."""
    VOID = {"meta", "br", "hr", "img", "input", "link"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.tags, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse(doc: str) -> StrictHTML:
    parser = StrictHTML()
    parser.feed(doc)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    return parser


def test_the_plots_command_names_the_current_side_unless_it_is_the_workspace(sides):
    assert _build(*sides)["plots"]["command"] == "dvc plots diff main"
    assert _build(*sides, current_rev="workspace")["plots"]["command"] == "dvc plots diff main"
    assert _build(*sides, current_rev="exp-lora r32")["plots"]["command"] == "dvc plots diff main 'exp-lora r32'"


def test_html_is_well_formed_self_contained_and_escaped(sides):
    doc = rp.render_html(_build(*sides))
    parsed = _parse(doc)
    assert parsed.tags.count("svg") == 1 + 2  # accuracy per model/mode + by type for base and finetuned
    assert "script" not in parsed.tags and "http://" not in doc.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "&lt;script&gt;" in doc and "<script" not in doc
    assert any("<script>alert" in t for t in parsed.text)  # the question survives, as text
    assert "dvc plots diff main" in doc and "metrics/plots/by_type_finetuned.json" in doc


def test_markdown_escapes_data(sides):
    md = rp.render_markdown(_build(*sides))
    assert "<script" not in md and "&lt;script&gt;" in md
    assert "aspas" in md and "\\| barra" in md  # a | in a question must not split the table cell


def test_labels_from_data_are_escaped(sides):
    a, b = sides
    report = rp.build_report(a, b, labels=("<b>main</b>", "exp & co"))
    doc = rp.render_html(report)
    _parse(doc)
    assert "<b>main" not in doc and "&lt;b&gt;main&lt;/b&gt;" in doc and "exp &amp; co" in doc


def test_same_input_same_bytes(sides):
    a, b = sides
    md, doc = rp.render_markdown(_build(a, b)), rp.render_html(_build(a, b))
    shuffled = {**b, "predictions": random.Random(7).sample(b["predictions"], len(b["predictions"]))}
    assert rp.render_markdown(_build(a, shuffled)) == md  # pairing by sorted id: file order does not matter
    assert rp.render_html(_build(a, b)) == doc
    assert json.dumps(_build(a, b), sort_keys=True) == json.dumps(_build(a, b), sort_keys=True)


def test_without_predictions_the_deltas_still_render(sides):
    a, b = sides
    a = {**a, "predictions": None, "train": None, "questions": None}
    report = _build(a, b)
    ft = _row(report, "finetuned")
    assert ft["delta"] == 0.2 and ft["paired"] is None
    assert report["flipped"] == [] and report["train"] == []
    assert any("No per-item predictions for main" in n for n in report["notes"])
    _parse(rp.render_html(report))
    assert ("| finetuned | letter | 50.00% | 70.00% | +20.00 pp | - | 100 | 100 | - | - | - | - |"
            in rp.render_markdown(report))


def test_only_models_and_modes_present_on_both_sides(sides):
    a, b = sides
    b["metrics"]["finetuned"]["generate"] = {**b["metrics"]["finetuned"]["letter"]}
    b["metrics"]["finetuned"]["open"] = {"n": 3, "token_f1": 0.1}  # not a mode: no accuracy
    report = _build(a, b)
    assert [(r["model"], r["mode"]) for r in report["accuracy"]] == [("base", "letter"), ("finetuned", "letter")]


def test_load_side_reads_through_the_given_callable():
    files = {
        "metrics/eval.json": json.dumps({"finetuned": {"letter": {"accuracy": 0.5, "n": 2}}}),
        "metrics/predictions.jsonl": '{"id": "1", "model": "finetuned", "mode": "letter", "correct": true}\n\n',
        "params.yaml": "train:\n  lora:\n    r: 16  # a comment\n",
        "data/processed/validation.jsonl": '{"id": "1", "question": "Qual?"}\n{"id": "o1", "reference": "x"}\n',
    }
    side = rp.load_side(files.get, label="main", metrics="metrics/eval.json", predictions="metrics/predictions.jsonl",
                        train="metrics/train.json", params="params.yaml", validation="data/processed/validation.jsonl")
    assert side["metrics"]["finetuned"]["letter"]["accuracy"] == 0.5
    assert side["predictions"] == [{"id": "1", "model": "finetuned", "mode": "letter", "correct": True}]
    assert side["train"] is None  # absent: no training deltas, not an error
    assert side["params"] == {"train": {"lora": {"r": 16}}}
    assert side["questions"] == {"1": "Qual?"}
    with pytest.raises(InputError, match="main: metrics/eval.json not found"):
        rp.load_side({}.get, label="main", metrics="metrics/eval.json")
    with pytest.raises(InputError, match="main:metrics/predictions.jsonl:2: not valid JSON"):
        rp.load_side({**files, "metrics/predictions.jsonl": "{}\n{oops\n"}.get, label="main",
                     metrics="metrics/eval.json", predictions="metrics/predictions.jsonl")


def test_workspace_reader(tmp_path):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/eval.json").write_text("{}", encoding="utf-8")
    read = rp.workspace_reader(tmp_path)
    assert read("metrics/eval.json") == "{}" and read("metrics/none.json") is None


def test_plot_files_come_from_dvc_yaml(repo_root):
    import yaml

    assert rp.plot_files({"plots": ["a.json", {"b.json": {"x": "step"}}]}) == ["a.json", "b.json"]
    assert rp.plot_files({}) == []
    files = rp.plot_files(yaml.safe_load((repo_root / "dvc.yaml").read_text()))
    assert "metrics/plots/calibration.json" in files


def test_compare_lines_and_a_predictions_file(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "1", "model": "finetuned", "mode": "letter", "correct": true, "prediction": "A", '
                    '"label": "A"}\n', encoding="utf-8")
    assert rp.load_predictions(str(path), "ignored") == [{"id": "1", "model": "finetuned", "mode": "letter",
                                                          "correct": True, "prediction": "A", "label": "A"}]
    rows = [{"id": "1", "label": "A", "a": "A", "b": None, "change": "broken"},
            {"id": "2", "label": "C", "a": "B", "b": "C", "change": "fixed"}]
    assert rp.describe_flips(rows, a="main", b="workspace", model="finetuned", mode="letter") == [
        "2 items flipped (finetuned, letter): 1 fixed, 1 broken in workspace",
        "  broken  1                    label A  main: A  workspace: -",
        "  fixed   2                    label C  main: B  workspace: C"]


# --- issue 14: any number of options, per source, the majority baseline and the letter warning -----------
def _mixed_side(predicted: list[str | None]) -> dict:
    """Six items: 3 Cosmos QA (4 options, gold A B C), 3 ENEM (5 options, gold E E D)."""
    gold = ["A", "B", "C", "E", "E", "D"]
    records = [{"id": f"m{k}", "answers": ["o"] * (4 if k < 3 else 5), "label": "ABCDE".index(g),
                "source": "cosmosqa" if k < 3 else "enem", "question_type": "fact", "question": f"Q{k}?"}
               for k, g in enumerate(gold)]
    preds = [{"id": r["id"], "model": "finetuned", "mode": "letter", "category": VALID, "prediction": x,
              "label": g, "correct": x == g} for r, g, x in zip(records, gold, predicted)]
    m = summarize(records, preds, EvaluateParams(max_letter_share=0.5), letters=list("ABCDEFGHIJ"))
    return {"label": "x", "metrics": {"finetuned": {"letter": m}}, "predictions": preds,
            "questions": {r["id"]: r["question"] for r in records}}


def test_report_per_source_and_option_count_with_baseline_and_letter_warning():
    a = _mixed_side(["A", "A", "A", "A", "A", "A"])   # A on every item: warned
    b = _mixed_side(["A", "B", "D", "E", "E", "E"])   # 4 right
    rep = rp.build_report(a, b, labels=("main", "workspace"))
    rows = {r["group"]: r for r in rep["by_source"][0]["rows"]}
    assert (rows["enem"]["a"]["n"], rows["enem"]["a"]["accuracy"], rows["enem"]["b"]["accuracy"]) == (3, 0.0, 0.666667)
    assert rows["enem"]["delta"] == 0.666667 and rows["cosmosqa"]["delta"] == 0.333334
    assert [r["group"] for r in rep["by_options"][0]["rows"]] == ["4", "5"]
    assert [(r["side"], r["baseline"], r["top_letter"], r["top_letter_share"], r["warning"]) for r in rep["letters"]] == [
        ("main", {"letter": "E", "accuracy": 0.333333}, "A", 1.0, True),
        ("workspace", {"letter": "E", "accuracy": 0.333333}, "E", 0.5, False)]
    assert ("Warning: in main, finetuned (letter) answers A on 6 of 6 items (100.00%, more than "
            "evaluate.max_letter_share): it answers by position, not by the question.") in rep["notes"]
    md = rp.render_markdown(rep)
    enem_b = b["metrics"]["finetuned"]["letter"]["by_source"]["enem"]
    # Wilson's interval of 0/3 is 0-56.15%, never 0.00%-0.00% (scipy's, checked in test_stats)
    assert (f"| enem | 0.00% (n=3, 0.00%-56.15%) | 66.67% (n=3, {enem_b['ci95_low']:.2%}-{enem_b['ci95_high']:.2%}) "
            "| +66.67 pp |") in md
    assert "| finetuned | letter | main | 6 | 16.67% | E 33.33% | A:6 B:0 C:0 D:0 E:0 | A 100.00% | warning |" in md
    page = rp.render_html(rep)
    assert "<h2>Accuracy by source (each side on its own items: n and 95% interval)</h2>" in page and "A:6 B:0" in page


def test_report_against_a_run_from_before_per_source_metrics(sides):
    a, b = sides
    for m in a["metrics"].values():  # an old eval.json: none of the new keys
        for key in ("by_source", "by_options", "majority_baseline", "predicted_letters", "top_letter",
                    "top_letter_share", "top_letter_warning"):
            m["letter"].pop(key)
    rep = _build(a, b)
    assert [r["side"] for r in rep["letters"]] == ["workspace", "workspace"]
    assert all(r["a"] is None for block in rep["by_source"] for r in block["rows"])
    assert "| unknown | - | 70.00% (n=100," in rp.render_markdown(rep)


def test_compare_lists_flips_on_five_option_items(tmp_path):
    from tests.cli_runner import invoke

    rows = [{"id": "e1", "model": "finetuned", "mode": "letter", "label": "E", "prediction": "A", "correct": False},
            {"id": "e2", "model": "finetuned", "mode": "letter", "label": "D", "prediction": "D", "correct": True}]
    old, new = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    old.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    new.write_text("".join(json.dumps({**r, "prediction": p, "correct": p == r["label"]}) + "\n"
                           for r, p in zip(rows, ["E", "E"])), encoding="utf-8")
    result = invoke(["compare", "a.jsonl", "b.jsonl"], tmp_path)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "2 of 2 shared items flipped (finetuned, letter): 1 fixed, 1 broken in b.jsonl",
        "  fixed   e1                   label E  a.jsonl: A  b.jsonl: E",
        "  broken  e2                   label D  a.jsonl: D  b.jsonl: E"]


def test_compare_says_first_when_the_item_sets_differ(tmp_path):
    from tests.cli_runner import invoke

    def rows(ids_ok):
        return "".join(json.dumps({"id": i, "model": "finetuned", "mode": "letter", "label": "A", "correct": ok,
                                   "prediction": "A" if ok else "B"}) + "\n" for i, ok in ids_ok)

    (tmp_path / "a.jsonl").write_text(rows([("q1", False), ("q2", True), ("q3", True)]), encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(rows([("q1", True), ("q2", True), ("q4", True), ("q5", False)]), encoding="utf-8")
    result = invoke(["compare", "a.jsonl", "b.jsonl"], tmp_path)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:2] == [
        "The item sets differ: a.jsonl scored 3 items, b.jsonl 4, both 2; accuracies and deltas are on the 2 "
        "shared items (other tables: each side on its own items).",
        "1 of 2 shared items flipped (finetuned, letter): 1 fixed, 0 broken in b.jsonl"]
