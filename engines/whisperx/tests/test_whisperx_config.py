"""Environment settings and query-option parsing."""

import pytest

from whisperx_service.config import ConfigError, Settings
from whisperx_service.errors import BadRequest
from whisperx_service.options import parse_asr_query


def test_defaults():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert (settings.whisper_model, settings.batch_size, settings.max_loaded_models) == ("base", 16, 2)
    assert settings.device == "auto" and settings.compute_type is None
    assert settings.diarization_available is False


def test_reads_every_variable():
    settings = Settings.from_env({
        "WHISPER_MODEL": "large-v3", "DEVICE": "CUDA", "COMPUTE_TYPE": "int8_float16",
        "BATCH_SIZE": "8", "HF_TOKEN": "hf_x", "MAX_LOADED_MODELS": "3", "MAX_ALIGN_MODELS": "4",
        "MODEL_IDLE_TIMEOUT": "90.5", "MODEL_CACHE_DIR": "/models", "UPLOAD_TMP_DIR": "/scratch",
        "DIARIZATION_MODEL": "pyannote/speaker-diarization-3.0",
    })
    assert settings == Settings(
        whisper_model="large-v3", device="cuda", compute_type="int8_float16", batch_size=8,
        hf_token="hf_x", diarization_model="pyannote/speaker-diarization-3.0",
        max_loaded_models=3, max_align_models=4, model_idle_timeout_s=90.5,
        model_cache_dir="/models", tmp_dir="/scratch",
    )
    assert settings.diarization_available is True


def test_lists_every_bad_variable_at_once():
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({
            "WHISPER_MODEL": "huge", "DEVICE": "rocm", "BATCH_SIZE": "0",
            "MAX_LOADED_MODELS": "two", "MODEL_IDLE_TIMEOUT": "-1",
        })
    message = str(raised.value)
    for name in ("WHISPER_MODEL", "DEVICE", "BATCH_SIZE", "MAX_LOADED_MODELS", "MODEL_IDLE_TIMEOUT"):
        assert name in message


def test_empty_values_count_as_unset():
    assert Settings.from_env({"HF_TOKEN": "", "WHISPER_MODEL": " "}) == Settings()


def test_query_defaults_follow_whisper_asr_webservice():
    options = parse_asr_query({}, Settings(whisper_model="small"))
    assert (options.model, options.task, options.language, options.output) == ("small", "transcribe", None, "txt")
    assert (options.encode, options.word_timestamps, options.diarize) == (True, False, False)


def test_query_booleans_and_empty_values():
    options = parse_asr_query(
        {"encode": "False", "word_timestamps": "1", "diarize": "on", "language": "", "initial_prompt": "  "},
        Settings(hf_token="t"),
    )
    assert (options.encode, options.word_timestamps, options.diarize) == (False, True, True)
    assert options.language is None and options.initial_prompt is None


def test_speaker_bounds_only_apply_with_diarization():
    with_diarization = parse_asr_query({"diarize": "true", "min_speakers": "2", "max_speakers": "2"}, Settings(hf_token="t"))
    without = parse_asr_query({"min_speakers": "2", "max_speakers": "4"}, Settings())
    assert (with_diarization.min_speakers, with_diarization.max_speakers) == (2, 2)
    assert (without.min_speakers, without.max_speakers) == (None, None)
    # Out-of-range values are rejected either way.
    with pytest.raises(BadRequest):
        parse_asr_query({"max_speakers": "50"}, Settings())
