"""The unit tier stays pure: a test here starts no process, opens no socket and builds no model.

A test that needs any of those belongs in tests/integration; these guards say so the moment one lands
here, rather than letting `pytest` (the unit tier, under a minute) creep into the integration tier.
"""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

MOVE = "move this test to tests/integration"

# fixtures of tests/conftest.py a unit test may not use, directly or through another fixture
IMPURE_FIXTURES = {
    "tiny_base": "builds the tiny torch model",
    "formatted": "builds the tiny torch model",
    "fake_openai": "starts a loopback HTTP server",
    "tiny_tmpfs": "mounts a filesystem with `mount`",
}
NO_PROCESS = "unit tests start no process: " + MOVE
NO_NETWORK = "unit tests open no connection and serve nothing: " + MOVE


def impure_fixtures(fixturenames) -> list[str]:
    """The fixtures among ``fixturenames`` that have no place in the unit tier."""
    return sorted(set(fixturenames) & set(IMPURE_FIXTURES))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # before any fixture is set up: tiny_base (session-scoped) would otherwise be built first, then refused
    bad = impure_fixtures(getattr(item, "fixturenames", ()))
    if bad:
        why = "; ".join(f"{name} {IMPURE_FIXTURES[name]}" for name in bad)
        pytest.fail(f"unit tests use no {', '.join(bad)} fixture ({why}): {MOVE}", pytrace=False)


def _refuse(message: str):
    def refuse(*args, **kwargs):
        raise RuntimeError(message)

    return refuse


@pytest.fixture(scope="package", autouse=True)
def _pure():
    """No process (subprocess, os.system, fork, spawn) and no socket connect or bind in tests/unit.

    Package-scoped, so the module- and function-scoped fixtures of unit tests are held to it too; undone
    when the run leaves tests/unit (`make test` runs the other tiers in the same process)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(subprocess.Popen, "__init__", _refuse(NO_PROCESS))
        for name in ("system", "fork", "forkpty", "posix_spawn", "posix_spawnp"):
            if hasattr(os, name):
                mp.setattr(os, name, _refuse(NO_PROCESS))
        for name in ("connect", "connect_ex", "bind"):
            mp.setattr(socket.socket, name, _refuse(NO_NETWORK))
        yield
