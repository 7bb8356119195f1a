"""`gabarito doctor`'s checks against this machine, for real: the GPU and bitsandbytes as installed here,
the tesseract binary, real `dvc` in temporary repositories, and all checks together. The checks driven
by facts passed in (no machine probed) are in tests/unit/test_doctor.py."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from gabarito.tools import doctor
from gabarito.tools.doctor import FAIL, OK, WARN

# made at run time, so a hit in the output can only come from the check leaking it
SECRET = "sk-" + uuid.uuid4().hex
PASSWORD = "pw-" + uuid.uuid4().hex


def leaks(secret: str, text: str, window: int = 6) -> bool:
    """Whether any ``window``-character piece of ``secret`` shows up in ``text``."""
    return any(secret[i:i + window] in text for i in range(len(secret) - window + 1))


# --- GPU ---------------------------------------------------------------------------------------
def test_gpu_on_this_machine():
    import torch

    r = doctor.check_gpu()
    if torch.cuda.is_available():
        assert r["status"] in (OK, WARN) and "GPU(s)" in r["detail"]
    else:
        assert r["status"] == WARN
        assert "no CUDA GPU" in r["detail"] and torch.__version__ in r["detail"]
        assert "CPU" in r["hint"] and "thesis profile" in r["hint"]


# --- bitsandbytes --------------------------------------------------------------------------------
def test_bitsandbytes_runs_a_real_nf4_layer():
    import bitsandbytes as bnb

    r = doctor.check_bitsandbytes()
    assert r["status"] == OK, r
    assert bnb.__version__ in r["detail"] and "64x64 NF4" in r["detail"]


def test_bitsandbytes_on_a_device_that_is_not_there():
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    r = doctor.check_bitsandbytes("cuda")
    assert r["status"] == FAIL and "fails on cuda" in r["detail"] and "make setup" in r["hint"]


# --- tesseract -----------------------------------------------------------------------------------
def test_tesseract_installed_with_portuguese():
    r = doctor.check_tesseract("tesseract", "por")
    assert r["status"] == OK and r["detail"].startswith("tesseract ") and "'por'" in r["detail"]


def test_tesseract_missing_binary_or_language():
    missing = doctor.check_tesseract("tesseract-" + uuid.uuid4().hex, "por")
    assert missing["status"] == FAIL and "not on PATH" in missing["detail"]
    assert "apt-get install tesseract-ocr tesseract-ocr-por" in missing["hint"]
    assert "make system-deps" in missing["hint"]
    # the `which` a caller passes decides what is on PATH
    assert doctor.check_tesseract(which=lambda cmd: None)["status"] == FAIL
    no_lang = doctor.check_tesseract("tesseract", "xyz")
    assert no_lang["status"] == FAIL and "no 'xyz' language data" in no_lang["detail"] and "por" in no_lang["detail"]
    assert "tesseract-ocr-xyz" in no_lang["hint"]


# --- DVC remote ----------------------------------------------------------------------------------
@pytest.fixture
def dvc_env(tmp_path, monkeypatch):
    """No user or system DVC config: the checks (in process) and `dvc` (subprocess) see temp dirs."""
    for var, sub in (("DVC_GLOBAL_CONFIG_DIR", "global"), ("DVC_SYSTEM_CONFIG_DIR", "system"),
                     ("DVC_SITE_CACHE_DIR", "site-cache")):
        monkeypatch.setenv(var, str(tmp_path / "dvc-home" / sub))
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")


def dvc(cwd: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"dvc {' '.join(args)}: {proc.stdout}{proc.stderr}"


@pytest.fixture
def repo(tmp_path, dvc_env) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    dvc(root, "init", "--no-scm")
    return root


def test_dvc_default_remote_by_name_and_url(repo):
    store = repo.parent / "store"
    dvc(repo, "remote", "add", "-d", "backup", str(store))
    r = doctor.check_dvc_remote(repo)
    assert r == {"check": "dvc remote", "status": OK, "detail": f"default 'backup': {store}", "hint": None}


def test_dvc_remote_credentials_never_shown(repo):
    dvc(repo, "remote", "add", "-d", "web", f"https://me:{PASSWORD}@example.com/store?token={SECRET}")
    # credentials kept where the README says: the git-ignored config.local
    dvc(repo, "remote", "modify", "--local", "web", "password", PASSWORD)
    r = doctor.check_dvc_remote(repo)
    assert r["status"] == OK and r["detail"] == "default 'web': https://***@example.com/store?<hidden>"
    text = doctor.render([r]) + repr(r)
    assert not leaks(SECRET, text) and not leaks(PASSWORD, text)


def test_dvc_no_default_remote(repo):
    r = doctor.check_dvc_remote(repo)
    assert r["status"] == WARN and r["detail"].startswith("no default remote") and "dvc remote add -d" in r["hint"]
    dvc(repo, "remote", "add", "spare", str(repo.parent / "spare"))
    r = doctor.check_dvc_remote(repo)
    assert r["status"] == WARN and "(remotes: spare)" in r["detail"]


def test_dvc_default_remote_that_is_not_defined(repo):
    # `dvc remote default` checks the name, a hand-edited config does not
    config = repo / ".dvc" / "config"
    config.write_text("[core]\n    no_scm = True\n    remote = ghost\n")
    r = doctor.check_dvc_remote(repo)
    assert r["status"] == FAIL and "'ghost' is not defined" in r["detail"] and "dvc remote default" in r["hint"]


def test_dvc_not_a_repository(tmp_path, dvc_env):
    r = doctor.check_dvc_remote(tmp_path)
    assert r["status"] == FAIL and "not in a DVC repository" in r["detail"] and "dvc init" in r["hint"]


# --- all checks --------------------------------------------------------------------------------
def test_run_all_with_a_key_set_never_shows_it(repo, tmp_path):
    rows = doctor.run_all(root=repo, download_gb=0, model_dir=tmp_path, env={"OPENAI_API_KEY": SECRET})
    assert [r["check"] for r in rows] == ["gpu", "gpu profile", "bitsandbytes", "tesseract", "openai api key", "hf token",
                                          "disk", "dvc remote"]
    by = {r["check"]: r for r in rows}
    assert by["openai api key"]["status"] == OK and by["hf token"]["status"] == WARN
    assert by["dvc remote"]["status"] == WARN
    assert all(set(r) == {"check", "status", "detail", "hint"} for r in rows)
    assert doctor.overall(rows) == 0  # tesseract, bitsandbytes and disk pass here; the rest only warn
    assert not leaks(SECRET, doctor.render(rows) + repr(rows))


def _train(path):
    from gabarito.params import load_all

    return load_all(Path(__file__).resolve().parents[2] / path)["train"]


def test_run_all_checks_the_active_params(repo, tmp_path):
    rows = doctor.run_all(root=repo, download_gb=0, model_dir=tmp_path, env={},
                          train=_train("params.yaml"), params_name="params.yaml")
    assert [r["check"] for r in rows][:3] == ["gpu", "gpu profile", "profile"]
