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

from gabarito.io import InputError

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


# shells that may stand between dvc and the stage: dvc runs `$SHELL -c "<cmd>"`, or `/bin/sh -c` when
# SHELL is unset; bash execs a lone command, but dash (Debian's /bin/sh) stays as the stage's parent
_SHELLS = frozenset({"sh", "dash", "bash", "zsh", "ksh", "mksh", "ash", "busybox", "fish"})
_WATCH_EVERY_S = 0.2  # how often the watchdog looks at the process that started the shell


def _proc_stat(pid: int) -> tuple[str, str, int, str] | None:
    """(name, state, parent pid, start time) of a live process from /proc, or None once it is gone."""
    try:
        data = open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace").read()
    except OSError:
        return None
    name, rest = data[data.index("(") + 1:data.rindex(")")], data[data.rindex(")") + 2:].split()
    return name, rest[0], int(rest[1]), rest[19]  # fields 3 (state), 4 (ppid), 22 (starttime)


def _first_non_shell_ancestor() -> tuple[int, str] | None:
    """The (pid, start time) of the process above the shell(s) this one was started by, or None when
    the parent is not a shell (PR_SET_PDEATHSIG already covers the parent itself)."""
    pid, hops = os.getppid(), 0
    while hops < 8:
        stat = _proc_stat(pid)
        if stat is None or pid <= 1:
            return None
        name, _, ppid, start = stat
        if name not in _SHELLS:
            return (pid, start) if hops else None
        pid, hops = ppid, hops + 1
    return None


def _watch(pid: int, start: str) -> None:
    import time

    while True:
        stat = _proc_stat(pid)
        if stat is None or stat[3] != start or stat[1] in ("Z", "X"):  # gone, reused, or a zombie
            os.kill(os.getpid(), signal.SIGTERM)
            return
        time.sleep(_WATCH_EVERY_S)


def die_with_parent() -> None:
    """End this process (SIGTERM) when the ``dvc`` that started it dies.

    `dvc repro` runs each stage as a child, through a shell. A SIGTERM or SIGKILL that reaches only
    dvc (a closed SSH session, `kill PID`, a job scheduler) would otherwise leave the stage running;
    the rerun then starts beside it and pays the same API calls twice. PR_SET_PDEATHSIG covers the
    direct parent. When that parent is a shell that did not exec the command (dash, Debian's
    /bin/sh, which dvc uses when SHELL is unset), the shell outlives dvc too, so a daemon thread
    also watches the first ancestor that is not a shell. Linux-only; elsewhere this does nothing and
    the ledger's lock still refuses a second writer.

    Armed only under dvc (which sets DVC_STAGE for every command it runs): a stage a person starts
    by hand, say under `nohup`, keeps the lifetime they gave it.
    """
    if not sys.platform.startswith("linux") or not os.environ.get("DVC_STAGE"):
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
            return
        above = _first_non_shell_ancestor()
        if above is not None:
            import threading

            threading.Thread(target=_watch, args=above, name="die-with-dvc", daemon=True).start()
    except (OSError, AttributeError, ValueError, IndexError):
        return


def require_output(stage: str, n_in: int, n_out: int, *, what_in: str, what_out: str, hint: str) -> None:
    """Fail loudly when a stage got input but produced nothing: exit 0 with an empty output would
    be cached by DVC as a success and never rerun."""
    if n_in and not n_out:
        raise InputError(f"{stage}: {n_in} {what_in} in, 0 {what_out} out. {hint}")
