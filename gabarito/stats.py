"""Statistics of per-item correctness: bootstrap and paired bootstrap intervals, accuracy per group
(source, option count), the majority-letter baseline and the distribution of predicted letters,
McNemar's exact test, expected calibration error, the items that flipped between two runs, and
percent formatting.

Plain functions of lists, shared by ``evaluate`` (the stage's metrics) and ``report``/``compare``
(experiment against experiment); nothing here loads a model or a file.
"""

from __future__ import annotations

import math


# --- formatting --------------------------------------------------------------------------------------
def percent(x: float | None) -> str:
    """A share as a percentage; "-" for none (no accuracy where nothing was answered)."""
    return "-" if x is None else f"{x:.2%}"


# --- intervals and tests -----------------------------------------------------------------------------
def bootstrap_ci(correct: list[bool], samples: int, seed: int) -> tuple[float, float]:
    """95% percentile interval of accuracy, resampling items with replacement."""
    import numpy as np

    if not correct:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    arr = np.asarray(correct, dtype=float)
    means = arr[rng.integers(0, len(arr), size=(samples, len(arr)))].mean(axis=1)
    return round(float(np.quantile(means, 0.025)), 6), round(float(np.quantile(means, 0.975)), 6)


def accuracy_ci(correct: list[bool], samples: int, seed: int) -> dict:
    """{n, accuracy, ci95_low, ci95_high} of one group of items."""
    low, high = bootstrap_ci(correct, samples, seed)
    n = len(correct)
    return {"n": n, "accuracy": round(sum(correct) / n, 6) if n else 0.0, "ci95_low": low, "ci95_high": high}


def accuracy_by(groups: list[str], correct: list[bool], samples: int, seed: int) -> dict[str, dict]:
    """``accuracy_ci`` of each group (a source, an option count), keyed and sorted by group name.

    Every group resamples with the same ``seed``: same inputs, same intervals."""
    members: dict[str, list[bool]] = {}
    for g, c in zip(groups, correct, strict=True):
        members.setdefault(g, []).append(c)
    return {g: accuracy_ci(members[g], samples, seed) for g in sorted(members)}


# --- answer letters ----------------------------------------------------------------------------------
def majority_baseline(labels: list[str]) -> dict:
    """Accuracy of always answering the most frequent gold letter, and that letter (ties: the earlier
    letter). A model below this has learnt less than the answer key's letter frequencies."""
    if not labels:
        return {"letter": None, "accuracy": 0.0}
    counts = {x: labels.count(x) for x in sorted(set(labels))}
    letter = min(counts, key=lambda x: -counts[x])  # min keeps the first (earliest) of equal counts
    return {"letter": letter, "accuracy": round(counts[letter] / len(labels), 6)}


def letter_distribution(predictions: list[str | None], letters: list[str], max_share: float) -> dict:
    """How often each letter was predicted, over every scored item (an invalid answer is None and is
    counted by the invalid categories, not here), and the most predicted letter's share of all items.

    ``top_letter_warning`` is true when that share is above ``max_share`` (``evaluate.max_letter_share``):
    the model answers by position, whatever the question (ties: the earlier letter)."""
    n = len(predictions)
    counts = {x: sum(p == x for p in predictions) for x in letters}
    for p in predictions:  # a letter outside ``letters`` still shows (it should not happen)
        if p is not None and p not in counts:
            counts[p] = sum(q == p for q in predictions)
    top = min(counts, key=lambda x: -counts[x]) if any(counts.values()) else None  # ties: the earlier letter
    share = round(counts[top] / n, 6) if top and n else 0.0
    return {"predicted_letters": counts, "top_letter": top, "top_letter_share": share,
            "top_letter_warning": share > max_share}


def paired_bootstrap_ci(a: list[bool], b: list[bool], samples: int, seed: int) -> tuple[float, float]:
    """95% percentile interval of accuracy(b) - accuracy(a) over paired items, resampling pairs.

    The mean of the per-item differences (+1 fixed, -1 broken, 0 same) *is* the accuracy delta,
    so resampling those differences with ``bootstrap_ci`` is the paired bootstrap."""
    diffs = [int(y) - int(x) for x, y in zip(a, b, strict=True)]
    return bootstrap_ci(diffs, samples, seed)


def mcnemar(a: list[bool], b: list[bool]) -> dict:
    """Exact McNemar test on paired correctness: does B fix more items than it breaks?"""
    only_a = sum(x and not y for x, y in zip(a, b, strict=True))
    only_b = sum(y and not x for x, y in zip(a, b, strict=True))
    n = only_a + only_b
    k = min(only_a, only_b)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0
    return {"only_base_correct": only_a, "only_finetuned_correct": only_b, "p_value": round(p, 6)}


def expected_calibration_error(confidences: list[float], correct: list[bool], bins: int) -> tuple[float, list[dict]]:
    """ECE over equal-width confidence bins, and the per-bin curve for plotting."""
    curve, ece, n = [], 0.0, len(correct)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, c in enumerate(confidences) if lo <= c < hi or (b == bins - 1 and c == 1.0)]
        if not idx:
            continue
        conf = sum(confidences[i] for i in idx) / len(idx)
        acc = sum(correct[i] for i in idx) / len(idx)
        ece += abs(acc - conf) * len(idx) / n
        curve.append({"bin": b, "confidence": round(conf, 6), "accuracy": round(acc, 6), "count": len(idx)})
    return round(ece, 6), curve

# --- experiment against experiment ------------------------------------------------------------------
def flipped(a: list[dict], b: list[dict], *, model: str, mode: str) -> list[dict]:
    """Items whose correctness differs between two prediction files (experiments A and B)."""
    pick = {(r["id"]): r for r in a if r["model"] == model and r.get("mode", mode) == mode and "correct" in r}
    out = []
    for r in b:
        if r["model"] != model or r.get("mode", mode) != mode or r["id"] not in pick or "correct" not in r:
            continue
        old = pick[r["id"]]
        if old["correct"] != r["correct"]:
            out.append({"id": r["id"], "label": r["label"], "a": old["prediction"], "b": r["prediction"],
                        "change": "fixed" if r["correct"] else "broken"})
    return out
