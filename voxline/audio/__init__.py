"""Torch-free audio output pipeline: resampling, level, G.711, PCM/WAV and ffmpeg formats."""

from voxline.audio.ffmpeg import AudioEncoderError
from voxline.audio.formats import SAMPLE_RATES, AudioFormatError, OutputSpec, resolve_output
from voxline.audio.levels import DEFAULT_LEVEL, LevelPolicy, float_to_int16, parse_level_policy
from voxline.audio.pipeline import AudioPipeline, encode_whole

__all__ = [
    "DEFAULT_LEVEL",
    "SAMPLE_RATES",
    "AudioEncoderError",
    "AudioFormatError",
    "AudioPipeline",
    "LevelPolicy",
    "OutputSpec",
    "encode_whole",
    "float_to_int16",
    "parse_level_policy",
    "resolve_output",
]
