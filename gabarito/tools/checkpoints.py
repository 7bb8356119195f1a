"""Fetch the last checkpoint a run pushed to the DVC remote, so that ``dvc repro`` resumes it here.

    gabarito checkpoints pull --train data/processed/train.jsonl --validation data/processed/validation.jsonl \\
        --base models/base --checkpoints models/checkpoints

For a fresh runtime (a new Colab or Kaggle session, another machine) that has the repository and the
remote but not the disk the run was on: ``make resume`` runs this between getting train's inputs
(``dvc repro --pull format``) and ``dvc repro``. The run is found by its fingerprint (the train params,
the training and validation records and the base model's config, as ``gabarito train`` computes it), so
the inputs must be the ones the run trained on; the checkpoints of other runs are named, not used.
"""

from __future__ import annotations

from pathlib import Path

import click

from gabarito import io
from gabarito.checkpoints import PREFIX, last_complete_checkpoint, open_remote, run_fingerprint, step_of
from gabarito.clikit import log, params_option, user_errors
from gabarito.io import InputError
from gabarito.params import load_section


def other_runs(remote) -> list[str]:
    """The fingerprints of the other runs with checkpoints on the remote, for the message."""
    root = remote.fs.parent(remote.folder)
    if not remote.fs.exists(root):
        return []
    return sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in remote.fs.ls(root, detail=False)
                  if e.rstrip("/") != remote.folder.rstrip("/"))


@click.group("checkpoints")
def group():
    """Training checkpoints on the DVC remote (train.push_checkpoints; docs/remotes.md)."""


@group.command("pull")
@click.option("--train", "train_path", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--validation", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--base", type=click.Path(file_okay=False, exists=True), required=True)
@click.option("--checkpoints", type=click.Path(file_okay=False), required=True,
              help="train's checkpoint folder (models/checkpoints)")
@click.option("--remote", default=None, help="a DVC remote's name (default: train.push_checkpoints.remote, "
                                             "else the default remote)")
@params_option
@user_errors
def pull(train_path, validation, base, checkpoints, remote, params_path):
    """Put the run's last whole checkpoint on the remote into --checkpoints; `dvc repro` then resumes it.

    Nothing is fetched when a checkpoint here is as new (a session that did not end); exits 0 with a
    note when the remote has none for this run (training starts from step 0).

    \b
    Examples:
      make resume                                  # train's inputs, this, then dvc repro
      gabarito checkpoints pull --train data/processed/train.jsonl \\
        --validation data/processed/validation.jsonl --base models/base --checkpoints models/checkpoints
    """
    p = load_section("train", params_path)
    fingerprint = run_fingerprint(p, io.read_jsonl(train_path), io.read_jsonl(validation), base)
    name = remote or p.push_checkpoints.remote or "default"
    try:
        where = open_remote(name, fingerprint)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    found = where.checkpoints()
    folder = Path(checkpoints)
    local = last_complete_checkpoint(folder)
    newest = max((s for s, ok in found if ok), default=None)
    if newest is None:
        others = other_runs(where)
        note = (f"; {PREFIX}/ there holds other runs ({', '.join(others)}): other params, data or base model"
                if others else "")
        log(f"checkpoints: no checkpoint of this run ({fingerprint}) on {where.name}{note}; training starts "
            "from step 0")
        return
    if local is not None and step_of(local.name) >= newest:
        log(f"checkpoints: {local} is as new as the remote's checkpoint-{newest}; nothing to fetch")
        return
    got = where.pull_last(folder)
    if got is None:
        raise InputError(f"no whole checkpoint of this run on {where.name} (each one pushed was cut short); "
                         "`dvc repro` starts training from step 0.")
    log(f"checkpoints: {got} fetched from {where.name}; `dvc repro` resumes from step {step_of(got.name)}")
