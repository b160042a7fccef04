"""Piper's model in two parts, so a sentence's first audio is out before it is decoded whole.

A Piper voice is VITS: a front (text encoder, duration predictor, flow) turns phoneme ids into
latent frames, and a HiFi-GAN decoder turns frames into audio (`hop_length` samples each). The
decoder is ~70 % of a render and sees only a few frames around each sample, so the first
`FIRST_FRAMES` frames (~0.46 s) are decoded alone, with `CONTEXT_FRAMES` of the frames after
them, and the rest of the sentence next. Measured on the bundled voice (2 cores, one thread per
render): front 80 ms + first window 50 ms against 293 ms for the whole sentence, and the
windowed audio within 6e-4 of the whole decode (−64 dB; the split at the decoder's input
itself is exact). The prosody is the sentence's own: nothing is cut at a word.

The ONNX graph is cut at the decoder's one input (the frames); a voice whose decoder takes more
(multi-speaker voices condition it on the speaker) is rendered whole.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

FIRST_FRAMES = 40  # ~0.46 s at 22050 Hz and a hop of 256
CONTEXT_FRAMES = 10  # frames decoded past each window's end (and before its start), then cut
MAX_FRAMES = 300  # longest later window (~3.5 s): bounds one step's cost
DECODER_PREFIX = "/dec/"


@dataclass(frozen=True)
class SplitModel:
    """The two parts as serialized ONNX models, and the tensors that join them."""

    front: bytes
    decoder: bytes
    frames: str  # the front's output the decoder reads
    front_outputs: tuple[str, ...]  # frames, then the alignment output if any


def split_model(model, alignment: str | None) -> SplitModel | None:
    """Cut an (alignment-patched) Piper ONNX model before its decoder; None if the decoder
    needs anything besides the frames, or the graph has no recognisable decoder."""
    from onnx.utils import Extractor

    graph = model.graph
    decoder = [n for n in graph.node if n.name.startswith(DECODER_PREFIX)]
    if not decoder:
        return None
    made_inside = {o for n in decoder for o in n.output}
    constants = {i.name for i in graph.initializer} | {
        o for n in graph.node if n.op_type == "Constant" for o in n.output}
    needs = {i for n in decoder for i in n.input if i and i not in made_inside
             and i not in constants}
    if len(needs) != 1:
        return None
    (frames,) = needs
    inputs = [i.name for i in graph.input]
    outputs = (frames, alignment) if alignment else (frames,)
    extractor = Extractor(model)
    front = extractor.extract_model(inputs, list(outputs))
    tail = extractor.extract_model([frames], [graph.output[0].name])
    return SplitModel(front.SerializeToString(), tail.SerializeToString(), frames, outputs)


def windows(frames: int) -> list[tuple[int, int]]:
    """[start, end) frame ranges to decode in order: a short first one, then at most
    `MAX_FRAMES` each; one range when the sentence is barely longer than the first."""
    if frames <= FIRST_FRAMES + CONTEXT_FRAMES:
        return [(0, frames)]
    ranges = [(0, FIRST_FRAMES)]
    start = FIRST_FRAMES
    while start < frames:
        end = min(frames, start + MAX_FRAMES)
        if frames - end < CONTEXT_FRAMES:  # no sliver of a last window
            end = frames
        ranges.append((start, end))
        start = end
    return ranges


def decode_window(decoder, frames_name: str, latent: np.ndarray, start: int, end: int,
                  hop: int) -> np.ndarray:
    """The audio of frames [start, end) of `latent` (1, channels, frames), decoded with up
    to `CONTEXT_FRAMES` of context on each side and cut back to its own samples."""
    total = latent.shape[2]
    left, right = max(0, start - CONTEXT_FRAMES), min(total, end + CONTEXT_FRAMES)
    audio = decoder.run(None, {frames_name: latent[:, :, left:right]})[0].reshape(-1)
    begin = (start - left) * hop
    return audio[begin:begin + (end - start) * hop]
