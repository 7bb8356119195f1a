"""Evaluation results per split, source, option count and subject, each group with its n.

    from gabarito.breakdown import breakdown, render_breakdown
    table = breakdown(records, predictions, modes=["letter"], letters=list("ABCDE"), method="wilson")
    lines = render_breakdown(table, modes=["letter"], method="wilson")

For every group: n; the chance level (the mean of 1/options over its items: 0.25 for four options,
0.2 for five, in between for a mix); the majority-letter baseline (always answering the group's most
frequent gold letter); per model and mode, accuracy with its 95% interval and the predicted letters;
and per mode, base against fine-tuned on the same items (McNemar's exact test, the items only one of
them got right, the difference with Newcombe's paired interval). Pooled numbers hide what a thesis
needs: a baseline over four- and five-option items together, or an accuracy that is all one source.

The dimensions are record fields: ``split`` (a record without one is in ``default_split``: the
validation file's records carried none before held-out test items were scored), ``source``
("unknown" without one), the option count, and ``subject`` (exam areas; only items that have one).
Plain functions of records and predictions (evaluate's); used by the evaluate stage.
"""

from __future__ import annotations

from gabarito.stats import accuracy_ci, majority_baseline, mcnemar, percent

DIMENSIONS = ("split", "source", "options", "subject")
TITLES = {"split": "split", "source": "source", "options": "option count", "subject": "subject"}
MODELS = ("base", "finetuned")  # evaluate's models, in the order tables show them
INVALID = "-"  # the predicted-letters key of an answer that named no letter (generate mode)


def group_of(rec: dict, dimension: str, default_split: str) -> str | None:
    """The group of one record along one dimension; None: not in any (an item without a subject)."""
    if dimension == "split":
        return rec.get("split") or default_split
    if dimension == "source":
        return rec.get("source") or "unknown"
    if dimension == "options":
        return str(len(rec["answers"]))
    return rec.get("subject") or None


def _order(group: str):
    # option counts as numbers ("4" before "10"), everything else by name
    return (0, int(group), "") if group.isdigit() else (1, 0, group)


def _letters_predicted(preds: list[dict], letters: list[str]) -> dict[str, int]:
    """How often each letter was predicted (every letter the group's items allow, zeros too), and
    ``-`` for answers that named none, when there are any."""
    counts = {x: sum(p.get("prediction") == x for p in preds) for x in letters}
    for p in preds:  # a letter outside ``letters`` still shows (it should not happen)
        x = p.get("prediction")
        if x is not None and x not in counts:
            counts[x] = sum(q.get("prediction") == x for q in preds)
    invalid = sum(p.get("prediction") is None for p in preds)
    return {**counts, INVALID: invalid} if invalid else counts


def summarize_group(records: list[dict], by_key: dict[tuple[str, str], dict[str, dict]], modes: list[str],
                    letters: list[str], method: str) -> dict:
    """One group's numbers. ``by_key`` maps (model, mode) to {item id: prediction}."""
    widest = max(len(r["answers"]) for r in records)
    out = {"n": len(records),
           "chance": round(sum(1 / len(r["answers"]) for r in records) / len(records), 6),
           "majority_baseline": majority_baseline([letters[r["label"]] for r in records])}
    for model in MODELS:
        for mode in modes:
            preds = [by_key[(model, mode)][r["id"]] for r in records if r["id"] in by_key.get((model, mode), {})]
            if preds:
                out.setdefault(model, {})[mode] = {**accuracy_ci([p["correct"] for p in preds], method),
                                                   "predicted_letters": _letters_predicted(preds, letters[:widest])}
    for mode in modes:
        a, b = by_key.get((MODELS[0], mode), {}), by_key.get((MODELS[1], mode), {})
        ids = [r["id"] for r in records if r["id"] in a and r["id"] in b]
        if ids:
            out.setdefault("mcnemar", {})[mode] = mcnemar([a[i]["correct"] for i in ids], [b[i]["correct"] for i in ids])
    return out


def breakdown(records: list[dict], predictions: list[dict], *, modes: list[str], letters: list[str],
              method: str, default_split: str = "validation") -> dict:
    """{dimension: {group: summarize_group(...)}} over the multiple-choice ``records`` that were scored.

    ``predictions`` are evaluate's per-item rows (id, model, mode, prediction, correct); ``letters``
    is the alphabet (format.letters), of which an item with n options uses the first n; ``method``
    is the proportion interval's (evaluate.proportion_ci_method). A dimension with no group (no
    item has a subject) is left out."""
    by_key: dict[tuple[str, str], dict[str, dict]] = {}
    for p in predictions:
        if p.get("mode") in modes and "correct" in p:
            by_key.setdefault((p["model"], p["mode"]), {})[p["id"]] = p
    out = {}
    for dim in DIMENSIONS:
        members: dict[str, list[dict]] = {}
        for rec in records:
            group = group_of(rec, dim, default_split)
            if group is not None:
                members.setdefault(group, []).append(rec)
        if members:
            out[dim] = {g: summarize_group(members[g], by_key, modes, letters, method)
                        for g in sorted(members, key=_order)}
    return out


# --- Markdown (metrics/report.md) --------------------------------------------------------------------
def _ci(m: dict) -> str:
    return f"{m['ci95_low']:.2%}-{m['ci95_high']:.2%}"


def _signed(x: float) -> str:
    return f"{x * 100:+.2f} pp"


def render_breakdown(table: dict, *, modes: list[str], method: str) -> list[str]:
    """The breakdown as Markdown lines: per dimension, a table of accuracy with n, chance, baseline and
    predicted letters, and a table of base against fine-tuned on the same items."""
    lines = ["## Per split, source, option count and subject", "",
             f"Every group with its n. Accuracy with its 95% interval ({method}, evaluate.proportion_ci_method); "
             "chance is the mean of 1/options over the group's items; the majority-letter baseline always answers "
             "the group's most frequent gold letter; predicted letters count every letter the items allow "
             f"(`{INVALID}`: no letter named). Base against fine-tuned on the same items: the items only one of "
             "them got right, fine-tuned minus base with Newcombe's paired 95% interval, McNemar's exact p."]
    for dim, groups in table.items():
        title = TITLES[dim]
        lines += ["", f"### By {title}", "",
                  f"| {title} | n | chance | majority baseline | model | mode | accuracy | 95% CI | predicted letters |",
                  "| --- | ---: | ---: | --- | --- | --- | ---: | --- | --- |"]
        for group, g in groups.items():
            mb = g["majority_baseline"]
            for model in MODELS:
                for mode in modes:
                    m = g.get(model, {}).get(mode)
                    if m:
                        letters = " ".join(f"{x}:{c}" for x, c in m["predicted_letters"].items())
                        lines.append(f"| {group} | {g['n']} | {percent(g['chance'])} | {mb['letter'] or '-'} "
                                     f"{percent(mb['accuracy'])} | {model} | {mode} | {percent(m['accuracy'])} | "
                                     f"{_ci(m)} | {letters} |")
        rows = [(group, mode, g["mcnemar"][mode]) for group, g in groups.items() for mode in modes
                if mode in g.get("mcnemar", {})]
        if rows:
            lines += ["", f"| {title} | mode | n | only base right | only fine-tuned right | fine-tuned - base "
                      "| 95% CI (paired) | McNemar p |", "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |"]
            lines += [f"| {group} | {mode} | {mc['n']} | {mc['only_base_correct']} | {mc['only_finetuned_correct']} "
                      f"| {_signed(mc['finetuned_minus_base'])} | {_signed(mc['ci95_low'])} to {_signed(mc['ci95_high'])} "
                      f"| {mc['p_value']:.4f} |" for group, mode, mc in rows]
    return lines
