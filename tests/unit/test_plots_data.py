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
from stages import evaluate as ev

P = EvaluateParams(modes=["letter", "generate"])
# four items: two types, sources "enem", "cosmosqa" and one with none
RECORDS = [{"id": "1", "question_type": "cause", "source": "enem"},
           {"id": "2", "question_type": "cause", "source": "cosmosqa"},
           {"id": "3", "question_type": "fact"},
           {"id": "4", "question_type": "fact", "source": "enem"}]
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


def test_accuracy_by_type_and_by_source_carry_n_and_use_the_primary_mode():
    plots = ev.plot_data(RECORDS, predictions(), P)
    assert plots["accuracy_by_type"] == [
        {"model": "base", "type": "cause", "accuracy": 0.5, "n": 2},
        {"model": "base", "type": "fact", "accuracy": 0.5, "n": 2},
        {"model": "finetuned", "type": "cause", "accuracy": 1.0, "n": 2},
        {"model": "finetuned", "type": "fact", "accuracy": 0.5, "n": 2}]
    # a record without a source is counted, as "unknown"; generate's answers (mode 2) are not in these rows
    assert plots["accuracy_by_source"] == [
        {"model": "base", "source": "cosmosqa", "accuracy": 0.0, "n": 1},
        {"model": "base", "source": "enem", "accuracy": 1.0, "n": 2},
        {"model": "base", "source": "unknown", "accuracy": 0.0, "n": 1},
        {"model": "finetuned", "source": "cosmosqa", "accuracy": 1.0, "n": 1},
        {"model": "finetuned", "source": "enem", "accuracy": 1.0, "n": 2},
        {"model": "finetuned", "source": "unknown", "accuracy": 0.0, "n": 1}]
    files = ev.plot_files(plots)
    assert files["by_source_finetuned.json"] == plots["accuracy_by_source"][3:]
    assert files["by_type_base.json"] == plots["accuracy_by_type"][:2]


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


def test_dvc_yaml_declares_the_headline_file_evaluate_writes(repo_root):
    stage = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]["evaluate"]
    assert "--headline metrics/headline.json" in stage["cmd"]
    assert {"metrics/headline.json": {"cache": False}} in stage["metrics"]
    assert {"metrics/eval.json": {"cache": False}} in stage["metrics"]  # the detailed file stays, keys and all


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
