"""The unit tier's guard (tests/unit/conftest.py): a unit test that starts a process, opens a socket or
asks for a fixture that builds the tiny model is told to move to tests/integration."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.unit import conftest as guard

MOVE = "move this test to tests/integration"


def test_a_unit_test_starts_no_process():
    with pytest.raises(RuntimeError, match=f"unit tests start no process: {MOVE}"):
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    with pytest.raises(RuntimeError, match=MOVE):
        subprocess.Popen(["true"])
    with pytest.raises(RuntimeError, match=MOVE):
        os.system("true")


def test_a_unit_test_opens_no_connection_and_serves_nothing():
    with socket.socket() as s:
        with pytest.raises(RuntimeError, match=f"open no connection and serve nothing: {MOVE}"):
            s.bind(("127.0.0.1", 0))
        with pytest.raises(RuntimeError, match=MOVE):
            s.connect(("127.0.0.1", 9))


@pytest.mark.parametrize("names", [["tiny_base"], ["repo_root", "formatted", "tiny_base"], ["fake_openai"],
                                   ["tiny_tmpfs"]])
def test_a_unit_test_asking_for_the_tiny_model_or_a_server_fails_before_it_is_built(names):
    class Item:
        fixturenames = ["request", *names]

    with pytest.raises(pytest.fail.Exception, match=f"fixture .*: {MOVE}$"):
        guard.pytest_runtest_setup(Item())


def test_pure_fixtures_pass():
    class Item:
        fixturenames = ["request", "tmp_path", "monkeypatch", "repo_root", "sample_corpus"]

    assert guard.impure_fixtures(Item.fixturenames) == []
    guard.pytest_runtest_setup(Item())

