"""`gabarito mcq` end to end: files, a URL on a loopback server, a hub-style dataset read offline."""

from __future__ import annotations

import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from gabarito.params import MCQParams, MCQSource
from stages import mcq as M
from tests.cli_runner import invoke
from tests.fake_secrets import FAKE_KEY

ROW = {"id": "q1", "question": "Quanto é 2 + 2?", "options": ["3", "4", "5", "6", "22"], "answer": "B"}


def _jsonl(*rows) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _params(folder, sources, **mcq):
    (folder / "params.yaml").write_text(yaml.safe_dump({"mcq": {"sources": sources, **mcq}}), encoding="utf-8")


def _run(folder, *extra):
    return invoke(["mcq", "--out-pt", "out/pt.jsonl", "--out-en", "out/en.jsonl", "--metrics", "out/mcq.json",
                   *extra], cwd=folder)


@pytest.fixture
def http_dir(tmp_path):
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    served = tmp_path / "served"
    served.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_url_source_is_downloaded_and_named_after_its_file(http_dir):
    served, base = http_dir
    (served / "oab.csv").write_text("\ufeffid,question,option_a,option_b,answer\nu1,Q?,sim,não,A\n", encoding="utf-8")
    rows = M.read_entry(MCQSource(url=f"{base}/oab.csv?v=2"), timeout=10)
    records, metrics, problems = M.build([rows], MCQParams(sources=[]))
    assert problems == []
    assert [(r["id"], r["answers"], r["label"], r["source"]) for r in records] == [("u1", ["sim", "não"], 0, "oab")]
    assert metrics["sources"]["oab"]["read"] == 1


def test_a_failed_download_is_a_problem_of_that_source_without_the_query(http_dir):
    _, base = http_dir
    rows = M.read_entry(MCQSource(url=f"{base}/nope.jsonl?v=2"), timeout=10)
    _, _, problems = M.build([rows], MCQParams(sources=[]))
    assert len(problems) == 1 and "download failed" in problems[0]
    assert "?<hidden>" in problems[0] and "v=2" not in problems[0]


def test_a_hub_dataset_is_read_offline_at_its_revision_with_its_splits(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    repo = tmp_path / "vestibular"
    repo.mkdir()
    # one schema across a dataset's splits, as on the hub; a null cell is a field left out
    row = {**ROW, "split": None, "language": None}
    (repo / "train.jsonl").write_text(_jsonl(row, {**row, "id": "q2", "split": "test", "language": "pt"}),
                                      encoding="utf-8")
    (repo / "validation.jsonl").write_text(_jsonl({**row, "id": "q3", "answer": "E", "language": "en"},
                                                  {**row, "id": "q4", "split": "test"}), encoding="utf-8")
    entry = MCQSource(hub=str(repo), revision="0123abc", splits=["train", "validation"])
    records, metrics, problems = M.build([M.read_entry(entry, timeout=1)], MCQParams(sources=[]))
    assert problems == []
    assert [(r["id"], r["split"], r["label"], r["language"], r["source"]) for r in records] == [
        ("q1", "train", 1, "pt", "vestibular"), ("q2", "test", 1, "pt", "vestibular"),
        ("q3", "validation", 4, "en", "vestibular"), ("q4", "test", 1, "pt", "vestibular")]
    missing = list(M.read_entry(MCQSource(hub=str(repo), revision="0123abc", splits=["dev"]), timeout=1).read())
    assert len(missing) == 1 and "split dev: could not load" in missing[0]
    # a folder given as a hub source has no revision that pins it: outside the stage's deps it is named
    assert M.outside(entry, str(tmp_path / "data/raw/mcq")) == str(repo)
    assert M.outside(entry, str(tmp_path)) is None
    assert M.outside(MCQSource(hub="me/vestibular", revision="0123abc"), str(tmp_path)) is None


def test_the_command_writes_pt_and_en_apart_with_metrics(tmp_path):
    raw = tmp_path / "data/raw/mcq"
    raw.mkdir(parents=True)
    (raw / "prova.jsonl").write_text(_jsonl(ROW, {**ROW, "id": "q2", "language": "en"}, ROW), encoding="utf-8")
    _params(tmp_path, [{"path": "data/raw/mcq/prova.jsonl"}])
    result = _run(tmp_path, "--raw-dir", "data/raw/mcq")
    assert result.exit_code == 0, result.output
    pt = [json.loads(x) for x in (tmp_path / "out/pt.jsonl").read_text().splitlines()]
    en = [json.loads(x) for x in (tmp_path / "out/en.jsonl").read_text().splitlines()]
    assert [r["id"] for r in pt] == ["q1"] and [r["id"] for r in en] == ["q2"]
    metrics = json.loads((tmp_path / "out/mcq.json").read_text())
    assert (metrics["items"], metrics["duplicates"], metrics["sources"]["prova"]["read"]) == (2, 1, 3)
    assert "1 repeated row(s) kept once: 1 pt -> out/pt.jsonl, 1 en -> out/en.jsonl" in result.output
    assert "outside" not in result.output
    first = (tmp_path / "out/pt.jsonl").read_bytes()
    assert _run(tmp_path).exit_code == 0 and (tmp_path / "out/pt.jsonl").read_bytes() == first


def test_the_command_reports_every_problem_and_writes_nothing(tmp_path):
    (tmp_path / "a.jsonl").write_text(_jsonl({**ROW, "answer": "F"}, {**ROW, "id": "q2", "options": ["x"]}),
                                      encoding="utf-8")
    _params(tmp_path, [{"path": "a.jsonl"}, {"path": "missing.csv"}])
    result = _run(tmp_path, "--raw-dir", "data/raw/mcq")
    assert result.exit_code == 1
    assert "mcq: 3 problem(s)" in result.output and "a.jsonl:1: answer 'F' is outside the 5 options" in result.output
    assert "a.jsonl:2: 1 option(s)" in result.output and "missing.csv: file not found" in result.output
    assert "a.jsonl is outside data/raw/mcq; dvc does not see it change" in result.output
    assert not (tmp_path / "out").exists()


def test_no_sources_writes_empty_outputs_and_says_so(tmp_path):
    _params(tmp_path, [])
    result = _run(tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out/pt.jsonl").read_text() == "" and (tmp_path / "out/en.jsonl").read_text() == ""
    assert "no sources configured (mcq.sources is empty)" in result.output


# --- issue 23 ----------------------------------------------------------------------------------------------


def test_a_source_linked_to_the_environment_is_refused_and_nothing_of_it_is_quoted(tmp_path, monkeypatch):
    """`ln -s /proc/self/environ data/raw/mcq/notas.csv` quoted the environment as an unknown column."""
    raw = tmp_path / "data/raw/mcq"
    raw.mkdir(parents=True)
    (raw / "notas.csv").symlink_to("/proc/self/environ")
    _params(tmp_path, [{"path": "data/raw/mcq/notas.csv"}])
    result = _run(tmp_path, "--raw-dir", "data/raw/mcq")
    assert result.exit_code == 1 and "data/raw/mcq/notas.csv: outside the project (it leads to /proc/" in result.output
    assert "Copy it under data/raw/mcq/" in result.output and "`dvc import-url /proc/" in result.output
    assert "\x00" not in result.output and "PATH=" not in result.output
    # the same dump copied into the project is read: quoted short and scrubbed
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    (raw / "notas.csv").unlink()
    (raw / "notas.csv").write_text(f"PATH=/usr/bin\x00OPENAI_API_KEY={FAKE_KEY}\x00" + "HOME=/root\x00" * 200,
                                   encoding="utf-8")
    result = _run(tmp_path, "--raw-dir", "data/raw/mcq")
    assert result.exit_code == 1
    assert "notas.csv:1: unknown column 'PATH=/usr/bin\\x00OPENAI_API_KEY=***" in result.output
    assert "TEST" not in result.output and "\x00" not in result.output and len(result.output) < 600, result.output
    assert not (tmp_path / "out").exists()


# --- issue 22, section 6 -------------------------------------------------------------------------------------
def test_annulled_and_figure_rows_are_skipped_counted_and_logged_once_per_source(tmp_path):
    (tmp_path / "enem.jsonl").write_text(
        _jsonl(ROW, {**ROW, "id": "q2", "answer": "Anulado"}, {**ROW, "id": "q3", "needs_figure": True}),
        encoding="utf-8")
    (tmp_path / "b.csv").write_text("id,question,option_a,option_b,answer\nb1,Q?,x,y,A\n", encoding="utf-8")
    _params(tmp_path, [{"path": "enem.jsonl"}, {"path": "b.csv"}])
    result = _run(tmp_path)
    assert result.exit_code == 0, result.output
    assert "mcq: enem: skipped annulled 1 (q2); needs figure 1 (q3)" in result.output
    assert "b: skipped" not in result.output
    metrics = json.loads((tmp_path / "out/mcq.json").read_text())
    assert metrics["items"] == 2 and metrics["skipped"] == {"annulled": 1, "needs_figure": 1}
    _params(tmp_path, [{"path": "enem.jsonl"}], include_figure_questions=True)
    result = _run(tmp_path)
    assert result.exit_code == 0 and "needs figure" not in result.output and "skipped annulled 1 (q2)" in result.output
    assert json.loads((tmp_path / "out/mcq.json").read_text())["items"] == 2
