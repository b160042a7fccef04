"""NeMo's Normalizer, made and quieted the same way in the server and in grammar children."""

from __future__ import annotations

import logging

_NEMO_LOGGER = "NeMo-text-processing"


def quiet_nemo() -> None:
    """NeMo logs INFO lines per call (and resets its level in `normalize`), and warnings that
    quote the request text: keep errors only (failures are logged here, without the text)."""
    nemo = logging.getLogger(_NEMO_LOGGER)
    if not any(isinstance(f, _ErrorsOnly) for f in nemo.filters):
        nemo.addFilter(_ErrorsOnly())


class _ErrorsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


def new_normalizer(folder: str, language: str):
    """NeMo's Normalizer on compiled grammars (in this process: a child calls it too)."""
    from nemo_text_processing.text_normalization.normalize import Normalizer

    return Normalizer(input_case="cased", lang=language, cache_dir=folder)
