"""Cosmos QA from http(s) URLs (a loopback server), and LLM-written Q&A pairs through the CLI."""

from __future__ import annotations

import json
import os
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from gabarito.cli import main
from stages.ingest import load_urls
from tests.fake_openai import Reply

HEADER = "id,context,question,answer0,answer1,answer2,answer3,label\n"


@pytest.fixture
def http_dir(tmp_path):
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_ingest_from_urls_reads_csv_and_jsonl(http_dir):
    folder, base = http_dir
    (folder / "train.csv").write_text("\ufeff" + HEADER + 'a1,"It rained, so I stayed.",Why?,w,x,y,z,3\n')
    row = {"id": "v1", "context": "c", "question": "q", "answer0": "a", "answer1": "b", "answer2": "c",
           "answer3": "d", "label": 1}
    (folder / "valid.jsonl").write_text(json.dumps(row) + "\n")
    records = load_urls({"train": f"{base}/train.csv", "validation": f"{base}/valid.jsonl"}, ["train", "validation"],
                        timeout=10)
    assert records == [
        {"id": "a1", "split": "train", "context": "It rained, so I stayed.", "question": "Why?",
         "answers": ["w", "x", "y", "z"], "label": 3, "question_type": "cause", "none_correct": False,
         "source": "cosmosqa", "language": "en"},
        {"id": "v1", "split": "validation", "context": "c", "question": "q", "answers": ["a", "b", "c", "d"],
         "label": 1, "question_type": "other", "none_correct": False, "source": "cosmosqa", "language": "en"},
    ]


def test_ingest_from_a_missing_url_is_a_clear_error(http_dir):
    from gabarito.io import InputError

    _, base = http_dir
    with pytest.raises(InputError, match="download failed") as exc:
        load_urls({"train": f"{base}/nope.csv?v=2"}, ["train"], timeout=10)
    assert "?<hidden>" in str(exc.value) and "v=2" not in str(exc.value)  # a query may hold a token: never shown


@pytest.mark.parametrize("url,what", [
    ("https://bucket.s3.amazonaws.com/train.csv?X-Amz-Credential=AK&X-Amz-Signature=abc", "X-Amz-Credential"),
    ("https://acct.blob.core.windows.net/c/train.csv?sv=2024&sig=abc", "sig"),
    ("https://user:pw@example.org/train.csv", "user name or password"),
])
def test_signed_urls_are_refused_in_params(url, what):
    from gabarito.params import IngestParams

    with pytest.raises(ValueError, match=f"carries a credential .*{what}"):
        IngestParams(source="url", urls={"train": url})
    assert IngestParams(source="url", urls={"train": "https://example.org/train.csv?download=1"})  # a plain query


PAGE = ("Art. 3º A jornada de estágio não poderá ultrapassar seis horas diárias e trinta horas semanais.\n\n"
        "Art. 4º O estagiário terá seguro contra acidentes pessoais contratado pela universidade.")


def test_synthesize_with_an_llm_keeps_grounded_pairs_only(tmp_path, fake_openai):
    def responder(req):
        return Reply(content=json.dumps({"pares": [
            {"pergunta": "Qual é a jornada máxima de estágio?",
             "resposta": "Seis horas diárias e trinta horas semanais.",
             "trecho": "não poderá ultrapassar seis horas diárias e trinta horas semanais"},
            {"pergunta": "Quanto custa o restaurante universitário?",
             "resposta": "O almoço custa dois reais e cinquenta centavos no restaurante.",
             "trecho": "-"},
        ]}, ensure_ascii=False))

    fake_openai.responder = responder
    (tmp_path / "pages.jsonl").write_text(json.dumps({"doc": "reg.pdf", "page": 2, "method": "text",
                                                      "status": "ok", "text": PAGE}) + "\n")
    (tmp_path / "qa").mkdir()
    (tmp_path / "prompt.txt").write_text("Sistema\n---\nEscreva {{n}} pares sobre {{doc}} p. {{page}}:\n{{chunk}}\n")
    (tmp_path / "params.yaml").write_text(
        "synthesize: {provider: openai, pairs_per_chunk: 2, llm: {model: m, max_retries: 0, timeout_s: 5}}\n")
    args = ["synthesize", "--pages", "pages.jsonl", "--qa-dir", "qa", "--prompt", "prompt.txt",
            "--ledger", "ledger.jsonl", "--out", "pairs.jsonl", "--rejected", "rejected.jsonl",
            "--metrics", "metrics.json", "--no-progress"]
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        again = CliRunner().invoke(main, args)
        assert again.exit_code == 0, again.output
    finally:
        os.chdir(old)
    kept = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert [(k["question"], k["doc"], k["page"], k["chunk_id"]) for k in kept] == [
        ("Qual é a jornada máxima de estágio?", "reg.pdf", 2, "reg.pdf#0")]
    assert kept[0]["span"].startswith("não poderá ultrapassar")
    assert [(r["question"], r["reason"]) for r in rejected] == [("Quanto custa o restaurante universitário?", "ungrounded")]
    user = fake_openai.requests[0]["json"]["messages"][1]["content"]
    assert "Escreva 2 pares sobre reg.pdf p. 2" in user and "seguro contra acidentes" in user
    # the rerun came from the ledger
    assert len(fake_openai.requests) == 1
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["api_calls"] == 0 and metrics["cache_hits"] == 1  # the metrics of the last run
