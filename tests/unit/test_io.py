"""Atomic outputs: a failed write leaves the previous output as it was."""

from __future__ import annotations

import os

import pytest

from gabarito import io
from tests.fake_secrets import FAKE_KEY


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


# --- quoting input in messages (issue 23, section 1) ----------------------------------------------------
# what /proc/self/environ holds: NAME=value pairs, each ended by a NUL
ENV_DUMP = (f"IS_SANDBOX=yes\x00PATH=/usr/bin\x00OPENAI_API_KEY={FAKE_KEY}\x00HF_TOKEN=hf_TESTsecretsecret\x00"
            "HOME=/root\x00")


@pytest.mark.parametrize("text", [ENV_DUMP, ENV_DUMP[15:], ENV_DUMP[30:], ENV_DUMP * 1000])
def test_an_excerpt_of_an_environment_dump_shows_no_key_no_nul_and_little(monkeypatch, text):
    from gabarito.io import EXCERPT_CHARS, excerpt

    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    shown = excerpt(text)
    assert "TEST" not in shown and "\x00" not in shown and shown.isprintable(), shown
    assert len(shown) <= EXCERPT_CHARS + 3  # the quotes and the ellipsis
    assert shown.startswith(("'IS_SANDBOX=yes\\x00", "'PATH=", "'PENAI_API_KEY=***", "'I")), shown


def test_an_excerpt_scrubs_credentials_by_name_whatever_the_environment(monkeypatch):
    from gabarito.io import excerpt

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("GABARITO_TEST_TOKEN", "hf_TESTsecretsecret123")  # a secret-named variable: its value goes
    for text in ("Authorization: Bearer abc", "x-api-key=zzz", "DB_PASSWORD=hunter2", "token sk-abcdefgh",
                 "a bare hf_TESTsecretsecret123 here"):
        shown = excerpt(text)
        assert not any(s in shown for s in ("abc", "zzz", "hunter2", "abcdefgh", "TEST")), shown


def test_an_excerpt_of_plain_text_is_its_repr():
    from gabarito.io import excerpt

    for text in ("optoin_a", "Questão", "it's", "a\tb\nc", "\u202eevil"):
        assert excerpt(text) == repr(text), text
    assert excerpt("x" * 100).endswith("x…'") and excerpt("numero,letra", quoted=False) == "numero,letra"


# --- inputs inside the project (issue 23, section 2) ---------------------------------------------------
def test_a_path_that_leads_out_of_the_project_is_named_by_its_target(tmp_path):
    from gabarito.io import outside_project

    root, elsewhere = tmp_path / "repo", tmp_path / "elsewhere.csv"
    (root / "data/raw").mkdir(parents=True)
    elsewhere.write_text("x")
    (root / "data/raw/inside.csv").write_text("x")
    (root / "data/raw/out.csv").symlink_to(elsewhere)
    (root / "data/raw/in.csv").symlink_to(root / "data/raw/inside.csv")
    assert outside_project(root / "data/raw/out.csv", root) == elsewhere.resolve()
    assert outside_project(elsewhere, root) == elsewhere.resolve()
    assert outside_project(root / "data/raw/../../../elsewhere.csv", root) == elsewhere.resolve()
    assert outside_project(root / "data/raw/in.csv", root) is None
    assert outside_project(root / "data/raw/inside.csv", root) is None


def test_a_link_into_a_dvc_cache_set_outside_the_project_is_inside(tmp_path):
    """cache.type symlink with a cache shared between clones: every tracked file is a link out of the repo."""
    from gabarito.io import outside_project

    root, cache = tmp_path / "repo", tmp_path / "shared-cache"
    (cache / "files/md5/ab").mkdir(parents=True)
    (cache / "files/md5/ab/cdef").write_text("x")
    (root / ".dvc").mkdir(parents=True)
    (root / "prova.csv").symlink_to(cache / "files/md5/ab/cdef")
    assert outside_project(root / "prova.csv", root) is not None
    (root / ".dvc/config").write_text("[core]\n    remote = local\n[cache]\n    dir = ../../shared-cache\n"
                                      "    type = symlink\n")
    assert outside_project(root / "prova.csv", root) is None


# --- streaming reads (issue 23, section 6) ----------------------------------------------------------------
def test_read_lines_gives_read_texts_lines_one_at_a_time(tmp_path):
    from gabarito.io import InputError, read_lines, read_text, split_lines

    path = tmp_path / "a.csv"
    for data in (b"\xef\xbb\xbfa,b\r\nc\rd\n\ne", b"", b"one\n", "ação\u2028x\n".encode()):
        path.write_bytes(data)
        lines = list(read_lines(path))
        assert "".join(lines) == read_text(path) and lines == list(split_lines(read_text(path)))
        assert all(line.count("\n") <= 1 for line in lines)
    path.write_bytes(b"ok\nfine\n" + "ação\n".encode("cp1252"))
    with pytest.raises(InputError) as err:
        read_text(path)
    with pytest.raises(InputError) as lazily:
        list(read_lines(path))
    assert str(lazily.value) == str(err.value) and ":3: not UTF-8 text (byte 0xe7" in str(err.value)


def test_a_failing_block_leaves_no_folder_made_for_it(tmp_path):
    with pytest.raises(RuntimeError):
        with io.atomic_path(tmp_path / "new/deeper/out.jsonl") as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []
