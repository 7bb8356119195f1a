"""What every stage command shares: the ``--params`` option, the log line, user errors as messages,
and a stage process that dies with the ``dvc`` (or shell) that started it.

Kept small and free of stage logic: it shapes no output, but every stage runs it, so dvc.yaml lists
it in every stage's deps like io.py and params.py.
"""

from __future__ import annotations

import errno
import functools
import os
import signal
import sys

import click

from stages.io import InputError

PARAMS = "params.yaml"

# errors that mean "the disk (or the user's quota) is full": a message, not a traceback
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def user_errors(fn):
    """Turn bad input a person can fix (InputError) and a full disk into a clean message.

    Outputs are written through ``io.atomic_path``, so when a write fails the previous output is
    still in place; the message says so. (The LLM ledgers are appended to instead: every complete
    line stays, and a line torn by the full disk is cut off when the ledger is next opened.)
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            if exc.errno not in _DISK_FULL:
                raise
            where = exc.filename or "an output file"
            raise click.ClickException(
                f"{where}: no space left on the device ({exc.strerror}). Free some space (or point "
                "the output elsewhere) and rerun; outputs already in place were kept.") from None

    return wrapper


def log(msg: str) -> None:
    click.echo(f"[gabarito] {msg}", err=True)


def params_option(fn):
    return click.option("--params", "params_path", default=PARAMS, show_default=True,
                        type=click.Path(dir_okay=False), help="params file to read")(fn)


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies.

    `dvc repro` runs each stage as a child. A SIGTERM or SIGKILL that reaches only dvc (a closed SSH
    session, `kill PID`, a job scheduler) would otherwise leave the stage running; the rerun then
    starts beside it and pays the same API calls twice. PR_SET_PDEATHSIG is Linux-only; elsewhere
    this does nothing and the ledger's lock still refuses a second writer.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        parent = os.getppid()
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            return
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)
    except (OSError, AttributeError):
        return


def require_output(stage: str, n_in: int, n_out: int, *, what_in: str, what_out: str, hint: str) -> None:
    """Fail loudly when a stage got input but produced nothing: exit 0 with an empty output would
    be cached by DVC as a success and never rerun."""
    if n_in and not n_out:
        raise InputError(f"{stage}: {n_in} {what_in} in, 0 {what_out} out. {hint}")
