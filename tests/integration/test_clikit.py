"""The stage's lifetime guard: watching dvc itself through a shell that stays (real child processes)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gabarito import clikit

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and prctl are Linux's")


def test_proc_stat_reads_names_with_spaces_and_parentheses():
    # the process name sits between the first "(" and the last ")", and may hold both
    script = ("import ctypes, os; from gabarito.clikit import _proc_stat; "
              "ctypes.CDLL(None).prctl(15, b'we(ird) na)me', 0, 0, 0); print(_proc_stat(os.getpid()))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()}).stdout
    name, state, ppid, start = eval(out)  # noqa: S307 - our own repr of a tuple of str/int
    assert name == "we(ird) na)me" and state in "RS" and ppid == os.getpid() and start.isdigit()


def test_the_first_non_shell_ancestor_is_found_through_dash():
    # sh -c 'python -c ...': dash stays as the parent, so the process to watch is this test's
    script = "from gabarito.clikit import _first_non_shell_ancestor as f; print(f())"
    out = subprocess.run(["/bin/sh", "-c", f'{sys.executable} -c "{script}"; true'], capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": os.getcwd()}).stdout
    pid, start = eval(out)  # noqa: S307
    assert pid == os.getpid()
    assert start == clikit._proc_stat(os.getpid())[3]
