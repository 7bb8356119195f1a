"""Run a `gabarito` command in-process from a given folder, as dvc runs it from the repository root."""

from __future__ import annotations

import os

from click.testing import CliRunner, Result


def invoke(args: list[str], cwd, input: str | None = None) -> Result:
    from gabarito.cli import main

    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, args, input=input)
    finally:
        os.chdir(old)
