"""Compressed output (mp3, Ogg Opus, flac, ADTS AAC) through an ffmpeg subprocess fed by chunk.

ffmpeg reads s16le from its stdin pipe; a reader thread moves its stdout into a queue, so
``encode()`` writes and returns at once with whatever output is ready (possibly nothing), and
the two pipes can never deadlock. The process is killed and reaped by ``close()``, or when the
encoder is garbage-collected, so a client that disconnects mid-stream leaves no process behind.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import tempfile
import threading
import weakref
from pathlib import Path
from typing import IO

import numpy as np

logger = logging.getLogger(__name__)

FINISH_TIMEOUT_S = 60.0
_MP3_BITRATES = {8000: "32k", 16000: "48k", 22050: "64k", 24000: "64k"}  # else 128k


class AudioEncoderError(RuntimeError):
    """ffmpeg failed or stopped while encoding (a server-side error)."""


def codec_args(fmt: str, sample_rate: int) -> list[str]:
    """Return the ffmpeg output options (codec and muxer) for a compressed format."""
    if fmt == "mp3":
        bitrate = _MP3_BITRATES.get(sample_rate, "128k")
        return ["-c:a", "libmp3lame", "-b:a", bitrate, "-f", "mp3"]
    if fmt == "opus":
        # 100 ms Ogg pages instead of the default 1 s keep streaming latency low.
        return ["-c:a", "libopus", "-b:a", "32k", "-page_duration", "100000", "-f", "ogg"]
    if fmt == "flac":
        return ["-c:a", "flac", "-f", "flac"]
    if fmt == "aac":
        # ADTS, not MP4/M4A: an MP4 needs a seekable output for its index, ADTS streams.
        # Speech bitrates as for mp3.
        bitrate = _MP3_BITRATES.get(sample_rate, "128k")
        return ["-c:a", "aac", "-b:a", bitrate, "-f", "adts"]
    raise ValueError(f"not an ffmpeg format: {fmt}")


def ffmpeg_command(fmt: str, sample_rate: int, output: str = "pipe:1") -> list[str]:
    """Return the ffmpeg command line that encodes mono s16le from stdin to the output."""
    return [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
        "-probesize", "32", "-analyzeduration", "0",
        "-f", "s16le", "-ar", str(sample_rate), "-ac", "1", "-i", "pipe:0",
        "-map_metadata", "-1", "-fflags", "+bitexact", "-flush_packets", "1",
        *codec_args(fmt, sample_rate), "-y", output,
    ]  # fmt: skip


def encode_file(fmt: str, sample_rate: int, samples: np.ndarray) -> bytes:
    """Encode a whole utterance through a seekable temporary file (exact headers, gapless mp3)."""
    with tempfile.TemporaryDirectory(prefix="voxline-") as tmp:
        path = Path(tmp) / f"out.{fmt}"
        proc = subprocess.run(
            ffmpeg_command(fmt, sample_rate, str(path)),
            input=samples.astype("<i2").tobytes(),
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            raise AudioEncoderError(f"ffmpeg {fmt} failed: {_tail(proc.stderr)}")
        return path.read_bytes()


class FfmpegEncoder:
    """Stream int16 samples into ffmpeg and collect its encoded output without blocking."""

    def __init__(self, fmt: str, sample_rate: int) -> None:
        self._fmt = fmt
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            ffmpeg_command(fmt, sample_rate),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._out: queue.Queue[bytes | None] = queue.Queue()
        self._reader = threading.Thread(
            target=_pump, args=(self._proc.stdout, self._out), daemon=True, name="ffmpeg-reader"
        )
        self._reader.start()
        self._reap = weakref.finalize(self, _reap, self._proc, self._reader, self._stderr)
        logger.debug("ffmpeg %s started, pid %s", fmt, self._proc.pid)

    @property
    def pid(self) -> int:
        """Return the ffmpeg process id."""
        return self._proc.pid

    def header(self) -> bytes:
        """Return nothing: the container header comes out of ffmpeg with the first data."""
        return b""

    def encode(self, samples: np.ndarray) -> bytes:
        """Write samples to ffmpeg and return the encoded bytes available now."""
        try:
            if samples.size:
                self._proc.stdin.write(samples.astype("<i2").tobytes())
                self._proc.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise AudioEncoderError(f"ffmpeg {self._fmt} stopped: {self._error()}") from exc
        return self._drain(block=False)

    def finish(self) -> bytes:
        """Close ffmpeg's input, wait for it to finish and return the rest of its output."""
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        data = self._drain(block=True)
        returncode = self._proc.wait(timeout=FINISH_TIMEOUT_S)
        if returncode != 0:
            raise AudioEncoderError(f"ffmpeg {self._fmt} exited {returncode}: {self._error()}")
        self.close()
        return data

    def close(self) -> None:
        """Kill ffmpeg if it still runs, reap it and close the pipes; safe to call again."""
        self._reap()

    def _drain(self, block: bool) -> bytes:
        """Collect queued output; with block, wait until ffmpeg closes its stdout."""
        parts = []
        while True:
            try:
                item = self._out.get(block=block, timeout=FINISH_TIMEOUT_S if block else None)
            except queue.Empty:
                if block:
                    raise AudioEncoderError(f"ffmpeg {self._fmt} did not finish") from None
                break
            if item is None:
                break
            parts.append(item)
        return b"".join(parts)

    def _error(self) -> str:
        """Return the end of what ffmpeg wrote to stderr."""
        self._stderr.seek(0)
        return _tail(self._stderr.read())


def _pump(stream: IO[bytes], out: queue.Queue[bytes | None]) -> None:
    """Move everything from ffmpeg's stdout into the queue, then a None end marker."""
    try:
        while chunk := stream.read1(65536):
            out.put(chunk)
    finally:
        out.put(None)


def _reap(proc: subprocess.Popen, reader: threading.Thread, stderr: IO[bytes]) -> None:
    """Kill and wait for the process, join the reader and close every pipe."""
    if proc.poll() is None:
        proc.kill()
        logger.debug("ffmpeg pid %s killed before the end of its stream", proc.pid)
    proc.wait()
    reader.join(timeout=5)  # ends at EOF now that the process is gone
    for pipe in (proc.stdin, proc.stdout):
        try:
            pipe.close()
        except OSError:  # includes BrokenPipeError from flushing a dead stdin
            pass
    stderr.close()


def _tail(text: bytes, limit: int = 500) -> str:
    """Return the last characters of ffmpeg's stderr as text."""
    return text.decode("utf-8", "replace").strip()[-limit:] or "(no message)"
