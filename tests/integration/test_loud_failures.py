"""Nothing fails silently: a stage that gets input and makes nothing, a hub nobody can reach, a profile
this machine cannot run and a full disk each end in one message and a non-zero exit, never in an
empty output cached as a success or in a traceback.

The stages run as `dvc repro` runs them: in-process through tests/cli_runner.py, or as a real
`python -m gabarito.cli` process where what the person sees on stderr (no traceback) is the point.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_runner import invoke
from tests.pdfgen import huge_page_pdf

ROOT = Path(__file__).resolve().parents[2]
HEADER = "id,context,question,answer0,answer1,answer2,answer3,label\n"
ROW = 'q{n},"I went out, and it rained all day long.",Why did I go out?,a {n},b {n},c {n},d {n},{label}\n'


def run_cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """`gabarito ARGS` as its own process (as dvc starts it), with this worktree's code."""
    return subprocess.run([sys.executable, "-m", "gabarito.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def mcq(id_: str, split: str, **overrides) -> dict:
    return {"id": id_, "split": split, "context": f"Um contexto suficientemente longo para o item {id_}.",
            "question": f"Qual é a pergunta do item {id_}?", "answers": [f"um {id_}", f"dois {id_}",
                                                                          f"três {id_}", f"quatro {id_}"],
            "label": 1, **overrides}


# --- non-empty input, zero records out ---------------------------------------------------------------
def test_clean_with_every_training_item_quarantined_fails_naming_counts_and_the_quarantine(tmp_path):
    junk = "§§§ ¤¤¤ ©©© ®®® ¶¶¶ ±±± ××× ÷÷÷ ¬¬¬ µµµ"  # symbols, not text: fails min_clean_char_ratio
    jsonl(tmp_path / "mcq.jsonl", [mcq(f"t{i}", "train", context=junk) for i in range(3)]
          + [mcq("t3", "train", label=9), mcq("v1", "validation")])
    jsonl(tmp_path / "open.jsonl", [])
    (tmp_path / "params.yaml").write_text("clean: {}\n")
    result = invoke(["clean", "--mcq", "mcq.jsonl", "--open", "open.jsonl", "--out-dir", "clean",
                     "--metrics", "clean.json"], tmp_path)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # a message, not an exception escaping
    out = result.output
    assert "clean (train): 4 train item(s) in, 0 kept out." in out
    assert "4 item(s) quarantined in all, most for 'junk: context is mostly non-text characters' (3)" in out
    assert "'schema: label 9 outside 0-3' (1)" in out
    assert "clean/quarantine.jsonl" in out and "clean.json" in out
    # the reasons are where the message says
    quarantine = [json.loads(x) for x in (tmp_path / "clean/quarantine.jsonl").read_text().splitlines()]
    assert [q["id"] for q in quarantine] == ["t0", "t1", "t2", "t3"]
    assert json.loads((tmp_path / "clean.json").read_text())["quarantined"] == 4


def test_clean_that_keeps_items_in_both_splits_passes(tmp_path):
    jsonl(tmp_path / "mcq.jsonl", [mcq("t1", "train"), mcq("t2", "train", label=9), mcq("v1", "validation")])
    jsonl(tmp_path / "open.jsonl", [])
    (tmp_path / "params.yaml").write_text("clean: {}\n")
    result = invoke(["clean", "--mcq", "mcq.jsonl", "--open", "open.jsonl", "--out-dir", "clean",
                     "--metrics", "clean.json"], tmp_path)
    assert result.exit_code == 0, result.output
    assert "clean: train 1, validation 1, test 0, quarantined 1" in result.output


def test_ingest_of_a_split_with_a_header_and_no_rows_fails(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "train.csv").write_text(HEADER + ROW.format(n=1, label=0))
    (raw / "validation.csv").write_text(HEADER)  # exported with a filter that matched nothing
    (tmp_path / "params.yaml").write_text("ingest: {source: local}\n")
    result = invoke(["ingest", "--local-dir", "raw", "--out", "out.jsonl"], tmp_path)
    assert result.exit_code == 1, result.output
    assert "ingest: validation: 0 items read from raw ({'train': 1, 'validation': 0})" in result.output
    assert "remove the split from ingest.splits" in result.output
    assert not (tmp_path / "out.jsonl").exists()


def test_extract_of_pdfs_with_no_readable_page_fails_naming_the_count(tmp_path):
    # a poster page too large to render, and nothing else: one PDF in, no page of text out
    huge_page_pdf(tmp_path / "pdfs" / "poster.pdf")
    (tmp_path / "params.yaml").write_text("extract: {}\n")
    result = invoke(["extract", "--pdf-dir", "pdfs", "--out", "pages.jsonl", "--report", "report.json"], tmp_path)
    assert result.exit_code == 1, result.output
    assert "pdfs/poster.pdf: page_errors" in result.output
    assert "extract: 1 PDF file(s) in, 0 pages with text out." in result.output
    assert not (tmp_path / "pages.jsonl").exists()


def test_format_with_only_open_questions_and_include_pdf_qa_off_fails(tmp_path, tiny_base):
    jsonl(tmp_path / "train.jsonl", [{"id": "o1", "kind": "open", "split": "train", "question": "Qual o prazo?",
                                      "answer": "Dois anos."}])
    jsonl(tmp_path / "validation.jsonl", [{**mcq("v1", "validation"), "kind": "mcq"}])
    jsonl(tmp_path / "test.jsonl", [])
    (tmp_path / "params.yaml").write_text("format: {include_pdf_qa: false}\n")
    result = invoke(["format", "--train", "train.jsonl", "--validation", "validation.jsonl", "--test", "test.jsonl",
                     "--base", str(tiny_base), "--prompts", str(ROOT / "prompts/chat.v1.yaml"), "--out-dir",
                     "processed", "--metrics", "format.json"], tmp_path)
    assert result.exit_code == 1, result.output
    assert "format (train): 1 clean record(s) in, 0 examples out." in result.output
    assert "format.include_pdf_qa is false" in result.output
    assert not (tmp_path / "processed").exists()


# --- the thesis profile with no hub ------------------------------------------------------------------
def test_thesis_base_model_without_the_hub_fails_at_base_model_with_one_message(tmp_path):
    """HF_HUB_OFFLINE=1 (conftest sets it for every test) and an empty hub cache: base_model, the first
    stage that needs the hub, stops with what, why and how to switch; it writes no models/base."""
    jsonl(tmp_path / "corpus.jsonl", [{**mcq("t1", "train"), "kind": "mcq"}])
    (tmp_path / "models").mkdir()
    proc = run_cli(["base-model", "--corpus", "corpus.jsonl", "--prompts", str(ROOT / "prompts/chat.v1.yaml"),
                    "--out", "models/base", "--params", str(ROOT / "profiles/thesis.yaml")], tmp_path,
                   HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    [message] = [ln for ln in proc.stderr.splitlines() if ln.startswith("Error:")]
    assert message.startswith("Error: base model HuggingFaceH4/zephyr-7b-beta@3bac358730f8806e5c3dc7c7e19eb36e045bf720: "
                              "not reachable on the Hugging Face hub and not in the local cache")
    assert "HF_HUB_OFFLINE is set" in message and "base_model.source=tiny" in message
    assert len(proc.stderr.splitlines()) <= 3, proc.stderr  # one message, not a page of hub internals
    assert not (tmp_path / "models/base").exists()
    assert list((tmp_path / "models").iterdir()) == []  # no temporary folder left behind either


def test_format_on_an_unreachable_hub_reference_is_the_same_message(tmp_path):
    """A models/base written earlier (or pulled with dvc) by a hub profile: format says the same thing."""
    base = tmp_path / "base"
    base.mkdir()
    (base / "reference.json").write_text(json.dumps({"hub_id": "HuggingFaceH4/zephyr-7b-beta",
                                                     "revision": "3bac358730f8806e5c3dc7c7e19eb36e045bf720"}))
    jsonl(tmp_path / "train.jsonl", [{**mcq("t1", "train"), "kind": "mcq"}])
    (tmp_path / "params.yaml").write_text("format: {}\n")
    proc = run_cli(["format", "--train", "train.jsonl", "--validation", "train.jsonl", "--test", "train.jsonl",
                    "--base", "base", "--prompts", str(ROOT / "prompts/chat.v1.yaml"), "--out-dir", "processed",
                    "--metrics", "format.json"], tmp_path,
                   HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "Error: base model HuggingFaceH4/zephyr-7b-beta@3bac3587" in proc.stderr
    assert not (tmp_path / "processed").exists()


# --- doctor against the active params ----------------------------------------------------------------
def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(_has_cuda(), reason="the thesis profile runs on a machine with a CUDA GPU")
def test_doctor_fails_the_thesis_profile_on_a_machine_without_cuda(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    from click.testing import CliRunner

    from gabarito.cli import main

    result = CliRunner().invoke(main, ["doctor", "--params", "profiles/thesis.yaml"])
    assert result.exit_code == 1, result.output
    assert re.search(r"✗ profile +profiles/thesis\.yaml needs a CUDA GPU \(train\.quantization\.bnb_4bit_compute_dtype="
                     r"bfloat16, train\.sft\.bf16=true\); this machine has none", result.output), result.output
    assert "make profile PROFILE=offline" in result.output
    offline = CliRunner().invoke(main, ["doctor", "--params", "params.yaml"])
    assert offline.exit_code == 0, offline.output
    assert re.search(r"✓ profile +params\.yaml runs here \(CPU; no GPU setting\)", offline.output), offline.output


# --- a full disk ---------------------------------------------------------------------------------------


def test_ingest_on_a_tiny_tmpfs_is_a_message_and_the_old_output_stays(tmp_path, tiny_tmpfs):
    (tmp_path / "params.yaml").write_text("ingest: {source: local}\n")
    out = tiny_tmpfs / "cosmosqa_en.jsonl"
    out.write_text("previous output\n")
    # the bundled sample is ~170 KB as JSONL: it cannot fit in the 64 KiB disk
    proc = run_cli(["ingest", "--local-dir", str(ROOT / "data/raw/cosmosqa"), "--out", str(out)], tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"Error: {out}: no space left on the device" in proc.stderr
    assert out.read_text() == "previous output\n"
    assert [p.name for p in tiny_tmpfs.iterdir()] == ["cosmosqa_en.jsonl"]  # no half-written temp file


def test_clean_on_a_tiny_tmpfs_keeps_the_old_folder(tmp_path, tiny_tmpfs):
    from stages.ingest import load_local
    from stages.translate import join_dataset, load_translations

    items = load_local(ROOT / "data/raw/cosmosqa", ["train", "validation"])
    pt, _ = join_dataset(items, load_translations(ROOT / "data/raw/cosmosqa_pt"), "sample")
    jsonl(tmp_path / "mcq.jsonl", pt)
    jsonl(tmp_path / "open.jsonl", [])
    (tmp_path / "params.yaml").write_text("clean: {}\n")
    old = tiny_tmpfs / "clean"
    old.mkdir()
    (old / "train.jsonl").write_text("previous train\n")
    proc = run_cli(["clean", "--mcq", "mcq.jsonl", "--open", "open.jsonl", "--out-dir", str(old),
                    "--metrics", "clean.json"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"Error: {old}: no space left on the device" in proc.stderr
    assert (old / "train.jsonl").read_text() == "previous train\n"
    assert [p.name for p in tiny_tmpfs.iterdir()] == ["clean"]


def test_exams_on_a_full_disk_is_a_message_and_the_old_items_stay(tmp_path, tiny_tmpfs):
    (tmp_path / "params.yaml").write_text("exams: {}\n")
    out = tiny_tmpfs / "exam_items.jsonl"
    out.write_text("previous items\n")
    (tiny_tmpfs / "filler").write_bytes(b"\0" * 50_000)  # the sample's 31 items (~16 KB) no longer fit
    proc = run_cli(["exams", "--exam-dir", str(ROOT / "data/raw/exams"), "--out", str(out), "--report",
                    str(tiny_tmpfs / "exams.json")], tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"Error: {out}: no space left on the device" in proc.stderr
    assert out.read_text() == "previous items\n"
    assert sorted(p.name for p in tiny_tmpfs.iterdir()) == ["exam_items.jsonl", "filler"]


@pytest.mark.parametrize("present, missing", [("train", "validation"), ("validation", "train")])
def test_clean_with_a_split_that_never_came_in_fails(tmp_path, present, missing):
    """A train-only (or validation-only) input used to pass clean with 'validation 0', and evaluate then
    wrote an accuracy of 0.0 over no items."""
    jsonl(tmp_path / "mcq.jsonl", [mcq("a1", present), mcq("a2", present)])
    jsonl(tmp_path / "open.jsonl", [])
    (tmp_path / "params.yaml").write_text("clean: {}\n")
    result = invoke(["clean", "--mcq", "mcq.jsonl", "--open", "open.jsonl", "--out-dir", "clean",
                     "--metrics", "clean.json"], tmp_path)
    assert result.exit_code == 1, result.output
    assert f"clean: no {missing} items came in (items per split: {present} 2)" in result.output


def test_evaluate_with_no_validation_items_fails_before_loading_a_model(tmp_path, repo_root):
    jsonl(tmp_path / "validation.jsonl", [])
    jsonl(tmp_path / "train.jsonl", [])
    (tmp_path / "nobase").mkdir()
    (tmp_path / "noadapter").mkdir()
    result = invoke(["evaluate", "--validation", "validation.jsonl", "--test", "train.jsonl", "--train",
                     "train.jsonl", "--base", "nobase", "--adapter", "noadapter", "--prompts",
                     str(repo_root / "prompts/chat.v1.yaml"), "--predictions", "p.jsonl",
                     "--test-predictions", "pt.jsonl", "--metrics", "eval.json", "--plots-dir", "plots",
                     "--report", "report.md", "--headline", "headline.json", "--breakdown", "breakdown.json", "--params",
                     str(repo_root / "params.yaml")], tmp_path)
    assert result.exit_code == 1, result.output
    assert "validation.jsonl: no validation items to score" in result.output
    assert not (tmp_path / "eval.json").exists()
