"""The evaluation speed benchmarks keep running and print figures that agree with each other:
benchmarks/eval_speed.py (letter, generate, the thesis's reference procedure) on the tiny base, and
benchmarks/eval_letter_7b.py in its small CPU shape."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1"}


def _module(repo_root, name, monkeypatch):
    # the script puts benchmarks/ on sys.path and sets TQDM_DISABLE when imported: undone after the test
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    spec = importlib.util.spec_from_file_location(name, repo_root / f"benchmarks/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_eval_speed_ratios_are_the_printed_times_divided(repo_root, tiny_base, formatted, tmp_path):
    from gabarito.io import write_jsonl

    validation = tmp_path / "validation.jsonl"
    write_jsonl(validation, formatted[1])  # 6 chat-formatted multiple-choice items
    out = subprocess.run([sys.executable, "benchmarks/eval_speed.py", "--base", str(tiny_base), "--validation",
                          str(validation), "--items", "6", "--batch-size", "4", "--new-tokens", "8", "12",
                          "--reference-items", "1", "--repeats", "1", "--threads", "1"],
                         cwd=repo_root, env=ENV, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    rows = {m.group(1).strip(): (int(m.group(2)), float(m.group(3)), float(m.group(4)), float(m.group(5)))
            for m in re.finditer(r"^  (letter|generate, \d+ new tokens(?: \(pipeline\))?|reference \(thesis\))\s+"
                                 r"(\d+)\s+\d+\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x$", text, flags=re.MULTILINE)}
    assert set(rows) == {"letter", "generate, 8 new tokens (pipeline)", "generate, 12 new tokens",
                         "reference (thesis)"}, text
    letter_ms = rows["letter"][1]
    assert letter_ms > 0 and rows["letter"][3] == 1.0
    for label, (items, ms, passes, ratio) in rows.items():
        # the ratio is computed from unrounded times; allow for the printed roundings (0.01 ms, 0.1x)
        assert abs(ratio - ms / letter_ms) <= 0.051 + ratio * 0.01 / letter_ms, (label, text)
    assert rows["letter"][2] == 1.0  # one forward pass per batch
    assert 1 <= rows["generate, 8 new tokens (pipeline)"][2] <= 8 and 1 <= rows["generate, 12 new tokens"][2] <= 12
    assert rows["reference (thesis)"][0] == 1
    new = float(re.search(r"mean new tokens ([\d.]+) of 256; EOS sampled on (\d+) of 1 items", text).group(1))
    assert rows["reference (thesis)"][2] == new  # one pass per new token, batch of one
    target = re.search(r"target .* than the reference procedure: ([\d.]+)x (PASS|FAIL)", text)
    ratio = rows["reference (thesis)"][3]
    assert float(target.group(1)) == ratio and target.group(2) == ("PASS" if ratio >= 20 else "FAIL")
    assert re.search(r"load average [\d.]+ before, [\d.]+ after", text)


def test_letter_7b_small_shape_scores_every_item_on_cpu(repo_root):
    out = subprocess.run([sys.executable, "benchmarks/eval_letter_7b.py", "--shape", "small", "--items", "20",
                          "--batch-size", "8", "--prompt-tokens", "40", "60", "--threads", "1"],
                         cwd=repo_root, env=ENV, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    m = re.search(r"items\s+20 synthetic, prompts (\d+)-(\d+) tokens .*\(mean ([\d.]+), .*\): ([\d,]+) tokens", text)
    low, high, mean, tokens = int(m.group(1)), int(m.group(2)), float(m.group(3)), int(m.group(4).replace(",", ""))
    assert 41 <= low <= high <= 61 and abs(mean - tokens / 20) < 0.06  # drawn 40-60, plus the answer prefix
    assert "batch          8," in text
    for label in ("base", r"base \+ LoRA"):
        m = re.search(rf"^  {label}\s+([\d.]+) s wall, ([\d.,]+) items/s, ([\d,]+) tokens/s", text, flags=re.MULTILINE)
        seconds, per_s = float(m.group(1)), float(m.group(2).replace(",", ""))
        tokens_s = int(m.group(3).replace(",", ""))
        assert seconds > 0 and abs(per_s - 20 / seconds) <= 0.05 + per_s * 0.005 / seconds, text
        assert abs(tokens_s - tokens / seconds) <= 1 + tokens_s * 0.005 / seconds, text
    # an unmerged LoRA whose B is zero changes no probability beyond float rounding
    assert float(re.search(r"LoRA check\s+max \|.*\| = (\S+)", text).group(1)) < 1e-4
    assert "in under 2 minutes on a GPU: n/a" in text  # the target is judged on CUDA with the 7B shape only


def test_letter_7b_synthetic_items_are_the_drawn_length_and_score_one_token_per_letter(repo_root, monkeypatch):
    from gabarito.scoring import letter_token_ids

    bench = _module(repo_root, "eval_letter_7b", monkeypatch)
    assert bench.VALIDATION_ITEMS == 2985 and bench.TARGET_SECONDS == 120
    vocab = bench.SHAPES["mistral-7b"]["vocab_size"]
    tok = bench.word_tokenizer(vocab)
    prompts = bench.synthetic_prompts(50, 250, 450, vocab, seed=0)
    lengths = [len(ids) for ids in tok(prompts, add_special_tokens=False)["input_ids"]]
    assert lengths == [len(p.split()) for p in prompts] and 250 <= min(lengths) and max(lengths) <= 450
    assert all(max(ids) < vocab and min(ids) > 6 for ids in tok(prompts, add_special_tokens=False)["input_ids"])
    assert bench.synthetic_prompts(3, 250, 450, vocab, seed=0) == prompts[:3]  # seeded
    prefix, letters = letter_token_ids(tok, bench.ANSWER_PREFIX, bench.LETTERS)
    assert prefix == [2] and letters == [3, 4, 5, 6]
    assert tok.pad_token_id == 0 and tok.eos_token_id == 1
