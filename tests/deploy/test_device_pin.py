"""VOXLINE_DEVICE=cuda:N pins a replica to one GPU through CUDA_VISIBLE_DEVICES."""

from __future__ import annotations

import pytest

from voxline.engines.base import EngineError
from voxline.engines.select import pin_device
from voxline.settings import Settings, SettingsError


def test_cuda_n_shows_the_process_only_gpu_n():
    env: dict[str, str] = {}
    assert pin_device("cuda:2", env) == "cuda"
    assert env == {"CUDA_VISIBLE_DEVICES": "2"}


def test_n_counts_among_the_gpus_already_visible():
    env = {"CUDA_VISIBLE_DEVICES": "4,6"}
    assert pin_device("cuda:1", env) == "cuda"
    assert env["CUDA_VISIBLE_DEVICES"] == "6"
    with pytest.raises(EngineError, match="lists 2 GPU"):
        pin_device("cuda:2", {"CUDA_VISIBLE_DEVICES": "4,6"})


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda"])
def test_other_devices_leave_the_environment_alone(device):
    env: dict[str, str] = {}
    assert pin_device(device, env) == device and env == {}


def test_settings_accept_cuda_n_and_reject_other_forms():
    assert Settings.from_env({"VOXLINE_DEVICE": "cuda:1"}).device == "cuda:1"
    for bad in ("cuda:", "cuda:x", "gpu:0", "cuda:-1"):
        with pytest.raises(SettingsError, match="VOXLINE_DEVICE"):
            Settings.from_env({"VOXLINE_DEVICE": bad})
