"""The admission settings are read and validated like every other."""

from __future__ import annotations

import pytest

from voxline.settings import Settings, SettingsError


def test_admission_settings_from_the_environment():
    settings = Settings.from_env({"VOXLINE_TARGET_LOAD": "0.9", "VOXLINE_FIRST_AUDIO_S": "2"})
    assert (settings.target_load, settings.first_audio_s) == (0.9, 2.0)
    assert Settings().max_active == 32  # a safety cap: measured capacity refuses first


@pytest.mark.parametrize("env", [{"VOXLINE_TARGET_LOAD": "1.5"}, {"VOXLINE_TARGET_LOAD": "-1"},
                                 {"VOXLINE_FIRST_AUDIO_S": "0"}])
def test_admission_settings_out_of_range_are_refused(env):
    with pytest.raises(SettingsError):
        Settings.from_env(env)
