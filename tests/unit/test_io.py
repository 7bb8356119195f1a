"""Atomic outputs: a failed write leaves the previous output as it was."""

from __future__ import annotations

import os

import pytest

from gabarito import io


def _folder(path, text):
    path.mkdir(parents=True, exist_ok=True)
    (path / "f.txt").write_text(text)


def test_a_folder_is_replaced_whole_and_nothing_is_left_beside_it(tmp_path):
    out = tmp_path / "adapter"
    _folder(out, "old")
    with io.atomic_path(out, directory=True) as tmp:
        (tmp / "f.txt").write_text("new")
    assert (out / "f.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]  # no temp or old folder left


def test_a_failing_block_leaves_the_old_folder(tmp_path):
    out = tmp_path / "adapter"
    _folder(out, "old")
    with pytest.raises(RuntimeError):
        with io.atomic_path(out, directory=True) as tmp:
            (tmp / "f.txt").write_text("half")
            raise RuntimeError("training died")
    assert (out / "f.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]


def test_the_old_folder_comes_back_when_the_new_one_cannot_take_its_place(tmp_path, monkeypatch):
    out = tmp_path / "adapter"
    _folder(out, "old")
    real = os.replace
    calls = []

    def replace(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the old folder went aside; now the new one fails to move in
            raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(io.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        with io.atomic_path(out, directory=True) as tmp:
            (tmp / "f.txt").write_text("new")
    assert (out / "f.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]


def test_a_file_is_replaced_atomically(tmp_path):
    out = tmp_path / "m.json"
    io.write_json(out, {"a": 1})
    with pytest.raises(ValueError):
        with io.atomic_path(out) as tmp:
            tmp.write_text("{half")
            raise ValueError
    assert io.read_json(out) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


def test_urls_lose_their_credentials_and_query_but_keep_where_they_point():
    assert io.redact_url("https://user:pw@minio.example:9000/bucket?X-Amz-Signature=abc") == \
        "https://***@minio.example:9000/bucket?<hidden>"
    assert io.redact_url("s3://bucket/gabarito") == "s3://bucket/gabarito"
    assert io.redact_url("//user:pw@host/p") == "//***@host/p"
    assert io.redact_url("user:secret@host.example:8000/v1") == "***@host.example:8000/v1"
    assert io.redact_url("../gabarito-dvc-remote") == "../gabarito-dvc-remote"
    assert io.redact_url("/mnt/disk/remote") == "/mnt/disk/remote"
