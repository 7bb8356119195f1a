"""notebooks/gabarito.ipynb read as data: committed clean, parameterized, and its secrets cell run with a fake
Colab and a fake Kaggle secret store. The notebook as a whole runs in tests/integration/test_pipeline.py."""

from __future__ import annotations

import os
import re
import sys
import types

import nbformat
import pytest

from tests.fake_secrets import FAKE_KEY

NOTEBOOK = "notebooks/gabarito.ipynb"


@pytest.fixture(scope="module")
def nb(repo_root):
    return nbformat.read(repo_root / NOTEBOOK, as_version=4)


def tagged(nb, tag: str) -> list:
    return [c for c in nb.cells if tag in c.metadata.get("tags", [])]


def test_committed_without_outputs_and_valid(nb):
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_parameters_cell_is_tagged_and_each_reads_its_environment_variable(nb):
    (cell,) = tagged(nb, "parameters")
    assert nb.cells.index(cell) == 1  # right after the title, before anything runs
    names = re.findall(r"^([A-Z_]+) = os\.environ\.get\(\"GABARITO_([A-Z_]+)\"", cell.source, re.M)
    assert {n for n, _ in names} == {"REPO_URL", "REV", "WORKDIR", "PROFILE", "REMOTE_URL", "RUN", "PUSH",
                                     "SECRETS", "VENV", "MAKE_ARGS"}
    assert all(name == env for name, env in names)
    # nothing secret-shaped as a default: names only
    assert not re.search("|".join(["sk" + "-", "hf" + "_", "AKIA"]), "".join(c.source for c in nb.cells))


def secrets_cell(nb) -> str:
    (cell,) = tagged(nb, "secrets")
    return cell.source


def fake_module(monkeypatch, name: str, **attrs) -> None:
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        mod = sys.modules.get(".".join(parts[:i])) or types.ModuleType(".".join(parts[:i]))
        monkeypatch.setitem(sys.modules, ".".join(parts[:i]), mod)
        if i > 1:
            setattr(sys.modules[".".join(parts[:i - 1])], parts[i - 1], mod)
    for key, value in attrs.items():
        setattr(sys.modules[name], key, value)


class SecretNotFound(Exception):
    pass


def run_cell(nb, names, capsys) -> tuple[dict, str]:
    scope = {"os": os, "SECRETS": names}
    exec(compile(secrets_cell(nb), NOTEBOOK, "exec"), scope)
    return scope, capsys.readouterr().out


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("OPENAI_API_KEY", "HF_TOKEN", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("google", "google.colab", "google.colab.userdata", "kaggle_secrets"):
        monkeypatch.delitem(sys.modules, name, raising=False)


def test_colab_secrets_are_exported_never_printed(nb, monkeypatch, capsys, clean_env):
    key = FAKE_KEY
    store = {"OPENAI_API_KEY": key}

    def get(name):
        if name not in store:
            raise SecretNotFound(name)  # Colab raises its own SecretNotFoundError
        return store[name]

    fake_module(monkeypatch, "google.colab.userdata", get=get)
    _, out = run_cell(nb, ["OPENAI_API_KEY", "HF_TOKEN"], capsys)
    assert os.environ["OPENAI_API_KEY"] == key and "HF_TOKEN" not in os.environ
    assert key not in out and "OPENAI_API_KEY (Colab secrets)" in out and "not set: HF_TOKEN" in out


def test_kaggle_secrets_are_exported_never_printed(nb, monkeypatch, capsys, clean_env):
    key = FAKE_KEY

    class UserSecretsClient:
        def get_secret(self, name):
            if name != "OPENAI_API_KEY":
                raise SecretNotFound(name)
            return key

    fake_module(monkeypatch, "kaggle_secrets", UserSecretsClient=UserSecretsClient)
    _, out = run_cell(nb, ["OPENAI_API_KEY", "HF_TOKEN"], capsys)
    assert os.environ["OPENAI_API_KEY"] == key and key not in out and "OPENAI_API_KEY (Kaggle secrets)" in out


def test_without_a_secret_store_the_environment_is_used(nb, monkeypatch, capsys, clean_env):
    key = FAKE_KEY
    monkeypatch.setenv("OPENAI_API_KEY", key)
    scope, out = run_cell(nb, ["OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY"], capsys)
    assert scope["secret_stores"]() == []
    assert key not in out and "OPENAI_API_KEY (environment)" in out and "not set: AWS_SECRET_ACCESS_KEY" in out
