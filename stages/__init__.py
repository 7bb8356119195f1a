"""The pipeline's stages: one module per dvc.yaml stage, named after it, each ending with its click command.

No stage imports another; what they share is the ``gabarito`` library beside this package.
"""
