"""Which engine runs, and why: a pure decision, then the loading it implies."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping

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


def pin_device(requested: str, environ: MutableMapping[str, str]) -> str:
    """Turn `cuda:N` into `cuda` with only GPU N visible to this process; others unchanged.

    The whole process then sees one GPU (as under a Kubernetes device plugin), so nothing can
    allocate on another replica's GPU. N counts among the GPUs already visible, as torch does.
    Must run before CUDA initialises.
    """
    if not requested.startswith("cuda:"):
        return requested
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        raise EngineError(f"VOXLINE_DEVICE={requested}: CUDA started before the device was "
                          "pinned; set CUDA_VISIBLE_DEVICES instead")
    index = int(requested.partition(":")[2])
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [part.strip() for part in visible.split(",") if part.strip()]
        if index >= len(ids):
            raise EngineError(f"VOXLINE_DEVICE={requested} but CUDA_VISIBLE_DEVICES={visible!r} "
                              f"lists {len(ids)} GPU(s)")
        environ["CUDA_VISIBLE_DEVICES"] = ids[index]
    else:
        environ["CUDA_VISIBLE_DEVICES"] = str(index)
    logger.info("VOXLINE_DEVICE=%s: CUDA_VISIBLE_DEVICES=%s", requested,
                environ["CUDA_VISIBLE_DEVICES"])
    return "cuda"


def load_engine(name: str, settings: Settings) -> Engine:
    """Construct and load the named engine (slow for XTTS)."""
    if name == "xtts":
        from voxline.engines.xtts_engine import XttsEngine

        folder = resolve_checkpoint(settings.xtts_dir)
        device = pin_device(settings.device, os.environ)
        return XttsEngine(folder, device, settings.deepspeed, settings.fp16,
                          settings.chunk_sizes())
    if name == "piper":
        from voxline.engines.piper_engine import PiperEngine

        return PiperEngine(renders=settings.piper_renders or None)
    if name == "tone":
        from voxline.engines.tone import ToneEngine

        return ToneEngine(settings.tone_chunk_ms, settings.tone_first_chunk_ms)
    raise EngineError(f"unknown engine {name!r}")
