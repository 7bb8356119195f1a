"""Bad input ends in a clear message naming the file and row, and nothing produced before is lost."""

from __future__ import annotations

import json

from tests.cli_runner import invoke
from tests.pdfgen import corrupt_pdf, text_pdf

HEADER = "id,context,question,answer0,answer1,answer2,answer3,label\n"
ROW = 'q{n},"I went out, and it rained.",Why?,a,b,c,d,{label}\n'




def write_params(path, text=""):
    path.write_text(text or "ingest: {source: local}\n", encoding="utf-8")


def test_malformed_csv_row_names_file_and_line_and_keeps_old_output(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "train.csv").write_text(HEADER + ROW.format(n=1, label=0) + 'q2,"unterminated,Why?,a,b,c,d,1\n')
    (raw / "validation.csv").write_text(HEADER + ROW.format(n=3, label=2))
    write_params(tmp_path / "params.yaml")
    out = tmp_path / "out.jsonl"
    out.write_text("previous output\n")
    result = invoke(["ingest", "--local-dir", "raw", "--out", "out.jsonl"], tmp_path)
    assert result.exit_code == 1
    assert "raw/train.csv:" in result.output and "quot" in result.output
    assert "Traceback" not in result.output
    assert out.read_text() == "previous output\n"


def test_label_outside_range_names_the_row(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "train.csv").write_text(HEADER + ROW.format(n=1, label=0) + ROW.format(n=2, label=4))
    (raw / "validation.csv").write_text(HEADER + ROW.format(n=3, label=2))
    write_params(tmp_path / "params.yaml")
    result = invoke(["ingest", "--local-dir", "raw", "--out", "out.jsonl"], tmp_path)
    assert result.exit_code == 1
    assert "raw/train.csv:3: label '4' is outside 0-3 (id 'q2')" in result.output


def test_missing_column_is_named(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "train.csv").write_text("id,context,question,answer0,answer1,answer2,label\nq1,c,q,a,b,c,0\n")
    write_params(tmp_path / "params.yaml")
    result = invoke(["ingest", "--local-dir", "raw", "--out", "out.jsonl"], tmp_path)
    assert result.exit_code == 1
    assert "missing column(s) answer3" in result.output


def test_params_typo_is_an_error_with_a_suggestion(tmp_path):
    (tmp_path / "raw").mkdir()
    write_params(tmp_path / "params.yaml", "ingest: {sorce: local}\n")
    result = invoke(["ingest", "--local-dir", "raw", "--out", "out.jsonl"], tmp_path)
    assert result.exit_code == 1
    assert "ingest.sorce: unknown key (did you mean 'source'?)" in result.output


def test_corrupt_pdf_is_reported_while_good_ones_are_extracted(tmp_path):
    pdfs = tmp_path / "pdfs"
    text_pdf(pdfs / "bom.pdf", ["Art. 1º O estágio terá duração máxima de dois anos na mesma parte concedente."])
    corrupt_pdf(pdfs / "ruim.pdf")
    write_params(tmp_path / "params.yaml", "extract: {}\n")
    result = invoke(["extract", "--pdf-dir", "pdfs", "--out", "pages.jsonl", "--report", "report.json"], tmp_path)
    assert result.exit_code == 0, result.output
    assert "pdfs/ruim.pdf: corrupt" in result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["files_by_status"] == {"corrupt": 1, "ok": 1}


def test_only_corrupt_pdfs_fail_the_stage_clearly(tmp_path):
    corrupt_pdf(tmp_path / "pdfs" / "ruim.pdf")
    write_params(tmp_path / "params.yaml", "extract: {}\n")
    result = invoke(["extract", "--pdf-dir", "pdfs", "--out", "pages.jsonl", "--report", "report.json"], tmp_path)
    assert result.exit_code == 1
    assert "no text could be extracted" in result.output
    assert not (tmp_path / "pages.jsonl").exists()


def test_compare_lists_flipped_items_between_two_prediction_files(tmp_path):
    def rows(flags):
        return "".join(json.dumps({"id": f"q{i}", "model": "finetuned", "mode": "letter", "correct": ok,
                                   "prediction": "A" if ok else "B", "label": "A"}) + "\n"
                       for i, ok in enumerate(flags))

    (tmp_path / "a.jsonl").write_text(rows([True, False, True]))
    (tmp_path / "b.jsonl").write_text(rows([True, True, False]))
    result = invoke(["compare", "a.jsonl", "b.jsonl"], tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "2 of 3 shared items flipped (finetuned, letter): 1 fixed, 1 broken in b.jsonl"
    assert lines[1].split() == ["fixed", "q1", "label", "A", "a.jsonl:", "B", "b.jsonl:", "A"]
    assert lines[2].split()[:2] == ["broken", "q2"]


def test_compare_with_an_unknown_revision_is_a_clear_error(tmp_path):
    result = invoke(["compare", "no-such-rev", "neither"], tmp_path)
    assert result.exit_code == 1
    assert "could not read metrics/predictions.jsonl at 'no-such-rev'" in result.output
