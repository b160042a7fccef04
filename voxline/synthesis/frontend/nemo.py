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
    """NeMo's Normalizer on the grammars compiled in `folder` (compiled there first when it
    holds none: the prepare step); the server's process, a grammar child, or the compile."""
    from nemo_text_processing.text_normalization.normalize import Normalizer

    return Normalizer(input_case="cased", lang=language, cache_dir=folder)


def spoken_or_written(normalizer, text: str) -> tuple[str, str | None]:
    """`text` in spoken form, or as written with the reason when the grammar raised (some
    grammars raise on inputs they do not cover: the engine's own front end reads those)."""
    try:
        return normalizer.normalize(text, punct_post_process=True), None
    except Exception as exc:  # noqa: BLE001 - pynini's FstOpError and friends
        return text, f"{type(exc).__name__}: {exc}"
