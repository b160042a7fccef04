"""Where XTTS v2 weights come from: a local folder, coqui-tts's cache, or its download."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from voxline.engines.base import EngineError

logger = logging.getLogger(__name__)

XTTS_MODEL_NAME = "tts_models/multilingual/multi-dataset/xtts_v2"
# coqui-tts downloads xtts_v2 from this Hugging Face repository (see TTS/.models.json).
XTTS_REPO_ID = "tts-hub/XTTS-v2"
REQUIRED_FILES = ("config.json", "model.pth", "vocab.json")


@dataclass(frozen=True)
class WeightsSource:
    """What the engine selector knows about XTTS weights without loading anything."""

    folder: Path | None
    cached: Path | None
    tos_agreed: bool

    @property
    def available(self) -> bool:
        return self.folder is not None or self.cached is not None or self.tos_agreed


def tos_agreed(env: dict[str, str] | None = None) -> bool:
    """coqui-tts downloads XTTS only after its licence is agreed to with COQUI_TOS_AGREED=1."""
    env = os.environ if env is None else env
    return env.get("COQUI_TOS_AGREED") == "1"


def check_folder(folder: Path) -> Path:
    """Return `folder` if it holds a loadable checkpoint, else raise with what is missing."""
    if not folder.is_dir():
        raise EngineError(f"VOXLINE_XTTS_DIR={folder} is not a folder")
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise EngineError(f"VOXLINE_XTTS_DIR={folder} lacks {', '.join(missing)}")
    return folder


def cached_snapshot() -> Path | None:
    """The folder of an XTTS v2 snapshot already in the Hugging Face cache, if complete."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(XTTS_REPO_ID, "model.pth")
    if not isinstance(found, str):
        return None
    folder = Path(found).parent
    return folder if all((folder / n).is_file() for n in REQUIRED_FILES) else None


def describe_weights(folder: Path | None) -> WeightsSource:
    """Gather the facts the engine choice depends on."""
    return WeightsSource(folder=folder, cached=cached_snapshot(), tos_agreed=tos_agreed())


LICENCE_MESSAGE = (
    "XTTS v2 weights are under the Coqui Public Model License; set COQUI_TOS_AGREED=1 to agree "
    "and download them, or set VOXLINE_XTTS_DIR to a local checkpoint folder"
)


def preflight(weights: WeightsSource) -> None:
    """Fail fast, before any slow loading, when XTTS cannot possibly load."""
    if weights.folder is not None:
        check_folder(weights.folder)
    elif weights.cached is None and not weights.tos_agreed:
        raise EngineError(LICENCE_MESSAGE)


def resolve_checkpoint(folder: Path | None) -> Path:
    """Return a checkpoint folder: the given one, else coqui-tts's download (cached or fresh)."""
    if folder is not None:
        return check_folder(folder)
    if not tos_agreed():
        # coqui-tts would ask for the licence interactively (blocking, or EOFError without a
        # terminal) even for a cached copy: use a cached snapshot directly, else refuse.
        cached = cached_snapshot()
        if cached is not None:
            return cached
        raise EngineError(LICENCE_MESSAGE)
    from TTS.utils.manage import ModelManager

    logger.info("Fetching %s through coqui-tts (uses its cache when present)", XTTS_MODEL_NAME)
    try:
        model_path, _config_path, _item = ModelManager(progress_bar=False).download_model(
            XTTS_MODEL_NAME
        )
    except Exception as exc:  # network, disk or hub errors all end the same way
        raise EngineError(f"could not download {XTTS_MODEL_NAME}: {exc}") from exc
    folder = Path(model_path)
    return check_folder(folder if folder.is_dir() else folder.parent)
