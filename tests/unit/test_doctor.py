"""`gabarito doctor`'s checks driven to their outcomes by facts and environment mappings passed in (no
mocks, no machine probed). The checks run against this machine (GPU, bitsandbytes, tesseract, real
`dvc`) are in tests/integration/test_doctor_checks.py."""

from __future__ import annotations

import uuid
from pathlib import Path

from gabarito.tools import doctor
from gabarito.tools.doctor import FAIL, OK, WARN

# made at run time, so a hit in the output can only come from the check leaking it
SECRET = "sk-" + uuid.uuid4().hex
PASSWORD = "pw-" + uuid.uuid4().hex


def leaks(secret: str, text: str, window: int = 6) -> bool:
    """Whether any ``window``-character piece of ``secret`` shows up in ``text``."""
    return any(secret[i:i + window] in text for i in range(len(secret) - window + 1))


# --- GPU -----------------------------------------------------------------------------------------
H200 = {"name": "NVIDIA H200", "memory_gb": 150.0, "bf16": True}
T4 = {"name": "Tesla T4", "memory_gb": 15.8, "bf16": False}


def test_gpu_outcomes_from_facts():
    ok = doctor.check_gpu({"torch": "2.13.0", "cuda": "12.8", "devices": [H200]})
    assert ok["status"] == OK and "NVIDIA H200 (150.0 GB)" in ok["detail"] and "CUDA 12.8" in ok["detail"]
    assert "bf16 yes" in ok["detail"] and ok["hint"] is None
    # a small card without bf16: both problems named in one hint
    small = doctor.check_gpu({"torch": "2.13.0", "cuda": "12.8", "devices": [T4]})
    assert small["status"] == WARN and "bf16 no" in small["detail"]
    assert "24 GB" in small["hint"] and "bnb_4bit_compute_dtype: float16" in small["hint"]
    invisible = doctor.check_gpu({"torch": "2.13.0+cu128", "cuda": "12.8", "devices": []})
    assert invisible["status"] == WARN and "built for CUDA 12.8, but no GPU is visible" in invisible["detail"]


# --- API keys ------------------------------------------------------------------------------------
def test_keys_unset_warn():
    rows = [doctor.check_openai_key({}), doctor.check_hf_token({})]
    assert [r["status"] for r in rows] == [WARN, WARN]
    assert "OPENAI_API_KEY not set" in rows[0]["detail"] and "the active params call no API" in rows[0]["hint"]
    assert rows[1]["detail"] == "HF_TOKEN not set"
    # blank is not set
    assert doctor.check_openai_key({"OPENAI_API_KEY": "  "})["status"] == WARN


def test_a_missing_key_fails_when_the_active_params_call_the_api(repo_root):
    from gabarito.params import load_all

    offline = load_all(repo_root / "params.yaml")
    assert doctor.api_settings(offline) == []
    thesis_like = {**offline, "translate": offline["translate"].model_copy(update={"provider": "openai"})}
    needed = doctor.api_settings(thesis_like)
    assert needed == ["translate.provider=openai"]
    r = doctor.check_openai_key({}, needed)
    assert r["status"] == FAIL and "the active params call the API (translate.provider=openai)" in r["hint"]
    assert doctor.check_openai_key({"OPENAI_API_KEY": "x" * 20}, needed)["status"] == OK


def test_keys_set_are_never_shown():
    env = {"OPENAI_API_KEY": SECRET, "HF_TOKEN": "hf_" + PASSWORD,
           "OPENAI_BASE_URL": f"http://me:{PASSWORD}@localhost:11434/v1?api_key={SECRET}"}
    rows = [doctor.check_openai_key(env), doctor.check_hf_token(env)]
    assert [r["status"] for r in rows] == [OK, OK]
    assert rows[0]["detail"] == "OPENAI_API_KEY set; OPENAI_BASE_URL http://***@localhost:11434/v1?***"
    assert rows[1]["detail"] == "HF_TOKEN set"
    text = doctor.render(rows) + repr(rows)
    assert not leaks(SECRET, text) and not leaks(PASSWORD, text)


def test_plain_base_url_is_shown():
    r = doctor.check_openai_key({"OPENAI_BASE_URL": "http://localhost:11434/v1"})
    assert r["detail"].endswith("OPENAI_BASE_URL http://localhost:11434/v1")


# --- disk ----------------------------------------------------------------------------------------
def test_disk(tmp_path):
    # the hub cache may not exist yet: the filesystem that will hold it is measured
    target = tmp_path / "not" / "yet" / "hub"
    tiny = doctor.check_disk(target, 0)
    assert tiny["status"] == OK and "downloads nothing" in tiny["detail"] and str(target) in tiny["detail"]
    assert doctor.check_disk(tmp_path, 0.001)["status"] == OK
    huge = doctor.check_disk(target, 10**9)
    assert huge["status"] == FAIL and "needs ~1e+09 GB" in huge["detail"] and "HF_HOME" in huge["hint"]


# --- summary, table ----------------------------------------------------------------------------
def test_overall_and_render():
    rows = [doctor.row("gpu", WARN, "no CUDA GPU", "runs on CPU"),
            doctor.row("tesseract", FAIL, "not on PATH", "apt-get install tesseract-ocr"),
            doctor.row("disk", OK, "plenty", "never shown for ok rows")]
    assert doctor.overall(rows) == 1
    assert doctor.overall([r for r in rows if r["status"] != FAIL]) == 0
    assert doctor.overall([]) == 0
    lines = doctor.render(rows).splitlines()
    assert lines == [
        "! gpu        no CUDA GPU",
        "             hint: runs on CPU",
        "✗ tesseract  not on PATH",
        "             hint: apt-get install tesseract-ocr",
        "✓ disk       plenty",
        "3 checks: 1 ok, 1 warning(s), 1 failure(s)",
    ]


# --- the active params against this machine ------------------------------------------------------
def _train(path):
    from gabarito.params import load_all

    return load_all(Path(__file__).resolve().parents[2] / path)["train"]


NO_GPU = {"torch": "2.13.0+cpu", "cuda": None, "devices": []}


def test_a_gpu_profile_on_a_machine_without_cuda_fails_naming_each_setting():
    r = doctor.check_profile(_train("profiles/thesis.yaml"), "profiles/thesis.yaml", NO_GPU)
    assert r["status"] == FAIL
    assert r["detail"] == ("profiles/thesis.yaml needs a CUDA GPU (train.quantization.bnb_4bit_compute_dtype=bfloat16, "
                           "train.sft.bf16=true); this machine has none")
    assert "make profile PROFILE=offline" in r["hint"]
    assert doctor.overall([doctor.row("gpu", WARN, "no CUDA GPU"), r]) == 1


def test_the_offline_profile_passes_on_cpu_and_the_thesis_one_on_an_h200():
    ok = doctor.check_profile(_train("params.yaml"), "params.yaml", NO_GPU)
    assert ok["status"] == OK and ok["detail"] == "params.yaml runs here (CPU; no GPU setting)"
    h200 = doctor.check_profile(_train("profiles/thesis.yaml"), "thesis", {"torch": "2.13", "cuda": "12.8",
                                                                             "devices": [H200]})
    assert h200["status"] == OK and "1 GPU(s)" in h200["detail"]


def test_bf16_on_a_gpu_without_bf16_fails():
    r = doctor.check_profile(_train("profiles/thesis.yaml"), "thesis", {"torch": "2.13", "cuda": "12.8",
                                                                          "devices": [T4]})
    assert r["status"] == FAIL and "no native bf16" in r["detail"] and "fp16: true" in r["hint"]


def test_processes_per_gpu():
    from gabarito.params import TrainParams

    root = Path(__file__).resolve().parents[2]
    ddp = TrainParams(launch={"num_processes": 2, "config_file": str(root / "configs/accelerate/ddp.yaml")})
    r = doctor.check_profile(ddp, "p.yaml", NO_GPU)
    assert r["status"] == FAIL and "num_processes=2 with" in r["detail"] and "(MULTI_GPU)" in r["detail"]
    r = doctor.check_profile(ddp, "p.yaml", {"torch": "2.13", "cuda": "12.8", "devices": [H200]})
    assert r["status"] == FAIL and "starts 2 processes, one per GPU; this machine has 1 GPU(s)" in r["detail"]
    assert doctor.check_profile(ddp, "p.yaml", {"torch": "2.13", "cuda": "12.8",
                                                "devices": [H200, H200]})["status"] == OK
    # plain DDP (no config file) runs over gloo on CPU, as tests/integration/test_ddp.py does
    gloo = TrainParams(launch={"num_processes": 2})
    assert doctor.check_profile(gloo, "p.yaml", NO_GPU)["status"] == OK
