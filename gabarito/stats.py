"""Statistics of per-item correctness: a proportion's 95% interval (Wilson or exact, from scipy),
accuracy per group (source, option count), the majority-letter baseline and the distribution of
predicted letters, McNemar's exact test with Newcombe's paired interval of the difference,
expected calibration error, the items that flipped between two runs, and percent formatting.

Plain functions of lists, shared by ``evaluate`` (the stage's metrics), ``gabarito.breakdown`` and
``report``/``compare`` (experiment against experiment); nothing here loads a model or a file. What
a well-kept library does is taken from it: the intervals and the binomial test are scipy's
(``scipy.stats.binomtest``); what is here is what no library we use has (Newcombe's paired interval,
ECE, the letter tables).
"""

from __future__ import annotations

import math

# the intervals are 95% ones (the metrics keys say so: ci95_low, ci95_high)
CONFIDENCE = 0.95


# --- formatting --------------------------------------------------------------------------------------
def percent(x: float | None) -> str:
    """A share as a percentage; "-" for none (no accuracy where nothing was answered)."""
    return "-" if x is None else f"{x:.2%}"


# --- intervals and tests -----------------------------------------------------------------------------
def proportion_ci(k: int, n: int, method: str = "wilson") -> tuple[float, float]:
    """95% interval of the proportion k/n: ``method`` is scipy's (``wilson``: the score interval,
    ``exact``: Clopper-Pearson, ``wilsoncc``: Wilson with continuity correction). Never of zero
    width for n > 0: 0/4 gives (0, 0.49) with Wilson. n = 0 is no measurement: (0, 1)."""
    from scipy.stats import binomtest

    if n == 0:
        return 0.0, 1.0
    ci = binomtest(k, n).proportion_ci(confidence_level=CONFIDENCE, method=method)
    return round(float(ci.low), 6), round(float(ci.high), 6)


def accuracy_ci(correct: list[bool], method: str = "wilson") -> dict:
    """{n, accuracy, ci95_low, ci95_high} of one group of items."""
    n, k = len(correct), sum(correct)
    low, high = proportion_ci(k, n, method)
    return {"n": n, "accuracy": round(k / n, 6) if n else 0.0, "ci95_low": low, "ci95_high": high}


def accuracy_by(groups: list[str], correct: list[bool], method: str = "wilson") -> dict[str, dict]:
    """``accuracy_ci`` of each group (a source, an option count), keyed and sorted by group name."""
    members: dict[str, list[bool]] = {}
    for g, c in zip(groups, correct, strict=True):
        members.setdefault(g, []).append(c)
    return {g: accuracy_ci(members[g], method) for g in sorted(members)}


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


def paired_counts(a: list[bool], b: list[bool]) -> dict:
    """The paired 2x2 table of two runs on the same items: both right, only A, only B, neither."""
    pairs = list(zip(a, b, strict=True))
    return {"both": sum(x and y for x, y in pairs), "only_a": sum(x and not y for x, y in pairs),
            "only_b": sum(y and not x for x, y in pairs), "neither": sum(not x and not y for x, y in pairs)}


def newcombe_paired_ci(both: int, only_a: int, only_b: int, neither: int) -> tuple[float, float]:
    """95% interval of accuracy(B) - accuracy(A) on paired items: Newcombe's method 10 (Statistics in
    Medicine 17, 2635-2650, 1998), the "square-and-add" of the two Wilson intervals corrected for the
    correlation of the pairs. scipy has no paired interval; this is a few lines of the paper.

    Good coverage at small n, never of zero width, and inside [-1, 1]; with no discordant pair it
    still says how far the difference could be. n = 0: (-1, 1)."""
    n = both + only_a + only_b + neither
    if n == 0:
        return -1.0, 1.0
    pb, pa = (both + only_b) / n, (both + only_a) / n  # B's accuracy, A's accuracy
    lb, ub = proportion_ci(both + only_b, n, "wilson")
    la, ua = proportion_ci(both + only_a, n, "wilson")
    margins = (both + only_b) * (only_a + neither) * (both + only_a) * (only_b + neither)
    phi = 0.0
    if margins:
        # the paper's continuity-corrected correlation: ad - bc less n/2 when above it, 0 in between
        cross = both * neither - only_a * only_b
        phi = (cross - n / 2 if cross > n / 2 else min(cross, 0)) / math.sqrt(margins)
    d = pb - pa
    low = d - math.sqrt(max(0.0, (pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa) + (ua - pa) ** 2))
    high = d + math.sqrt(max(0.0, (ub - pb) ** 2 - 2 * phi * (ub - pb) * (pa - la) + (pa - la) ** 2))
    return round(max(-1.0, low), 6), round(min(1.0, high), 6)


def mcnemar(a: list[bool], b: list[bool]) -> dict:
    """Base (A) against fine-tuned (B) on the same items: McNemar's exact test (scipy's two-sided
    binomial test of the discordant pairs against 1/2), the items each alone got right (flips both
    ways), B - A and Newcombe's paired 95% interval of it."""
    from scipy.stats import binomtest

    t = paired_counts(a, b)
    k, m = t["only_a"], t["only_a"] + t["only_b"]
    p = float(binomtest(k, m, 0.5).pvalue) if m else 1.0
    low, high = newcombe_paired_ci(t["both"], t["only_a"], t["only_b"], t["neither"])
    n = len(a)
    return {"n": n, "only_base_correct": t["only_a"], "only_finetuned_correct": t["only_b"],
            "p_value": round(min(1.0, p), 6), "finetuned_minus_base": round((t["only_b"] - k) / n, 6) if n else 0.0,
            "ci95_low": low, "ci95_high": high}


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
