"""The front door: every command's help shows examples, and `gabarito doctor` runs for real here."""

from __future__ import annotations

import uuid

import click
from click.testing import CliRunner

from gabarito.cli import main


def _commands(group: click.Group, prefix=()):
    for name, cmd in group.commands.items():
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))


def test_every_command_help_has_examples():
    missing = []
    for path, cmd in _commands(main):
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0, result.output
        if "Example" not in result.output:
            missing.append(" ".join(path))
    assert not missing, f"--help without examples: {missing}"


def test_doctor_reports_this_machine_and_never_a_key(repo_root, monkeypatch):
    secret = "sk-" + uuid.uuid4().hex  # made at run time: no file holds it
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.chdir(repo_root)
    result = CliRunner().invoke(main, ["doctor"])
    # tesseract with `por` and bitsandbytes are installed by `make system-deps` / `make setup`
    assert result.exit_code == 0, result.output
    for check in ("gpu", "bitsandbytes", "tesseract", "openai api key", "disk", "dvc remote"):
        assert check in result.output
    assert "OPENAI_API_KEY set" in result.output
    assert secret not in result.output and secret[:12] not in result.output and secret[-6:] not in result.output
