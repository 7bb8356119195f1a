"""The ``gabarito`` command line: it only assembles the group.

Each stage module ends with its own click command (as DVC's example-get-started keeps ``main()``
beside the functions it calls), so the code that shapes a stage's outputs lives in the files that
stage lists in dvc.yaml. This file maps subcommand names to those modules and imports one only when
it is run, so ``gabarito --help`` starts fast and a stage loads nothing but its own code.
"""

from __future__ import annotations

import importlib

import click

from gabarito.clikit import die_with_parent

# subcommand -> "module:object". dvc.yaml's stages call the first ten; the rest are for people.
COMMANDS = {
    "ingest": "stages.ingest:command",
    "mcq": "stages.mcq:command",
    "extract": "stages.extract:command",
    "exams": "stages.exams:command",
    "translate": "stages.translate:command",
    "synthesize": "stages.synthesize:command",
    "clean": "stages.clean:command",
    "base-model": "stages.base_model:command",
    "format": "stages.format:command",
    "train": "stages.train:command",
    "evaluate": "stages.evaluate:command",
    "merge": "gabarito.tools.merge:command",
    "openai-finetune": "gabarito.tools.openai_ft:group",
    "compare": "gabarito.tools.report:compare_command",
    "report": "gabarito.tools.report:command",
    "doctor": "gabarito.tools.doctor:command",
    "ask": "gabarito.tools.ask:command",
    "profile": "gabarito.tools.profile:command",
    "checkpoints": "gabarito.tools.checkpoints:group",
}


def load_command(name: str) -> click.Command:
    module, attr = COMMANDS[name].split(":")
    return getattr(importlib.import_module(module), attr)


class LazyGroup(click.Group):
    """click's documented pattern for subcommands imported on first use."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        return load_command(name) if name in COMMANDS else None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gabarito")
def main():
    """gabarito: raw exam material in, a fine-tuned Portuguese QA model and its scores out.

    Every stage of dvc.yaml is one subcommand here; `dvc repro` runs them in order.

    \b
    Examples:
      dvc repro                  # run what changed
      gabarito doctor            # is this machine ready (GPU, bitsandbytes, tesseract, keys)?
      gabarito ask --help        # ask the fine-tuned model a question
      gabarito report main       # this experiment against main: deltas with intervals
      gabarito ingest --help     # one stage's options
    """
    die_with_parent()  # a SIGTERM that reaches only dvc must not leave this stage running


if __name__ == "__main__":  # python -m gabarito.cli, as the tests start it in a process of its own
    main()
