"""Which engine runs, and why: a pure decision, then the loading it implies."""

from __future__ import annotations

import logging

from voxline.engines.base import Engine, EngineError
from voxline.engines.xtts_weights import WeightsSource, resolve_checkpoint
from voxline.settings import Settings

logger = logging.getLogger(__name__)


def choose_engine(requested: str, weights: WeightsSource) -> tuple[str, str]:
    """Return (engine name, reason) for VOXLINE_ENGINE and what is known of XTTS weights."""
    if requested != "auto":
        return requested, f"VOXLINE_ENGINE={requested}"
    if weights.folder is not None:
        return "xtts", f"VOXLINE_XTTS_DIR={weights.folder}"
    if weights.cached is not None:
        return "xtts", f"XTTS v2 found in the coqui-tts cache ({weights.cached})"
    if weights.tos_agreed:
        return "xtts", "COQUI_TOS_AGREED=1: XTTS v2 is fetched through coqui-tts"
    return "piper", (
        "no XTTS v2 weights (set VOXLINE_XTTS_DIR, or COQUI_TOS_AGREED=1 to download them); "
        "serving the bundled Piper voice"
    )


def load_engine(name: str, settings: Settings) -> Engine:
    """Construct and load the named engine (slow for XTTS)."""
    if name == "xtts":
        from voxline.engines.xtts_engine import XttsEngine

        folder = resolve_checkpoint(settings.xtts_dir)
        return XttsEngine(folder, settings.device, settings.deepspeed, settings.fp16,
                          settings.chunk_sizes())
    if name == "piper":
        from voxline.engines.piper_engine import PiperEngine

        return PiperEngine()
    if name == "tone":
        from voxline.engines.tone import ToneEngine

        return ToneEngine(settings.tone_chunk_ms, settings.tone_first_chunk_ms)
    raise EngineError(f"unknown engine {name!r}")
