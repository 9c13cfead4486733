"""The real ``OpenAIWhisperBackend`` against stand-ins for torch and openai-whisper.

torch and whisper are not installable here; these tests put module objects with the same
attributes in ``sys.modules`` so the backend's own logic (device choice, fp16, ROCm
version, load arguments, transcribe arguments, result conversion) runs for real.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from whisper_rocm_fakes import FakeWhisperModel, fake_torch_and_whisper, wait_until_ready
from whisper_rocm_service.audio import DecodedAudio
from whisper_rocm_service.backend import (
    BackendInputError, OpenAIWhisperBackend, temperature_schedule, to_builtin)
from whisper_rocm_service.config import Settings
from whisper_rocm_service.main import create_app

SERVICE_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture
def fake_modules(monkeypatch):
    def install(**kwargs):
        torch, whisper = fake_torch_and_whisper(**kwargs)
        monkeypatch.setitem(sys.modules, "torch", torch)
        monkeypatch.setitem(sys.modules, "whisper", whisper)
        return torch, whisper
    return install


def test_service_imports_without_torch_or_whisper():
    code = ("import sys; import whisper_rocm_service.main, whisper_rocm_service.backend; "
            "print(sorted(m for m in ('torch', 'whisper', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=str(SERVICE_DIR), check=True,
                         capture_output=True, text=True).stdout.strip()
    assert out == "[]"


def test_load_on_rocm_gpu_uses_fp16_and_records_hip(fake_modules):
    _, whisper = fake_modules(gpu=True)
    backend = OpenAIWhisperBackend(Settings(model="small", cache_dir="/models"))
    info = backend.load()
    assert whisper.load_calls == [{"name": "small", "device": "cuda", "download_root": "/models"}]
    assert info == {
        "model": "small", "device": "cuda", "device_name": "AMD Radeon PRO W7900", "fp16": True,
        "hip_version": "6.2.41134-65d174c3e", "torch_version": "2.3.0+rocm6.2.3",
    }


def test_load_without_gpu_falls_back_to_cpu_fp32(fake_modules):
    _, whisper = fake_modules(gpu=False)
    info = OpenAIWhisperBackend(Settings(fp16=True)).load()
    assert whisper.load_calls[0]["device"] == "cpu"
    assert info["device"] == "cpu" and info["fp16"] is False


def test_load_requiring_gpu_fails_without_one(fake_modules):
    _, whisper = fake_modules(gpu=False)
    with pytest.raises(RuntimeError, match="no GPU"):
        OpenAIWhisperBackend(Settings(device="cuda")).load()
    assert whisper.load_calls == []


def test_forced_cpu_and_fp16_off(fake_modules):
    _, whisper = fake_modules(gpu=True)
    assert OpenAIWhisperBackend(Settings(device="cpu")).load()["device"] == "cpu"
    assert OpenAIWhisperBackend(Settings(fp16=False)).load()["fp16"] is False


def test_transcribe_maps_request_options_onto_whisper(fake_modules, monkeypatch, tmp_path):
    _, whisper = fake_modules(gpu=True)
    backend = OpenAIWhisperBackend(Settings())
    backend.load()
    monkeypatch.setattr(backend, "_read_samples", lambda audio: ("samples-of", audio.path))
    audio = DecodedAudio(path=str(tmp_path / "x.pcm"), num_samples=176000)
    result = backend.transcribe(audio, language="en", prompt="Kennedy.", temperature=0.4,
                                word_timestamps=True)
    call = whisper.model_instance.transcribe_calls[-1]
    assert call["audio"] == ("samples-of", audio.path)
    assert call["task"] == "transcribe"
    assert call["language"] == "en"
    assert call["initial_prompt"] == "Kennedy."
    assert call["temperature"] == (0.4, 0.6, 0.8, 1.0)
    assert call["word_timestamps"] is True
    assert call["fp16"] is True
    assert call["verbose"] is None
    # numpy-typed values from Whisper come back as plain JSON types.
    assert result["segments"][0]["avg_logprob"] == -0.25
    json.dumps(result)


def test_english_only_model_rejects_other_languages(fake_modules, monkeypatch, tmp_path):
    fake_modules(model=FakeWhisperModel(is_multilingual=False))
    backend = OpenAIWhisperBackend(Settings(model="medium.en"))
    backend.load()
    monkeypatch.setattr(backend, "_read_samples", lambda audio: None)
    audio = DecodedAudio(path=str(tmp_path / "x.pcm"), num_samples=16000)
    with pytest.raises(BackendInputError) as info:
        backend.transcribe(audio, language="de", prompt=None, temperature=0.0, word_timestamps=False)
    assert info.value.param == "language"
    backend.transcribe(audio, language="en", prompt=None, temperature=0.0, word_timestamps=False)


def test_translate_task_reaches_whisper(fake_modules, monkeypatch, tmp_path):
    _, whisper = fake_modules(gpu=True)
    backend = OpenAIWhisperBackend(Settings())
    backend.load()
    monkeypatch.setattr(backend, "_read_samples", lambda audio: None)
    audio = DecodedAudio(path=str(tmp_path / "x.pcm"), num_samples=16000)
    backend.transcribe(audio, language=None, prompt=None, temperature=0.0, word_timestamps=False,
                       task="translate")
    assert whisper.model_instance.transcribe_calls[-1]["task"] == "translate"
    with pytest.raises(BackendInputError):
        backend.transcribe(audio, language=None, prompt=None, temperature=0.0,
                           word_timestamps=False, task="summarize")


def test_english_only_model_refuses_to_translate(fake_modules, monkeypatch, tmp_path):
    _, whisper = fake_modules(model=FakeWhisperModel(is_multilingual=False))
    backend = OpenAIWhisperBackend(Settings(model="medium.en"))
    backend.load()
    monkeypatch.setattr(backend, "_read_samples", lambda audio: None)
    audio = DecodedAudio(path=str(tmp_path / "x.pcm"), num_samples=16000)
    with pytest.raises(BackendInputError) as info:
        backend.transcribe(audio, language=None, prompt=None, temperature=0.0,
                           word_timestamps=False, task="translate")
    assert info.value.param == "model"
    assert whisper.model_instance.transcribe_calls == []


def test_cantonese_needs_a_100_language_vocabulary(fake_modules, monkeypatch, tmp_path):
    fake_modules(model=FakeWhisperModel(num_languages=99))
    backend = OpenAIWhisperBackend(Settings())
    backend.load()
    monkeypatch.setattr(backend, "_read_samples", lambda audio: None)
    audio = DecodedAudio(path=str(tmp_path / "x.pcm"), num_samples=16000)
    with pytest.raises(BackendInputError):
        backend.transcribe(audio, language="yue", prompt=None, temperature=0.0, word_timestamps=False)


def test_transcribe_before_load_is_an_error(tmp_path):
    with pytest.raises(RuntimeError):
        OpenAIWhisperBackend(Settings()).transcribe(
            DecodedAudio(path=str(tmp_path / "x.pcm"), num_samples=1), language=None,
            prompt=None, temperature=0.0, word_timestamps=False)


def test_app_with_the_real_backend_class(fake_modules, monkeypatch, jfk_wav, tmp_path):
    _, whisper = fake_modules(gpu=True)
    monkeypatch.setattr(OpenAIWhisperBackend, "_read_samples", lambda self, audio: audio.num_samples)
    app = create_app(Settings(model="medium", tmp_dir=str(tmp_path)))  # default factory
    with TestClient(app) as client:
        health = wait_until_ready(client)
        assert health["hip_version"] == "6.2.41134-65d174c3e"
        assert health["device_name"] == "AMD Radeon PRO W7900"
        with open(jfk_wav, "rb") as handle:
            response = client.post("/v1/audio/transcriptions",
                                   files={"file": ("jfk.wav", handle, "audio/wav")},
                                   data={"response_format": "verbose_json",
                                         "timestamp_granularities[]": "word"})
    assert response.status_code == 200, response.text
    assert response.json()["words"][0]["word"] == "And"
    assert len(whisper.load_calls) == 1
    call = whisper.model_instance.transcribe_calls[-1]
    assert call["audio"] == 176000  # what _read_samples saw: the decoded sample count
    assert call["word_timestamps"] is True


@pytest.mark.parametrize("start, expected", [
    (0.0, (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)),
    (0.5, (0.5, 0.7, 0.9)),
    (1.0, (1.0,)),
])
def test_temperature_schedule(start, expected):
    assert temperature_schedule(start) == pytest.approx(expected)


def test_to_builtin_leaves_strings_alone():
    class Scalar:
        def item(self):
            return 3
    assert to_builtin({"a": [Scalar(), "x", (1, 2)], "b": b"raw"}) == {"a": [3, "x", [1, 2]], "b": b"raw"}
