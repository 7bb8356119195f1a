"""gabarito: a DVC pipeline from raw exam-style material to a fine-tuned Portuguese QA model.

This package is the library the pipeline's stages (``stages/``, one module per dvc.yaml stage) and the
tools people run (``gabarito.tools``) share: params, atomic I/O, item records, the LLM engine and client,
PDF reading, model loading, chat formatting, scoring and statistics. ``gabarito.cli`` assembles the
``gabarito`` command. Every stage runs this file, so dvc.yaml lists it in every stage's deps.
"""

__version__ = "0.1.0"

import logging
import warnings


class _NoHubKernelNotice(logging.Filter):
    """bitsandbytes warns at import, on CPUs with AVX512-BF16, that it could not fetch a kernel from the Hugging
    Face hub (the optional ``kernels`` package): ``Failed to load CPU gemm_4bit_forward from kernels-community``.
    That is expected: gabarito downloads no code at run time, and the packed path it may choose
    (``evaluate.cpu_4bit_kernel``) falls back to bitsandbytes' own AVX512 kernel. peft imports bitsandbytes
    before any model loads, so the filter is set here, before any stage or tool imports either."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "kernels-community" not in record.getMessage()


def quiet_bitsandbytes() -> None:
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    if not any(isinstance(f, _NoHubKernelNotice) for f in logger.filters):
        logger.addFilter(_NoHubKernelNotice())


quiet_bitsandbytes()

# peft and trl still call transformers' old name for activation checkpointing; the notice is for their
# developers, and every train and evaluate printed it
warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*is deprecated", category=FutureWarning)
