"""Environment parsing."""

import pytest

from whisper_rocm_service.config import DEFAULT_MAX_UPLOAD_BYTES, Settings, SettingsError


def test_defaults():
    settings = Settings.from_env({})
    assert settings.model == "medium"
    assert settings.device == "auto"
    assert settings.fp16 is None
    assert settings.max_upload_bytes == DEFAULT_MAX_UPLOAD_BYTES == 1024 ** 3
    assert settings.api_key is None
    assert settings.cache_dir is None
    assert settings.accepted_model_names == {"whisper-1", "medium", "whisper-medium"}


def test_values_are_read():
    settings = Settings.from_env({
        "WHISPER_MODEL": "large-v3", "WHISPER_CACHE_DIR": "/models", "WHISPER_DEVICE": "CUDA",
        "WHISPER_FP16": "false", "MAX_UPLOAD_BYTES": "26214400", "API_KEY": "k",
        "FFMPEG_BIN": "/usr/bin/ffmpeg", "DECODE_TIMEOUT_SECONDS": "60", "WHISPER_TMP_DIR": "/scratch",
    })
    assert (settings.model, settings.cache_dir, settings.device, settings.fp16) == \
        ("large-v3", "/models", "cuda", False)
    assert settings.max_upload_bytes == 26214400
    assert settings.api_key == "k"
    assert settings.decode_timeout_s == 60.0
    assert settings.tmp_dir == "/scratch"
    assert "whisper-large-v3" in settings.accepted_model_names


def test_blank_api_key_disables_auth():
    assert Settings.from_env({"API_KEY": "   "}).api_key is None


def test_every_bad_variable_is_reported_at_once():
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"WHISPER_DEVICE": "rocm", "WHISPER_FP16": "maybe",
                           "MAX_UPLOAD_BYTES": "1GB", "DECODE_TIMEOUT_SECONDS": "-1"})
    message = str(info.value)
    for name in ("WHISPER_DEVICE", "WHISPER_FP16", "MAX_UPLOAD_BYTES", "DECODE_TIMEOUT_SECONDS"):
        assert name in message


def test_zero_upload_limit_is_rejected():
    with pytest.raises(SettingsError, match="MAX_UPLOAD_BYTES"):
        Settings.from_env({"MAX_UPLOAD_BYTES": "0"})
