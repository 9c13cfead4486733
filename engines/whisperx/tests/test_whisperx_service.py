"""TranscriptionService: idle unload across model kinds, GPU serialisation, reaper wiring."""

import threading
import time
import wave

from fastapi.testclient import TestClient

from whisperx_service.app import create_app
from whisperx_service.audio import PcmAudio
from whisperx_service.config import Settings
from whisperx_service.options import AsrOptions
from whisperx_service.service import TranscriptionService


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def dialogue(audio_dir) -> PcmAudio:
    with wave.open(str(audio_dir / "tts" / "dialogue_2spk.wav")) as source:
        return PcmAudio(source.readframes(source.getnframes()))


def test_idle_unload_frees_every_model_kind(fake, audio_dir):
    clock = FakeClock()
    settings = Settings(hf_token="token", model_idle_timeout_s=120)
    service = TranscriptionService(fake, settings, clock=clock)

    service.transcribe(dialogue(audio_dir), AsrOptions(model="small", diarize=True))
    assert service.health()["loaded_models"] == ["small"]
    assert service.health()["diarization_loaded"] is True

    clock.now += 119
    assert service.evict_idle() == []
    clock.now += 1
    assert sorted(service.evict_idle()) == [
        "align:en", "diarization:pyannote/speaker-diarization-3.1", "whisper:small",
    ]
    health = service.health()
    assert (health["loaded_models"], health["loaded_align_models"], health["diarization_loaded"]) == ([], [], False)
    assert fake.memory_releases == 3

    service.transcribe(dialogue(audio_dir), AsrOptions(model="small"))
    assert [name for kind, name in fake.loads if kind == "whisper"] == ["small", "small"]


def test_align_models_are_bounded_per_language(fake, audio_dir):
    service = TranscriptionService(fake, Settings(max_align_models=2, model_idle_timeout_s=0))
    audio = dialogue(audio_dir)

    for language in ("en", "de", "en", "fr"):
        service.transcribe(audio, AsrOptions(model="base", language=language))

    assert service.health()["loaded_align_models"] == ["en", "fr"]
    assert [name for kind, name in fake.loads if kind == "align"] == ["en", "de", "fr"]


def test_gpu_work_runs_one_request_at_a_time(fake, audio_dir):
    active = []
    overlap = []
    original = fake.transcribe

    def slow_transcribe(*args, **kwargs):
        active.append(1)
        overlap.append(len(active))
        time.sleep(0.05)
        active.pop()
        return original(*args, **kwargs)

    fake.transcribe = slow_transcribe
    service = TranscriptionService(fake, Settings(model_idle_timeout_s=0))
    audio = dialogue(audio_dir)
    threads = [
        threading.Thread(target=service.transcribe, args=(audio, AsrOptions(model="base")))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)

    assert overlap == [1, 1, 1]


def test_idle_sweep_skips_while_gpu_is_busy(fake):
    service = TranscriptionService(fake, Settings(model_idle_timeout_s=1))
    with service._gpu:
        assert service.evict_idle() is None


def test_app_starts_reaper_that_unloads_idle_models(fake, audio_dir, tmp_path):
    settings = Settings(model_idle_timeout_s=0.2, tmp_dir=str(tmp_path))
    app = create_app(settings, backend_factory=lambda _settings: fake)

    with TestClient(app) as client:
        with open(audio_dir / "goforward.wav", "rb") as handle:
            assert client.post("/asr", files={"audio_file": ("g.wav", handle, "audio/wav")}).status_code == 200
        assert client.get("/health").json()["loaded_models"] == ["base"]
        deadline = time.monotonic() + 5
        while client.get("/health").json()["loaded_models"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/health").json()["loaded_models"] == []
        assert app.state.reaper is not None

    assert app.state.reaper is None
