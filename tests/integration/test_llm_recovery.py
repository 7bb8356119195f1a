"""Nothing fails silently, and every failure has a way out that `dvc repro` can take: a short API key
that must not eat replies, synthesize with nothing kept, validation failures re-asked through a
param, malformed batch lines in the ledger, a full disk under the ledger, and a circuit breaker when
the API is down.

A real loopback server (tests/fake_openai.py); the commands run in-process (CliRunner) except where
a real subprocess is the point.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from stages.cli import main
from tests.fake_openai import Reply
from tests.integration.test_llm_engine import (_output, _translate_args, _write_jsonl, good_reply, item_number,
                                               request_payload, translation)
from tests.integration.test_llm_failures import ids_asked, setup_translate, translate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def out_records(d: Path) -> list[dict]:
    return [json.loads(ln) for ln in (d / "out.jsonl").read_text(encoding="utf-8").splitlines()]


# --- 1. a short key must not eat replies -------------------------------------------------------------
@pytest.mark.parametrize("key", ["local", "e"])
def test_a_short_key_leaves_every_reply_intact(fake_openai, workdir, monkeypatch, key):
    d = workdir
    setup_translate(d, 3)
    monkeypatch.setenv("OPENAI_API_KEY", key)  # README: "for local servers any value works, e.g. local"

    def reply(req):
        tr = translation(item_number(request_payload(req)))
        tr["contexto"] = tr["contexto"].replace("mercado", "localidade")
        return Reply(content=json.dumps(tr, ensure_ascii=False))

    fake_openai.responder = reply
    result = translate(d)
    assert result.exit_code == 0, _output(result)
    out = out_records(d)
    assert [r["context"] for r in out] == [
        translation(n)["contexto"].replace("mercado", "localidade") for n in range(3)]
    assert "***" not in (d / "out.jsonl").read_text() + (d / "ledger/translate.jsonl").read_text()
    # the key still went to the server as the credential
    assert {v for r in fake_openai.requests for h, v in r["headers"].items() if h.lower() == "authorization"} == {f"Bearer {key}"}
