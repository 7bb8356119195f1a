"""Shared fixtures. Every test is hermetic: no network beyond loopback, no GPU, temp dirs only."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests import tests.pdfgen / tests.fake_openai

from tests.fake_openai import FakeOpenAI  # noqa: E402


@pytest.fixture(autouse=True)
def _no_real_api(monkeypatch):
    """No test may reach a real API or hub: drop keys and endpoints from the environment."""
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HF_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.fixture
def fake_openai(monkeypatch):
    """A loopback OpenAI-compatible server; the test sets ``server.responder``."""
    with FakeOpenAI() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        yield server


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def sample_corpus() -> list[str]:
    import csv

    texts = []
    for split in ("train", "validation"):
        with open(ROOT / "data/raw/cosmosqa" / f"{split}.csv", encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                texts += [row["context"], row["question"]]
    with open(ROOT / "data/raw/cosmosqa_pt/cosmosqa_pt.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            texts += [rec["context"], rec["question"], *rec["answers"]]
    return texts


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory, sample_corpus) -> Path:
    """A tiny Llama base model + tokenizer built from the bundled sample, saved once per session."""
    from gabarito.params import TinyModelParams
    from stages.base_model import build_tiny

    out = tmp_path_factory.mktemp("base")
    model, tok = build_tiny(sample_corpus + ["Alternativa A B C D", "Contexto Pergunta"], TinyModelParams())
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def formatted(tiny_base):
    """(16 train, 6 validation) chat-formatted records of the bundled sample, for the tiny base."""
    from gabarito.chat import load_prompts
    from gabarito.modeling import load_tokenizer
    from stages.format import format_records
    from stages.ingest import load_local
    from stages.translate import join_dataset, load_translations

    items = load_local(ROOT / "data/raw/cosmosqa", ["train", "validation"])
    pt, _ = join_dataset(items, load_translations(ROOT / "data/raw/cosmosqa_pt"), "sample")
    recs = [{**r, "kind": "mcq"} for r in pt]
    out = format_records(recs, load_tokenizer(tiny_base), load_prompts(ROOT / "prompts/chat.v1.yaml"),
                         letters=list("ABCD"), answer_prefix="Alternativa", include_open=False)
    return ([r for r, s in zip(out, recs) if s["split"] == "train"][:16],
            [r for r, s in zip(out, recs) if s["split"] == "validation"][:6])


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A real 64 KiB tmpfs, for full-disk tests (mounting needs root; skipped where it is not allowed)."""
    import subprocess

    mnt = tmp_path / "tiny_fs"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "--lazy", str(mnt)], check=True)  # lazy: a file left open does not keep it
