"""gabarito: a DVC pipeline from raw exam-style material to a fine-tuned Portuguese QA model.

Each pipeline stage is a module here with plain functions (records in, records out) and a thin
click command in :mod:`stages.cli` that dvc.yaml calls.
"""

__version__ = "0.1.0"
