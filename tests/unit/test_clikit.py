"""The stage's lifetime guard: armed under dvc only (the processes it watches: tests/integration/test_clikit.py)."""

from __future__ import annotations

import sys
import threading

import pytest

from gabarito import clikit

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and prctl are Linux's")


def test_a_stage_started_by_hand_is_not_tied_to_its_shell(monkeypatch):
    # `nohup gabarito train &` must outlive the terminal it was started from
    monkeypatch.delenv("DVC_STAGE", raising=False)
    before = {t.name for t in threading.enumerate()}
    clikit.die_with_parent()
    assert "die-with-dvc" not in {t.name for t in threading.enumerate()} - before
