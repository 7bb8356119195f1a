"""What evaluate writes for people to read: the plot rows (accuracy with n by question type and by source)
and metrics/headline.json; and the offline page template scripts/plots.py builds for dvc plots."""

from __future__ import annotations

import importlib.util
import json

import pytest
import yaml

from gabarito import io
from gabarito.params import EvaluateParams
from gabarito.scoring import NONE, VALID
from gabarito.stats import proportion_ci
from stages import evaluate as ev

P = EvaluateParams(modes=["letter", "generate"])
# four items: two types, sources "enem", "cosmosqa" and one with none; enem's have five options (A-E),
# the others four; every gold answer is A and no model ever answers E
FOUR, FIVE = ["a", "b", "c", "d"], ["a", "b", "c", "d", "e"]
RECORDS = [{"id": "1", "question_type": "cause", "source": "enem", "answers": FIVE, "label": 0},
           {"id": "2", "question_type": "cause", "source": "cosmosqa", "answers": FOUR, "label": 0},
           {"id": "3", "question_type": "fact", "answers": FOUR, "label": 0},
           {"id": "4", "question_type": "fact", "source": "enem", "answers": FIVE, "label": 0}]
RIGHT = {("base", "letter"): [True, False, False, True], ("finetuned", "letter"): [True, True, False, True],
         ("base", "generate"): [False, False, False, False], ("finetuned", "generate"): [True, True, True, False]}


def predictions() -> list[dict]:
    out = []
    for (model, mode), right in RIGHT.items():
        for rec, ok in zip(RECORDS, right, strict=True):
            answered = ok or mode == "letter"  # generate's wrong answers are unanswered here
            out.append({"id": rec["id"], "model": model, "mode": mode, "correct": ok, "label": "A",
                        "prediction": "A" if ok else ("B" if answered else None),
                        "category": VALID if answered else NONE,
                        **({"probs": [0.7, 0.1, 0.1, 0.1]} if mode == "letter" else {})})
    return out


def detailed_metrics() -> dict:
    """eval.json's shape, made by evaluate's own summarize (and its copy of the primary mode at the top)."""
    preds = predictions()
    metrics = {}
    for name in ("base", "finetuned"):
        metrics[name] = {mode: ev.summarize(RECORDS, [p for p in preds if p["model"] == name and p["mode"] == mode], P)
                         for mode in P.modes}
        metrics[name].update({k: metrics[name]["letter"][k] for k in ("accuracy", "accuracy_valid", "invalid_rate", "n")})
    return metrics


def bars(rows: list[dict], key: str) -> list[tuple]:
    return [(r["model"], r[key], r["accuracy"], r["n"], r["chance"]) for r in rows]


def test_accuracy_by_type_and_by_source_carry_n_and_use_the_primary_mode():
    plots = ev.plot_data(RECORDS, predictions(), P)
    # chance: the mean of 1/options of the group's items (cause: one five- and one four-option item)
    assert bars(plots["accuracy_by_type"], "type") == [
        ("base", "cause", 0.5, 2, 0.225), ("base", "fact", 0.5, 2, 0.225),
        ("finetuned", "cause", 1.0, 2, 0.225), ("finetuned", "fact", 0.5, 2, 0.225)]
    # a record without a source is counted, as "unknown"; generate's answers (mode 2) are not in these rows
    assert bars(plots["accuracy_by_source"], "source") == [
        ("base", "cosmosqa", 0.0, 1, 0.25), ("base", "enem", 1.0, 2, 0.2), ("base", "unknown", 0.0, 1, 0.25),
        ("finetuned", "cosmosqa", 1.0, 1, 0.25), ("finetuned", "enem", 1.0, 2, 0.2),
        ("finetuned", "unknown", 0.0, 1, 0.25)]
    # each bar's 95% interval is the one evaluate.proportion_ci_method gives its k of n
    for row in plots["accuracy_by_type"] + plots["accuracy_by_source"]:
        k = round(row["accuracy"] * row["n"])
        assert (row["ci95_low"], row["ci95_high"]) == proportion_ci(k, row["n"], P.proportion_ci_method)
        assert row["ci95_low"] < row["ci95_high"]  # never of zero width, even at 2/2 or 0/1
    files = ev.plot_files(plots)
    assert files["by_source_finetuned.json"] == plots["accuracy_by_source"][3:]
    assert files["by_type_base.json"] == plots["accuracy_by_type"][:2]


def cells(rows: list[dict]) -> dict[tuple[str, str], int]:
    return {(r["actual"], r["predicted"]): r["count"] for r in rows}


def test_confusion_matrix_has_every_letter_the_items_allow_even_never_predicted():
    plots = ev.plot_data(RECORDS, predictions(), P)
    base = cells([r for r in plots["confusion"] if r["model"] == "base"])
    # five-option items: A-E both ways, 25 cells, though no model answered E (nor any gold answer is B-E)
    assert sorted(base) == [(a, x) for a in "ABCDE" for x in "ABCDE"]
    assert base[("A", "A")] == 2 and base[("A", "B")] == 2 and base[("A", "E")] == 0 and base[("E", "E")] == 0
    assert sum(base.values()) == len(RECORDS)
    fine = cells([r for r in plots["confusion"] if r["model"] == "finetuned"])
    assert fine[("A", "A")] == 3 and fine[("A", "B")] == 1 and sum(fine.values()) == len(RECORDS)


def test_confusion_matrix_of_four_option_items_stops_at_d_and_adds_invalid_when_a_letter_is_missing():
    four = [{**r, "answers": FOUR} for r in RECORDS]
    generate = EvaluateParams(modes=["generate", "letter"])  # generate first: the plots' mode
    fine = cells([r for r in ev.plot_data(four, predictions(), generate)["confusion"] if r["model"] == "finetuned"])
    assert sorted(fine) == sorted((a, x) for a in "ABCD" for x in [*"ABCD", "invalid"])
    assert fine[("A", "A")] == 3 and fine[("A", "invalid")] == 1 and fine[("D", "invalid")] == 0


def test_headline_numbers_are_eval_json_numbers(tmp_path):
    metrics = detailed_metrics()
    path = tmp_path / "headline.json"
    io.write_json(path, ev.headline_metrics(metrics, P.modes))
    head = json.loads(path.read_text())
    assert head == {"n": 4,
                    "letter": {"base": {"accuracy": 0.5, "invalid_rate": 0.0},
                               "finetuned": {"accuracy": 0.75, "invalid_rate": 0.0},
                               "finetuned_minus_base": 0.25},
                    "generate": {"base": {"accuracy": 0.0, "invalid_rate": 1.0},
                                 "finetuned": {"accuracy": 0.75, "invalid_rate": 0.25},
                                 "finetuned_minus_base": 0.75}}
    for name in ("base", "finetuned"):
        for mode in P.modes:
            for key in ("accuracy", "invalid_rate"):
                assert head[mode][name][key] == metrics[name][mode][key]  # copied, exactly
            assert head["n"] == metrics[name][mode]["n"]
    for mode in P.modes:
        assert head[mode]["finetuned_minus_base"] == round(
            metrics["finetuned"][mode]["accuracy"] - metrics["base"][mode]["accuracy"], 6)


def flat(d: dict, prefix: str = "") -> set[str]:
    """Column names as dvc metrics show / dvc exp show make them (dotted paths to the leaves)."""
    out = set()
    for key, value in d.items():
        out |= flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key}
    return out


def test_no_headline_column_has_the_name_of_an_eval_json_column(repo_root):
    """A name in both files makes dvc prefix both columns with the file name, renaming eval.json's
    (README's `dvc exp show --keep 'finetuned.letter.accuracy$'` would match nothing)."""
    ev_cols = flat(detailed_metrics()) | flat(json.loads((repo_root / "metrics/eval.json").read_text()))
    head_cols = flat(ev.headline_metrics(detailed_metrics(), P.modes))
    assert head_cols and not head_cols & ev_cols


def full_metrics() -> dict:
    """eval.json as the stage builds it in memory: detailed_metrics plus McNemar and the breakdown,
    and the same again as the held-out test split."""
    from gabarito.breakdown import breakdown

    metrics = detailed_metrics()
    preds = predictions()
    metrics["mcnemar"] = {mode: {"p_value": 0.5 if mode == "letter" else 0.25} for mode in P.modes}
    metrics["breakdown"] = breakdown(RECORDS, preds, modes=P.modes, letters=list("ABCDE"), method="wilson")
    return {**metrics, "test": {k: v for k, v in metrics.items()}}


def test_headline_holds_the_headline_per_split_and_source_and_the_detail_goes_elsewhere():
    files = ev.output_files(full_metrics(), P.modes)
    head, detail, plain = files["headline"], files["breakdown"], files["eval"]
    source = full_metrics()["breakdown"]["source"]
    for split in (head, head["test"]):
        assert split["letter"]["mcnemar_p"] == 0.5 and split["generate"]["mcnemar_p"] == 0.25
        assert sorted(split["source"]) == ["cosmosqa", "enem", "unknown"]
        for name, g in source.items():  # copied from the breakdown, primary mode (letter)
            assert split["source"][name] == {"n": g["n"], "chance": g["chance"],
                                             "letter": {m: g[m]["letter"]["accuracy"] for m in ("base", "finetuned")}}
    assert head["source"]["enem"] == {"n": 2, "chance": 0.2, "letter": {"base": 1.0, "finetuned": 1.0}}
    # the breakdown leaves eval.json (top level and test) for its own file, per split
    assert "breakdown" not in plain and "breakdown" not in plain["test"]
    assert plain["base"] == full_metrics()["base"] and set(detail) == {"validation", "test"}
    assert detail["validation"]["source"] == source
    # every headline column is short enough for a 120-column `dvc metrics diff` (path 22, numbers ~30)
    assert max(len(c) for c in flat(head)) <= 50


def test_dvc_yaml_declares_only_the_headline_file_as_metrics(repo_root):
    stage = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]["evaluate"]
    assert "--headline metrics/headline.json" in stage["cmd"] and "--breakdown metrics/breakdown.json" in stage["cmd"]
    assert stage["metrics"] == [{"metrics/headline.json": {"cache": False}}]
    # the detailed files are still written and tracked in git (cache: false), just not listed by dvc metrics
    assert {"metrics/eval.json": {"cache": False}} in stage["outs"]
    assert {"metrics/breakdown.json": {"cache": False}} in stage["outs"]


@pytest.fixture(scope="module")
def plots_script(repo_root):
    spec = importlib.util.spec_from_file_location("plots_script", repo_root / "scripts/plots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_offline_page_inlines_the_bundle_and_leaves_dvc_no_place_for_cdn_tags(plots_script):
    page = plots_script.offline_page("window.vegaEmbed=function(){};")
    assert '<script type="text/javascript">\nwindow.vegaEmbed=function(){};\n    </script>' in page
    assert "{plot_divs}" in page and "{refresh_tag}" in page
    assert "{scripts}" not in page and "src=" not in page  # dvc puts its CDN <script src> tags at {scripts}


@pytest.mark.parametrize("bundle", ["a='</script>';", "a='</SCRIPT >';", "a='{plot_divs}';"])
def test_a_bundle_that_cannot_be_inlined_is_refused(plots_script, bundle):
    with pytest.raises(ValueError, match="cannot be inlined"):
        plots_script.offline_page(bundle)


def test_make_plots_targets_run_the_script(repo_root):
    make = (repo_root / "Makefile").read_text()
    assert "plots: setup\n\t$(BIN)/python scripts/plots.py\n" in make
    assert "plots-diff: setup\n\t$(BIN)/python scripts/plots.py --diff $(REV)\n" in make
