"""A file under data/raw/ that is a link leading out of the project is refused by every stage that reads
data/raw/ (ingest's local splits, extract's PDFs; mcq and exams have their own tests): DVC does not track
what is outside the project, so a change there would rerun nothing."""

from __future__ import annotations

import pytest

from gabarito.io import InputError
from gabarito.params import ExtractParams
from stages.extract import extract_dir
from stages.ingest import load_local

HEADER = "id,context,question,answer0,answer1,answer2,answer3,label\n"


@pytest.fixture
def project(tmp_path, monkeypatch):
    root, outside = tmp_path / "repo", tmp_path / "elsewhere"
    (root / "data/raw").mkdir(parents=True)
    outside.mkdir()
    monkeypatch.chdir(root)  # stages run in the repository's root
    return root, outside


def test_an_ingest_split_linked_from_outside_is_refused_naming_the_way_in(project):
    root, outside = project
    (outside / "train.csv").write_text(HEADER + "a,ctx,q?,w,x,y,z,0\n", encoding="utf-8")
    folder = root / "data/raw/cosmosqa"
    folder.mkdir()
    (folder / "train.csv").symlink_to(outside / "train.csv")
    with pytest.raises(InputError) as err:
        load_local("data/raw/cosmosqa", ["train"])
    assert "outside the project" in str(err.value) and "dvc import-url" in str(err.value)
    assert str(outside / "train.csv") in str(err.value)
    (folder / "train.csv").unlink()
    (folder / "train.csv").write_text(HEADER + "a,ctx,q?,w,x,y,z,0\n", encoding="utf-8")  # a copy is fine
    assert [r["id"] for r in load_local("data/raw/cosmosqa", ["train"])] == ["a"]


def test_an_extract_pdf_linked_from_outside_is_refused_before_any_work(project):
    root, outside = project
    (outside / "regulamento.pdf").write_bytes(b"%PDF-1.4 not read")
    folder = root / "data/raw/pdfs"
    folder.mkdir()
    (folder / "regulamento.pdf").symlink_to(outside / "regulamento.pdf")
    with pytest.raises(InputError, match="outside the project"):
        extract_dir("data/raw/pdfs", ExtractParams())


def test_a_folder_outside_the_project_given_by_hand_is_read(project, tmp_path):
    _, outside = project
    (outside / "train.csv").write_text(HEADER + "a,ctx,q?,w,x,y,z,0\n", encoding="utf-8")
    assert len(load_local(outside, ["train"])) == 1
