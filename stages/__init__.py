"""gabarito: a DVC pipeline from raw exam-style material to a fine-tuned Portuguese QA model.

One module per pipeline stage, each ending with its own click command; ``stages.cli`` only assembles
them into the ``gabarito`` group. Every stage runs this file too, so dvc.yaml lists it in every
stage's deps.
"""

__version__ = "0.1.0"
