"""Facts about where a benchmark ran: machine, packages, git commit, server health."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "torch",
    "torchaudio",
    "coqui-tts",
    "transformers",
    "deepspeed",
    "piper-tts",
    "flask",
    "gunicorn",
    "numpy",
    "soxr",
)

PROXY_LABEL = "xtts-v2 random-weight proxy"
REAL_LABEL = "xtts-v2 real weights"


def _run(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def git_info() -> dict[str, object]:
    """Commit of the working tree and whether it had uncommitted changes."""
    commit = _run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"])
    status = _run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"])
    return {"commit": commit, "dirty": bool(status)}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed versions in this (the client's) Python; None where absent."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def gpu_names() -> list[str]:
    """GPU names from nvidia-smi (no torch import in the client)."""
    if not shutil.which("nvidia-smi"):
        return []
    out = _run(
        ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
    )
    return out.splitlines() if out else []


def machine_info() -> dict[str, object]:
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": gpu_names(),
    }


def describe_checkpoint(folder: Path | None) -> dict[str, object] | None:
    """Architecture and weight origin of an XTTS checkpoint folder, from its JSON files alone.

    `bench/make_xtts_checkpoint.py` writes a character-level tokenizer with no BPE merges; the
    published XTTS v2 vocab.json has thousands of merges. That tells the two apart.
    """
    if folder is None:
        return None
    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    args = config.get("model_args", {})
    merges = None
    try:
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        merges = vocab.get("model", {}).get("merges")
    except (OSError, ValueError):
        pass
    max_audio = args.get("gpt_max_audio_tokens")
    return {
        "folder": str(folder),
        "gpt_layers": args.get("gpt_layers"),
        "gpt_n_model_channels": args.get("gpt_n_model_channels"),
        "gpt_max_audio_tokens": max_audio,
        "v2_architecture": args.get("gpt_layers") == 30
        and args.get("gpt_n_model_channels") == 1024,
        "random_weights": None if merges is None else len(merges) == 0,
        # GPT.max_gen_mel_tokens: the model reserves 3 of its audio positions.
        "max_new_tokens": int(max_audio) - 3 if max_audio else None,
    }


def model_label(engine: str | None, checkpoint: dict | None, weights: str = "auto") -> str:
    """The label every result carries: which model produced these numbers."""
    if engine != "xtts":
        return engine or "unknown"
    random = {"proxy": True, "real": False}.get(weights)
    if random is None and checkpoint:
        random = checkpoint.get("random_weights")
    v2 = checkpoint.get("v2_architecture", True) if checkpoint else True
    if random is None:
        return "xtts (weights not identified)"
    if not random:
        return REAL_LABEL
    if v2:
        return PROXY_LABEL
    return (
        f"xtts tiny random-weight (gpt_layers={checkpoint.get('gpt_layers')}, "
        f"{checkpoint.get('gpt_n_model_channels')} channels; not a latency proxy)"
    )
