"""A report of the current experiment against a chosen baseline: metric deltas with paired
intervals, params that differ, accuracy by question type, flipped items, plots.

    gabarito report main                 # main against the working tree
    gabarito compare HEAD~1 workspace    # the validation items that flipped

Each side (baseline, current) is loaded through a ``read(path) -> str | None`` callable, so the same
code reads the working tree or a git revision / DVC experiment (``dvc.api.read(path, rev=...)``);
everything after loading is plain functions of records:

    read = revision_reader("main")                      # or workspace_reader()
    side = load_side(read, label="main", metrics="metrics/eval.json", ...)
    report = build_report(baseline, current, labels=("main", "workspace"), ...)
    render_markdown(report) / render_html(report)

A comparison is made on the items both sides scored (matched by id): each side's accuracy on
them, the delta, Newcombe's paired 95% interval of it and McNemar's exact test; each side's n and
the shared n are shown, and when the item sets differ the report says so first, in one line. Two
runs on the same items are far more alike than two independent samples, so the paired interval is
much narrower than the difference of two per-run intervals suggests; and a delta between different
items (n=65 against n=89) mixes the change of model with the change of items.
"""

from __future__ import annotations

import html
import json
import shlex
from pathlib import Path
from typing import Callable

import click

from gabarito import io
from gabarito.clikit import log, params_option, user_errors
from gabarito.io import InputError
from gabarito.stats import flipped, mcnemar, percent

Reader = Callable[[str], "str | None"]

# modes in the order evaluate runs them (params.yaml's evaluate.modes); unknown ones after, sorted
MODE_ORDER = ("letter", "loglik", "generate")
MODEL_ORDER = ("base", "finetuned")
# per model/mode metrics whose deltas are listed next to accuracy (when both sides have them)
SECONDARY = ("accuracy_valid", "invalid_rate", "ece")
MISSING = "(absent)"


# --- loading one side --------------------------------------------------------------------------------
def workspace_reader(root: str | Path = ".") -> Reader:
    """read(path) from the working tree under ``root``; None when the file is not there."""
    root = Path(root)

    def read(path: str) -> str | None:
        full = root / path
        return full.read_text(encoding="utf-8") if full.is_file() else None

    return read


def revision_reader(rev: str, repo: str | None = None) -> Reader:
    """read(path) at a git revision or DVC experiment, through ``dvc.api.read`` (git-tracked files
    and DVC outputs alike); None when the file is not at that revision or its data is in no cache
    or remote. An unknown revision is an error."""
    import dvc.api
    from dvc.exceptions import DvcException, FileMissingError, PathMissingError
    from dvc.scm import RevError

    def read(path: str) -> str | None:
        try:
            return dvc.api.read(path, rev=rev, repo=repo, encoding="utf-8")
        except RevError as exc:
            raise InputError(f"unknown revision '{rev}' ({exc}). Give a branch, tag, commit or an "
                             "experiment name (`dvc exp show`).") from None
        except (FileNotFoundError, FileMissingError, PathMissingError):
            # not at that revision, or (dvc says the same) a DVC output whose data is in no local cache
            return None
        except DvcException as exc:  # e.g. a remote that cannot be reached
            raise InputError(f"could not read {path} at '{rev}' ({exc}). `dvc pull` it, or check the "
                             "remote (`dvc remote list`).") from None

    return read


def reader(ref: str, repo: str | None = None) -> Reader:
    """The working tree for "workspace", else ``revision_reader(ref)``."""
    return workspace_reader(repo or ".") if ref == "workspace" else revision_reader(ref, repo)


def load_predictions(ref: str, path: str) -> list[dict]:
    """The predictions of one side of ``gabarito compare``: ``ref`` is a predictions file, or a git
    revision / DVC experiment whose ``path`` is read through DVC."""
    if Path(ref).is_file():
        return io.read_jsonl(ref)
    text = reader(ref)(path)
    if text is None:
        raise InputError(f"{path} is not in '{ref}', or its data is in no local cache (fetch it with "
                         f"`dvc fetch --rev {ref}`, or `dvc exp pull origin {ref}` for an experiment). Give a "
                         "predictions file, a git revision or an experiment name (`dvc exp show`).")
    return [rec for _, rec in io.parse_jsonl(text, f"{ref}:{path}")]


def load_side(read: Reader, *, label: str, metrics: str, predictions: str | None = None,
              train: str | None = None, params: str | None = None, validation: str | None = None) -> dict:
    """One side of the comparison from the paths given (dvc.yaml's): eval metrics (required),
    per-item predictions, train metrics, params and validation records (for question text), each
    None when absent. Errors name the side and the file."""
    import yaml

    def text(path: str | None) -> str | None:
        return read(path) if path else None

    def parse_json(path: str | None):
        raw = text(path)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"{label}:{path}:{exc.lineno}: not valid JSON ({exc.msg}).") from None

    def parse_jsonl(path: str | None) -> list[dict] | None:
        raw = text(path)
        return None if raw is None else [rec for _, rec in io.parse_jsonl(raw, f"{label}:{path}")]

    eval_metrics = parse_json(metrics)
    if eval_metrics is None:
        raise InputError(f"{label}: {metrics} not found. Run `dvc repro evaluate` there (or commit its "
                         "metrics), or choose another baseline.")
    raw_params = text(params)
    try:
        params_dict = yaml.safe_load(raw_params) if raw_params is not None else None
    except yaml.YAMLError as exc:
        raise InputError(f"{label}:{params}: not valid YAML ({exc}).") from None
    records = parse_jsonl(validation)
    questions = None if records is None else {r["id"]: r["question"] for r in records
                                              if "id" in r and isinstance(r.get("question"), str)}
    return {"label": label, "metrics": eval_metrics, "predictions": parse_jsonl(predictions),
            "train": parse_json(train), "params": params_dict, "questions": questions}


def plot_files(dvc_yaml: dict) -> list[str]:
    """The plot definitions of a parsed dvc.yaml (top-level ``plots``), in their order."""
    out = []
    for entry in dvc_yaml.get("plots") or []:
        out += [entry] if isinstance(entry, str) else list(entry)
    return out


# --- params ------------------------------------------------------------------------------------------
def flatten(d: dict, prefix: str = "") -> dict:
    """Nested dicts to dotted keys (``train.lora.r``); lists and empty dicts stay values."""
    out = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def params_diff(a: dict | None, b: dict | None) -> list[dict]:
    """Params that differ, by dotted key: {key, a, b, change} with change added/removed/changed."""
    fa, fb = flatten(a or {}), flatten(b or {})
    rows = []
    for key in sorted(set(fa) | set(fb)):
        if key not in fa:
            rows.append({"key": key, "a": None, "b": fb[key], "change": "added"})
        elif key not in fb:
            rows.append({"key": key, "a": fa[key], "b": None, "change": "removed"})
        elif fa[key] != fb[key]:
            rows.append({"key": key, "a": fa[key], "b": fb[key], "change": "changed"})
    return rows


def _ordered(names, order) -> list[str]:
    return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))


def _models_modes(metrics: dict) -> dict[str, list[str]]:
    """{model: [modes]} of an eval.json: a model is a top-level dict, a mode a sub-dict with accuracy."""
    out = {}
    for model, value in metrics.items():
        if model == "mcnemar" or not isinstance(value, dict):
            continue
        modes = [m for m, v in value.items() if isinstance(v, dict) and "accuracy" in v]
        if modes:
            out[model] = _ordered(modes, MODE_ORDER)
    return {m: out[m] for m in _ordered(out, MODEL_ORDER)}


def _correct_by_id(preds: list[dict] | None, model: str, mode: str) -> dict[str, bool]:
    # a record without a mode (older files) counts for every mode, as in stats.flipped
    return {r["id"]: bool(r["correct"]) for r in preds or []
            if r.get("model") == model and r.get("mode", mode) == mode and "correct" in r}


def _delta(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return round(b - a, 6)
    return None


def _group_order(group: str):
    # option counts as numbers ("4" before "10"), sources by name
    return (0, int(group), "") if group.isdigit() else (1, 0, group)


def _truncate(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


# --- the report --------------------------------------------------------------------------------------
def item_sets(pa, pb, model: str, mode: str) -> tuple[int, int, int]:
    """(items A scored, items B scored, items both scored) of one model and mode, by id."""
    ca, cb = _correct_by_id(pa, model, mode), _correct_by_id(pb, model, mode)
    return len(ca), len(cb), len(set(ca) & set(cb))


def item_set_line(la: str, lb: str, n_a: int | None, n_b: int | None, shared: int | None) -> str | None:
    """The one line that says the two sides scored different items (None when they scored the same)."""
    if shared is None:  # no per-item predictions on a side: only the counts can differ
        if n_a is None or n_b is None or n_a == n_b:
            return None
        return (f"The item sets differ: {la} scored {n_a} items, {lb} {n_b}; without per-item predictions on "
                "both sides the deltas below are between different items.")
    if n_a == n_b == shared:
        return None
    return (f"The item sets differ: {la} scored {n_a} items, {lb} {n_b}, both {shared}; accuracies and deltas "
            f"are on the {shared} shared items (other tables: each side on its own items).")


def _compare_accuracy(model: str, mode: str, a: dict, b: dict, pa, pb) -> dict:
    """Accuracy of both sides on the items both predicted, their delta, Newcombe's paired interval and
    McNemar's test; each side's n and the shared n. Without predictions on a side: each side's own
    accuracy (over its own items) and no paired statistics."""
    row = {"model": model, "mode": mode, "a": a["accuracy"], "b": b["accuracy"], "a_all": a["accuracy"],
           "b_all": b["accuracy"], "delta": _delta(a["accuracy"], b["accuracy"]), "n_a": a.get("n"),
           "n_b": b.get("n"), "shared": None, "paired": None}
    ca, cb = _correct_by_id(pa, model, mode), _correct_by_id(pb, model, mode)
    if pa is None or pb is None:
        return row
    ids = sorted(set(ca) & set(cb))  # sorted: nothing may depend on file order
    row.update(n_a=len(ca), n_b=len(cb), shared=len(ids))
    if ids:
        xa, xb = [ca[i] for i in ids], [cb[i] for i in ids]
        test = mcnemar(xa, xb)  # stats.mcnemar names its sides base/fine-tuned: here A is the baseline
        row.update(a=round(sum(xa) / len(ids), 6), b=round(sum(xb) / len(ids), 6),
                   delta=test["finetuned_minus_base"])
        row["paired"] = {"n": len(ids), "ci95_low": test["ci95_low"], "ci95_high": test["ci95_high"],
                         "fixed": test["only_finetuned_correct"], "broken": test["only_base_correct"],
                         "p_value": test["p_value"]}
    else:
        row.update(a=None, b=None, delta=None)
    return row


def _compare_groups(model: str, mode: str, a: dict, b: dict, key: str) -> dict | None:
    """Per source / per option count (``key``): n and interval on each side (runs before issue 14: none)."""
    ga, gb = a.get(key) or {}, b.get(key) or {}
    if not (ga or gb):
        return None
    return {"model": model, "mode": mode, "rows": [
        {"group": g, "a": ga.get(g), "b": gb.get(g),
         "delta": _delta((ga.get(g) or {}).get("accuracy"), (gb.get(g) or {}).get("accuracy"))}
        for g in sorted(set(ga) | set(gb), key=_group_order)]}


def _compare_letters(model: str, mode: str, a: dict, b: dict, labels: tuple[str, str]) -> tuple[list[dict], list[str]]:
    """Predicted letters against the majority-letter baseline on each side, and a note for each side
    that answers one letter more than evaluate.max_letter_share allows."""
    rows, notes = [], []
    for side, m in ((labels[0], a), (labels[1], b)):
        if "majority_baseline" in m:
            rows.append({"model": model, "mode": mode, "side": side, "n": m.get("n"),
                         "accuracy": m["accuracy"], "baseline": m["majority_baseline"],
                         "predicted_letters": m["predicted_letters"], "top_letter": m["top_letter"],
                         "top_letter_share": m["top_letter_share"], "warning": m["top_letter_warning"]})
            if m["top_letter_warning"]:
                count = m["predicted_letters"][m["top_letter"]]
                notes.append(f"Warning: in {side}, {model} ({mode}) answers {m['top_letter']} on {count} of "
                             f"{m.get('n')} items ({percent(m['top_letter_share'])}, more than "
                             "evaluate.max_letter_share): it answers by position, not by the question.")
    return rows, notes


def _flipped_items(pa, pb, model: str, mode: str, questions: dict, question_width: int, max_flipped: int) -> dict:
    """The items one side got right and the other wrong, by id, each with the start of its question."""
    # by id, like the pairing: the lists must not depend on the order of the predictions file
    rows = sorted(flipped(pa, pb, model=model, mode=mode), key=lambda r: r["id"])
    for r in rows:
        r["question"] = _truncate(questions[r["id"]], question_width) if r["id"] in questions else ""
    fixed = [r for r in rows if r["change"] == "fixed"]
    broken = [r for r in rows if r["change"] == "broken"]
    return {"model": model, "mode": mode, "fixed": len(fixed), "broken": len(broken),
            "fixed_items": fixed[:max_flipped], "broken_items": broken[:max_flipped]}


def build_report(baseline: dict, current: dict, *, labels: tuple[str, str] = ("baseline", "current"),
                 plots: list[str] = (),
                 baseline_rev: str | None = None, current_rev: str | None = None, max_flipped: int = 50,
                 question_width: int = 80) -> dict:
    """The comparison as plain data. ``baseline``/``current`` are load_side() dicts (only
    ``metrics`` is required). Deterministic: same inputs, same report."""
    ma, mb = baseline["metrics"], current["metrics"]
    pa, pb = baseline.get("predictions"), current.get("predictions")
    questions = {**(baseline.get("questions") or {}), **(current.get("questions") or {})}
    modes_a, modes_b = _models_modes(ma), _models_modes(mb)
    pairs = [(model, mode) for model in modes_b if model in modes_a
             for mode in modes_b[model] if mode in modes_a[model]]
    notes = []
    for side, preds in ((labels[0], pa), (labels[1], pb)):
        if preds is None:
            notes.append(f"No per-item predictions for {side}: no paired intervals, McNemar tests or flipped "
                         "items (`dvc pull` the predictions there, or rerun the evaluate stage).")

    accuracy, secondary, by_type, flips = [], [], [], []
    groups: dict[str, list[dict]] = {"by_source": [], "by_options": []}
    letters = []
    for model, mode in pairs:
        a, b = ma[model][mode], mb[model][mode]
        accuracy.append(_compare_accuracy(model, mode, a, b, pa, pb))
        for metric in SECONDARY:
            if metric in a and metric in b:
                secondary.append({"model": model, "mode": mode, "metric": metric, "a": a[metric], "b": b[metric],
                                  "delta": _delta(a[metric], b[metric])})
        ta, tb = a.get("by_type") or {}, b.get("by_type") or {}
        if ta or tb:
            by_type.append({"model": model, "mode": mode, "rows": [
                {"type": t, "a": ta.get(t), "b": tb.get(t), "delta": _delta(ta.get(t), tb.get(t))}
                for t in sorted(set(ta) | set(tb))]})
        for key in groups:
            rows = _compare_groups(model, mode, a, b, key)
            if rows is not None:
                groups[key].append(rows)
        rows, warned = _compare_letters(model, mode, a, b, labels)
        letters += rows
        notes += warned
        if pa is not None and pb is not None:
            flips.append(_flipped_items(pa, pb, model, mode, questions, question_width, max_flipped))

    train = []
    tra, trb = baseline.get("train") or {}, current.get("train") or {}
    # the losses (train_loss, best_eval_loss, first/last logged) and whatever else *_loss train.json has
    for key in sorted(k for k in set(tra) & set(trb) if k.endswith("loss")):
        train.append({"metric": key, "a": tra[key], "b": trb[key], "delta": _delta(tra[key], trb[key])})

    return {
        "labels": {"a": labels[0], "b": labels[1]},
        # first: the item sets differ (one line per distinct difference among the models and modes)
        "item_sets": list(dict.fromkeys(line for r in accuracy if (line := item_set_line(
            labels[0], labels[1], r["n_a"], r["n_b"], r["shared"])))),
        "accuracy": accuracy,
        "metrics": secondary,
        "train": train,
        "params": params_diff(baseline.get("params"), current.get("params")),
        "by_type": by_type,
        "by_source": groups["by_source"],
        "by_options": groups["by_options"],
        "letters": letters,
        "flipped": flips,
        "max_flipped": max_flipped,
        # `dvc plots diff A` compares A with the workspace: name the current side unless it is the workspace
        "plots": {"files": list(plots), "command": (
            f"dvc plots diff {shlex.quote(baseline_rev)}"
            + (f" {shlex.quote(current_rev)}" if current_rev and current_rev != "workspace" else "")
        ) if baseline_rev else None},
        "notes": notes,
    }


# --- formatting --------------------------------------------------------------------------------------
def _signed_pct(x) -> str:
    return "-" if x is None else f"{x * 100:+.2f} pp"


def _num(x, signed: bool = False) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:+.4f}" if signed else f"{x:.4f}"
    return f"{x:+d}" if signed else str(x)


def _metric_value(metric: str, x, signed: bool = False) -> str:
    if metric == "ece":
        return _num(x, signed)
    return _signed_pct(x) if signed else percent(x)


def _param_value(x, present: bool) -> str:
    if not present:
        return MISSING
    return x if isinstance(x, str) else json.dumps(x, ensure_ascii=False, sort_keys=True)


def _ci(paired: dict | None) -> str:
    if not paired:
        return "-"
    return f"{paired['ci95_low'] * 100:+.2f} to {paired['ci95_high'] * 100:+.2f} pp"


def _table_rows(report: dict) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Every table as (header, rows of plain text), shared by the Markdown and HTML renderers."""
    la, lb = report["labels"]["a"], report["labels"]["b"]
    out = {}
    out["accuracy"] = (
        ["model", "mode", la, lb, "delta", "95% CI of delta (paired)", f"n {la}", f"n {lb}", "shared n", "fixed",
         "broken", "McNemar p"],
        [[r["model"], r["mode"], percent(r["a"]), percent(r["b"]), _signed_pct(r["delta"]), _ci(r["paired"]),
          _num(r["n_a"]), _num(r["n_b"]), _num(r["shared"]),
          *((str(p["fixed"]), str(p["broken"]), f"{p['p_value']:.4f}") if (p := r["paired"])
            else ("-",) * 3)] for r in report["accuracy"]])
    out["metrics"] = (["model", "mode", "metric", la, lb, "delta"],
                      [[r["model"], r["mode"], r["metric"], _metric_value(r["metric"], r["a"]),
                        _metric_value(r["metric"], r["b"]), _metric_value(r["metric"], r["delta"], signed=True)]
                       for r in report["metrics"]])
    out["train"] = (["metric", la, lb, "delta"],
                    [[r["metric"], _num(r["a"]), _num(r["b"]), _num(r["delta"], signed=True)] for r in report["train"]])
    out["params"] = (["param", la, lb],
                     [[r["key"], _param_value(r["a"], r["change"] != "added"),
                       _param_value(r["b"], r["change"] != "removed")] for r in report["params"]])
    return out


def _group_cell(g: dict | None) -> str:
    if not g:
        return "-"
    return f"{percent(g['accuracy'])} (n={g['n']}, {percent(g['ci95_low'])}-{percent(g['ci95_high'])})"


def _group_rows(block: dict) -> list[list[str]]:
    return [[r["group"], _group_cell(r["a"]), _group_cell(r["b"]), _signed_pct(r["delta"])] for r in block["rows"]]


GROUP_TITLES = {"by_source": ("Accuracy by source", "source"), "by_options": ("Accuracy by option count", "options")}


def _letter_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    return (["model", "mode", "side", "n", "accuracy", "majority baseline", "predicted letters", "top letter", ""],
            [[r["model"], r["mode"], r["side"], str(r["n"]), percent(r["accuracy"]),
              f"{r['baseline']['letter'] or '-'} {percent(r['baseline']['accuracy'])}",
              " ".join(f"{x}:{c}" for x, c in r["predicted_letters"].items()),
              f"{r['top_letter']} {percent(r['top_letter_share'])}" if r["top_letter"] else "-",
              "warning" if r["warning"] else ""] for r in report["letters"]])


def _by_type_rows(block: dict) -> list[list[str]]:
    return [[r["type"], percent(r["a"]), percent(r["b"]), _signed_pct(r["delta"])] for r in block["rows"]]


def _flip_rows(items: list[dict], la: str, lb: str) -> tuple[list[str], list[list[str]]]:
    return (["id", "label", la, lb, "question"],
            [[r["id"], str(r["label"]), r["a"] or "-", r["b"] or "-", r["question"]] for r in items])


def _intro(report: dict) -> list[str]:
    return [*report.get("item_sets", []),
            f"Accuracy counts invalid answers as wrong. Accuracies and deltas ({report['labels']['b']} minus "
            f"{report['labels']['a']}, in percentage points, pp) are on the items both sides scored; the interval "
            "is Newcombe's paired 95% interval over them, and McNemar's exact test asks whether the items fixed "
            "outnumber the items broken by more than chance.", *report["notes"]]


# --- Markdown ----------------------------------------------------------------------------------------
def _md(text) -> str:
    # cells hold data (questions, ids): escape HTML (Markdown passes it through) and the cell separator
    return html.escape(" ".join(str(text).split()), quote=False).replace("|", "\\|")


def _md_code(text: str) -> str:
    # inside a code span nothing is markup, so no escaping is needed (nor would it be undone)
    return _md(text) if "`" in text else f"`{text}`"


def _md_table(header: list[str], rows: list[list[str]], numeric_from: int = 0) -> list[str]:
    if not rows:
        return ["(none)"]
    align = "".join(" ---: |" if numeric_from and i >= numeric_from else " --- |" for i in range(len(header)))
    lines = ["| " + " | ".join(_md(h) for h in header) + " |", "|" + align]
    return lines + ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]


def render_markdown(report: dict) -> str:
    """The report as Markdown (GitHub tables)."""
    la, lb = report["labels"]["a"], report["labels"]["b"]
    tables = _table_rows(report)
    lines = [f"# {_md(lb)} against {_md(la)}", "", *[line for n in _intro(report) for line in (_md(n), "")],
             "## Accuracy", "", *_md_table(*tables["accuracy"], numeric_from=2), "",
             "## Other metrics", "", *_md_table(*tables["metrics"], numeric_from=3), ""]
    if report["train"]:
        lines += ["## Training", "", *_md_table(*tables["train"], numeric_from=1), ""]
    lines += ["## Params that differ", "", *_md_table(*tables["params"]), ""]
    if report["by_type"]:
        lines += ["## Accuracy by question type", ""]
        for block in report["by_type"]:
            lines += [f"### {_md(block['model'])}, {_md(block['mode'])}", "",
                      *_md_table(["type", la, lb, "delta"], _by_type_rows(block), numeric_from=1), ""]
    for key, (title, column) in GROUP_TITLES.items():
        if report.get(key):
            lines += [f"## {title} (each side on its own items: n and 95% interval)", ""]
            for block in report[key]:
                lines += [f"### {_md(block['model'])}, {_md(block['mode'])}", "",
                          *_md_table([column, la, lb, "delta"], _group_rows(block)), ""]
    if report.get("letters"):
        lines += ["## Predicted letters and the majority-letter baseline", "",
                  "The baseline always answers the most frequent gold letter; *warning*: one letter takes more "
                  "than evaluate.max_letter_share of the items.", "", *_md_table(*_letter_rows(report)), ""]
    lines += ["## Plots", ""]
    if report["plots"]["command"]:
        lines += [f"{_md_code(report['plots']['command'])} draws these plots for both sides:", ""]
    lines += [f"- {_md_code(f)}" for f in report["plots"]["files"]] or ["(no plot files given)"]
    lines.append("")
    if report["flipped"]:
        lines += ["## Flipped items", ""]
        for block in report["flipped"]:
            lines += [f"### {_md(block['model'])}, {_md(block['mode'])}: {block['fixed']} fixed, "
                      f"{block['broken']} broken", ""]
            for kind in ("fixed", "broken"):
                items = block[f"{kind}_items"]
                if not items:
                    continue
                shown = f" (first {len(items)})" if len(items) < block[kind] else ""
                lines += [f"{kind.capitalize()} in {_md(lb)}{shown}:", "", *_md_table(*_flip_rows(items, la, lb)), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


# --- HTML --------------------------------------------------------------------------------------------
COLOR_A, COLOR_B = "#9aa5b1", "#2b6cb0"
CSS = ("body{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em;color:#222}"
       "table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.25em .6em;"
       "text-align:left}td.n{text-align:right}th{background:#f3f4f6}svg{display:block;margin:.5em 0 1.5em}"
       ".note{color:#555}")


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _html_table(header: list[str], rows: list[list[str]], numeric_from: int = 0) -> str:
    if not rows:
        return "<p>(none)</p>"
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="n">{_e(c)}</td>' if numeric_from and i >= numeric_from
                                     else f"<td>{_e(c)}</td>" for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def svg_bars(title: str, groups: list[tuple[str, float | None, float | None]], labels: tuple[str, str]) -> str:
    """A horizontal grouped bar chart (0-100%), one pair of bars (A, B) per group; inline SVG."""
    label_w, bar_w, row_h, top = 180, 360, 34, 44
    width, height = label_w + bar_w + 70, top + row_h * len(groups) + 8
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}">',
             f"<title>{_e(title)}</title>",
             f'<text x="0" y="14" font-size="13" font-weight="bold">{_e(title)}</text>']
    for i, (name, color) in enumerate(zip(labels, (COLOR_A, COLOR_B))):
        x = label_w + i * 160
        parts += [f'<rect x="{x}" y="22" width="10" height="10" fill="{color}"/>',
                  f'<text x="{x + 14}" y="31" font-size="11">{_e(name)}</text>']
    for k, (name, a, b) in enumerate(groups):
        y = top + k * row_h
        parts.append(f'<text x="{label_w - 6}" y="{y + 17}" font-size="11" text-anchor="end">{_e(name)}</text>')
        for j, (value, color) in enumerate(((a, COLOR_A), (b, COLOR_B))):
            by = y + j * 13
            w = 0.0 if value is None else max(0.0, min(1.0, value)) * bar_w
            parts += [f'<rect x="{label_w}" y="{by}" width="{w:.1f}" height="12" fill="{color}"/>',
                      f'<text x="{label_w + w + 4:.1f}" y="{by + 10}" font-size="10">{_e(percent(value))}</text>']
    parts.append(f'<line x1="{label_w}" y1="{top - 4}" x2="{label_w}" y2="{height - 4}" stroke="#444"/>')
    return "".join(parts) + "</svg>"


def render_html(report: dict) -> str:
    """The report as one self-contained HTML page: tables and inline SVG charts, no script, no network."""
    la, lb = report["labels"]["a"], report["labels"]["b"]
    tables = _table_rows(report)
    title = f"{lb} against {la}"
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{_e(title)}</title>",
           f"<style>{CSS}</style></head><body>", f"<h1>{_e(title)}</h1>"]
    out += [f'<p class="note">{_e(n)}</p>' for n in _intro(report)]
    out += ["<h2>Accuracy</h2>", _html_table(*tables["accuracy"], numeric_from=2)]
    if report["accuracy"]:
        out.append(svg_bars("Accuracy by model and mode", [(f"{r['model']} / {r['mode']}", r["a"], r["b"])
                                                           for r in report["accuracy"]], (la, lb)))
    out += ["<h2>Other metrics</h2>", _html_table(*tables["metrics"], numeric_from=3)]
    if report["train"]:
        out += ["<h2>Training</h2>", _html_table(*tables["train"], numeric_from=1)]
    out += ["<h2>Params that differ</h2>", _html_table(*tables["params"])]
    if report["by_type"]:
        out.append("<h2>Accuracy by question type</h2>")
        for block in report["by_type"]:
            name = f"{block['model']}, {block['mode']}"
            out += [f"<h3>{_e(name)}</h3>", _html_table(["type", la, lb, "delta"], _by_type_rows(block), numeric_from=1),
                    svg_bars(f"Accuracy by question type: {name}",
                             [(r["type"], r["a"], r["b"]) for r in block["rows"]], (la, lb))]
    for key, (title, column) in GROUP_TITLES.items():
        if report.get(key):
            out.append(f"<h2>{_e(title)} (each side on its own items: n and 95% interval)</h2>")
            for block in report[key]:
                out += [f"<h3>{_e(block['model'])}, {_e(block['mode'])}</h3>",
                        _html_table([column, la, lb, "delta"], _group_rows(block))]
    if report.get("letters"):
        out += ["<h2>Predicted letters and the majority-letter baseline</h2>",
                '<p class="note">The baseline always answers the most frequent gold letter; <em>warning</em>: one '
                "letter takes more than evaluate.max_letter_share of the items.</p>", _html_table(*_letter_rows(report))]
    out.append("<h2>Plots</h2>")
    if report["plots"]["command"]:
        out.append(f"<p><code>{_e(report['plots']['command'])}</code> draws these plots for both sides:</p>")
    files = report["plots"]["files"]
    out.append("<ul>" + "".join(f"<li><code>{_e(f)}</code></li>" for f in files) + "</ul>" if files
               else "<p>(no plot files given)</p>")
    if report["flipped"]:
        out.append("<h2>Flipped items</h2>")
        for block in report["flipped"]:
            out.append(f"<h3>{_e(block['model'])}, {_e(block['mode'])}: {block['fixed']} fixed, "
                       f"{block['broken']} broken</h3>")
            for kind in ("fixed", "broken"):
                items = block[f"{kind}_items"]
                if items:
                    shown = f" (first {len(items)})" if len(items) < block[kind] else ""
                    out += [f"<p>{_e(kind.capitalize())} in {_e(lb)}{_e(shown)}:</p>",
                            _html_table(*_flip_rows(items, la, lb))]
    out.append("</body></html>")
    return "\n".join(out) + "\n"



def describe_flips(rows: list[dict], *, a: str, b: str, model: str, mode: str,
                   sizes: tuple[int, int, int] | None = None) -> list[str]:
    """``gabarito compare``'s lines: with ``sizes`` (item_sets: A's n, B's n, shared n), first a line when
    the item sets differ; a count over the shared items, then one line per flipped item."""
    fixed = sum(r["change"] == "fixed" for r in rows)
    first = item_set_line(a, b, *sizes) if sizes else None
    among = f" of {sizes[2]} shared items" if sizes else " items"
    return ([first] if first else []) + (
        [f"{len(rows)}{among} flipped ({model}, {mode}): {fixed} fixed, {len(rows) - fixed} broken in {b}"]
            + [f"  {r['change']:6}  {r['id']:<20} label {r['label']}  {a}: {r['a'] or '-'}  {b}: {r['b'] or '-'}"
               for r in rows])


# --- command: gabarito report ---
@click.command("report")
@click.argument("baseline")
@click.option("--current", default="workspace", show_default=True,
              help="the experiment to report on: 'workspace' or a revision / experiment name")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="write here (default: print)")
@click.option("--html", "as_html", is_flag=True, help="one self-contained HTML page (inline SVG charts)")
@click.option("--metrics", default="metrics/eval.json", show_default=True)
@click.option("--predictions", default="metrics/predictions.jsonl", show_default=True)
@click.option("--train-metrics", default="metrics/train.json", show_default=True)
@click.option("--validation", default="data/processed/validation.jsonl", show_default=True,
              help="for the question text of flipped items")
@params_option
@user_errors
def command(baseline, current, out, as_html, metrics, predictions, train_metrics, validation, params_path):
    """Report an experiment against a BASELINE: metric deltas with 95% intervals, params changed, flips.

    BASELINE and --current are git revisions, branches, tags, DVC experiment names, or
    'workspace'. Accuracies and deltas are on the items both sides scored, with Newcombe's paired
    interval and McNemar's p; each side's n and the shared n are shown, and a first line says when
    the item sets differ; then the params that differ, accuracy by question type, the items
    that flipped, and the plots to compare with `dvc plots diff`.

    \b
    Examples:
      gabarito report main                          # markdown on stdout
      gabarito report HEAD~1 --html --out report.html
      gabarito report main --current exp-lora-r32   # an experiment of `dvc exp show`
    """
    import yaml

    paths = {"metrics": metrics, "predictions": predictions, "train": train_metrics, "params": params_path,
             "validation": validation}
    sides = [load_side(reader(ref), label=ref, **paths) for ref in (baseline, current)]
    dvc_yaml = Path("dvc.yaml")
    plots = plot_files(yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))) if dvc_yaml.is_file() else []
    rep = build_report(*sides, labels=(baseline, current), plots=plots, baseline_rev=baseline, current_rev=current)
    text = render_html(rep) if as_html else render_markdown(rep)
    if out:
        io.write_text(out, text)
        log(f"report: {baseline} -> {current} written to {out}")
    else:
        click.echo(text, nl=False)


# --- command: gabarito compare ---
# beside report: both read experiments through ``reader`` and compare them item by item with stats.flipped
@click.command("compare")
@click.argument("a")
@click.argument("b")
@click.option("--model", type=click.Choice(["base", "finetuned"]), default="finetuned", show_default=True)
@click.option("--mode", default="letter", show_default=True, help="evaluation mode to compare")
@click.option("--path", default="metrics/predictions.jsonl", show_default=True,
              help="predictions file inside each experiment")
@user_errors
def compare_command(a, b, model, mode, path):
    """List the validation items that flipped between two experiments A and B.

    A and B are predictions files, or git revisions / DVC experiment names whose
    metrics/predictions.jsonl is read through DVC.

    \b
    Examples:
      gabarito compare HEAD~1 workspace        # last commit against the working tree
      gabarito compare main exp-lora-r32       # a branch against an experiment
      gabarito compare old.jsonl new.jsonl
    """
    pa, pb = load_predictions(a, path), load_predictions(b, path)
    rows = flipped(pa, pb, model=model, mode=mode)
    for line in describe_flips(rows, a=a, b=b, model=model, mode=mode, sizes=item_sets(pa, pb, model, mode)):
        click.echo(line)
