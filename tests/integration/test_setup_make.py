"""`make setup` on a machine without tesseract: it installs the system packages where it can (root and apt),
and otherwise stops before building anything, naming the one command to run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "MAKEFLAGS": ""})


def test_without_tesseract_or_apt_setup_stops_first_and_names_the_command(tmp_path):
    venv = tmp_path / "venv"
    proc = make("setup", "TESSERACT=no-such-tesseract", "APT_GET=no-such-apt-get", f"VENV={venv}")
    assert proc.returncode != 0
    assert "sudo make system-deps" in proc.stderr and "tesseract-ocr-por" in proc.stderr
    assert not venv.exists()  # stopped before the virtual environment


def test_as_root_with_apt_setup_installs_the_packages_itself(tmp_path):
    if os.geteuid() != 0:
        import pytest

        pytest.skip("the install branch runs only as root")
    log = tmp_path / "apt.log"
    fake_apt = tmp_path / "apt-get"
    fake_apt.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n")
    fake_apt.chmod(0o755)
    proc = make("system-check", "TESSERACT=no-such-tesseract", f"APT_GET={fake_apt}")
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    assert calls[0].startswith("update")
    assert "install" in calls[1] and {"tesseract-ocr", "tesseract-ocr-por", "fonts-dejavu-core"} <= set(calls[1].split())


def test_with_the_packages_present_setup_installs_nothing(tmp_path):
    if subprocess.run(["sh", "-c", "tesseract --list-langs 2>/dev/null | grep -qx por"]).returncode != 0:
        import pytest

        pytest.skip("tesseract with Portuguese is not installed here")
    fake_apt = tmp_path / "apt-get"
    fake_apt.write_text("#!/bin/sh\nexit 9\n")  # would fail setup if called
    fake_apt.chmod(0o755)
    assert make("system-check", f"APT_GET={fake_apt}").returncode == 0
