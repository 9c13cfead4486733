"""WhisperXBackend's calls into WhisperX 3.3.1, checked against stand-in modules.

whisperx and torch cannot be installed here, so tiny modules with the 3.3.1 call
signatures take their place in sys.modules; the tests check what the backend passes
and how it turns results and failures into the service's shapes and errors.
"""

import dataclasses
import json
import subprocess
import sys
import types
import wave
from pathlib import Path
from typing import NamedTuple

import pytest
from fastapi.testclient import TestClient

from whisperx_service.app import create_app
from whisperx_service.audio import PcmAudio
from whisperx_service.backend import (
    WhisperXBackend,
    diarization_auth_kwargs,
    is_out_of_memory,
    with_initial_prompt,
)
from whisperx_service.config import Settings
from whisperx_service.errors import AlignmentUnavailable, EngineUnavailable

N_SAMPLES = 480000
SERVICE_DIR = Path(__file__).resolve().parent.parent


class Samples:
    """Stands in for the float32 numpy array: length and slicing are all the backend uses."""

    def __init__(self, count):
        self.shape = (count,)

    def __getitem__(self, index):
        return Samples(len(range(self.shape[0])[index]))


@dataclasses.dataclass(frozen=True)
class TranscriptionOptions:
    beam_size: int = 5
    initial_prompt: object = None


class Recorder:
    def __init__(self):
        self.calls = []

    def add(self, name, *args, **kwargs):
        self.calls.append((name, args, kwargs))

    def named(self, name):
        return [(args, kwargs) for call, args, kwargs in self.calls if call == name]


class FakePipeline:
    def __init__(self, recorder, name):
        self.recorder = recorder
        self.name = name
        self.options = TranscriptionOptions()
        self.fail_with = None
        self.model = types.SimpleNamespace(
            feat_kwargs={"feature_size": 128},
            encode=lambda mel: ("encoded", mel),
            model=types.SimpleNamespace(detect_language=self._detect),
        )

    def transcribe(self, audio, batch_size=None, num_workers=0, language=None, task=None, chunk_size=30):
        self.recorder.add("transcribe", audio.shape[0], batch_size=batch_size, language=language,
                          task=task, initial_prompt=self.options.initial_prompt)
        if self.fail_with:
            raise self.fail_with
        return {
            "segments": [{"text": " Hello world.", "start": 0.031, "end": 1.5, "avg_logprob": -0.2}],
            "language": language or "en",
        }

    def _detect(self, encoder_output):
        self.recorder.add("detect_language", encoder_output)
        return [[("<|de|>", 0.8731), ("<|en|>", 0.1)]]


class OldDiarizationPipeline:
    """WhisperX 3.3.1's signature."""

    instances = []

    def __init__(self, model_name="pyannote/speaker-diarization-3.1", use_auth_token=None, device="cpu"):
        self.init = {"model_name": model_name, "use_auth_token": use_auth_token, "device": device}
        self.calls = []
        OldDiarizationPipeline.instances.append(self)

    def __call__(self, audio, num_speakers=None, min_speakers=None, max_speakers=None):
        self.calls.append({"samples": audio.shape[0], "num_speakers": num_speakers,
                           "min_speakers": min_speakers, "max_speakers": max_speakers})
        return [{"start": 0.0, "end": 10.0, "speaker": "SPEAKER_00"}]


class NewDiarizationPipeline:
    def __init__(self, model_name="pyannote/speaker-diarization-community-1", token=None, device="cpu"):
        pass


@pytest.fixture
def stack(monkeypatch):
    """Installs stand-in torch and whisperx modules; returns their recorder and knobs."""
    recorder = Recorder()
    state = types.SimpleNamespace(cuda=True, recorder=recorder, pipelines={}, align_error=None)

    torch = types.ModuleType("torch")
    torch.cuda = types.SimpleNamespace(
        is_available=lambda: state.cuda,
        empty_cache=lambda: recorder.add("empty_cache"),
    )

    whisperx = types.ModuleType("whisperx")

    def load_model(name, device, device_index=0, compute_type="float16", asr_options=None,
                   language=None, vad_model=None, vad_method="pyannote", vad_options=None,
                   model=None, task="transcribe", download_root=None, local_files_only=False, threads=4):
        recorder.add("load_model", name, device, compute_type=compute_type, download_root=download_root)
        state.pipelines[name] = FakePipeline(recorder, name)
        return state.pipelines[name]

    def load_align_model(language_code, device, model_name=None, model_dir=None):
        recorder.add("load_align_model", language_code=language_code, device=device, model_dir=model_dir)
        if state.align_error:
            raise state.align_error
        return ("wav2vec2", {"language": language_code, "dictionary": {}, "type": "torchaudio"})

    def align(transcript, model, align_model_metadata, audio, device, interpolate_method="nearest",
              return_char_alignments=False, print_progress=False, combined_progress=False):
        recorder.add("align", transcript, model, align_model_metadata["language"], audio.shape[0], device,
                     return_char_alignments=return_char_alignments)
        segments = [dict(s, words=[{"word": "Hello", "start": 0.1, "end": 0.5, "score": 0.9},
                                   {"word": "world.", "start": 0.6, "end": 1.2, "score": 0.8}], chars=None)
                    for s in transcript]
        return {"segments": segments, "word_segments": []}

    whisperx.load_model = load_model
    whisperx.load_align_model = load_align_model
    whisperx.align = align

    alignment = types.ModuleType("whisperx.alignment")
    alignment.DEFAULT_ALIGN_MODELS_TORCH = {"en": "WAV2VEC2_ASR_BASE_960H", "fr": "VOXPOPULI_ASR_BASE_10K_FR"}
    alignment.DEFAULT_ALIGN_MODELS_HF = {"ja": "jonatasgrosman/wav2vec2-large-xlsr-53-japanese"}

    diarize = types.ModuleType("whisperx.diarize")
    OldDiarizationPipeline.instances = []
    diarize.DiarizationPipeline = OldDiarizationPipeline

    def assign_word_speakers(diarize_df, transcript_result, fill_nearest=False):
        recorder.add("assign_word_speakers", diarize_df)
        for segment in transcript_result["segments"]:
            segment["speaker"] = diarize_df[0]["speaker"]
            for word in segment["words"]:
                word["speaker"] = diarize_df[0]["speaker"]
        return transcript_result

    diarize.assign_word_speakers = assign_word_speakers

    audio = types.ModuleType("whisperx.audio")
    audio.N_SAMPLES = N_SAMPLES

    def log_mel_spectrogram(samples, n_mels=80, padding=0, device=None):
        recorder.add("log_mel_spectrogram", samples.shape[0], n_mels=n_mels, padding=padding)
        return "mel"

    audio.log_mel_spectrogram = log_mel_spectrogram

    for name, module in (("torch", torch), ("whisperx", whisperx), ("whisperx.alignment", alignment),
                         ("whisperx.diarize", diarize), ("whisperx.audio", audio)):
        monkeypatch.setitem(sys.modules, name, module)
    whisperx.alignment, whisperx.diarize, whisperx.audio = alignment, diarize, audio
    monkeypatch.setattr(PcmAudio, "float32", lambda self: Samples(self.num_samples))
    return state


def seconds_of_audio(seconds):
    return PcmAudio(b"\x00\x00" * int(seconds * 16000))


def test_package_imports_without_torch_whisperx_or_numpy():
    code = (
        "import sys; import whisperx_service.app, whisperx_service.backend, whisperx_service.service;"
        "heavy = [m for m in ('torch', 'whisperx', 'numpy') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    completed = subprocess.run([sys.executable, "-c", code], cwd=str(SERVICE_DIR), capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_missing_whisperx_is_a_clear_start_up_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(RuntimeError, match="requirements.txt"):
        WhisperXBackend(Settings())


@pytest.mark.parametrize(
    "cuda, device, compute_type, expected",
    [
        (True, "auto", None, ("cuda", "float16")),
        (False, "auto", None, ("cpu", "int8")),
        (True, "cpu", None, ("cpu", "int8")),
        (True, "cuda", "int8_float16", ("cuda", "int8_float16")),
    ],
)
def test_device_and_compute_type(stack, cuda, device, compute_type, expected):
    stack.cuda = cuda
    backend = WhisperXBackend(Settings(device=device, compute_type=compute_type))
    assert (backend.device, backend.compute_type) == expected


def test_cuda_requested_without_gpu_is_refused(stack):
    stack.cuda = False
    with pytest.raises(EngineUnavailable, match="no CUDA GPU"):
        WhisperXBackend(Settings(device="cuda"))


def test_transcribe_swaps_the_initial_prompt_for_one_call(stack):
    backend = WhisperXBackend(Settings(model_cache_dir="/models"))
    pipeline = backend.load_whisper("large-v2")

    result = backend.transcribe(pipeline, seconds_of_audio(2), language=None, task="translate",
                                initial_prompt="Names: Ada, Grace.", batch_size=8)

    assert stack.recorder.named("load_model") == [
        (("large-v2", "cuda"), {"compute_type": "float16", "download_root": "/models"})
    ]
    assert stack.recorder.named("transcribe") == [
        ((32000,), {"batch_size": 8, "language": None, "task": "translate", "initial_prompt": "Names: Ada, Grace."})
    ]
    assert pipeline.options.initial_prompt is None
    assert result == {"segments": [{"start": 0.031, "end": 1.5, "text": " Hello world."}], "language": "en"}


def test_initial_prompt_copy_works_for_dataclass_and_namedtuple_options():
    class LegacyOptions(NamedTuple):
        beam_size: int = 5
        initial_prompt: object = None

    assert with_initial_prompt(TranscriptionOptions(beam_size=3), "x") == TranscriptionOptions(beam_size=3, initial_prompt="x")
    assert with_initial_prompt(LegacyOptions(beam_size=3), "x") == LegacyOptions(beam_size=3, initial_prompt="x")


def test_out_of_memory_becomes_503_and_frees_cache(stack):
    backend = WhisperXBackend(Settings())
    pipeline = backend.load_whisper("large-v3")
    pipeline.fail_with = RuntimeError("CUDA failed with error out of memory")

    with pytest.raises(EngineUnavailable, match="out of GPU memory"):
        backend.transcribe(pipeline, seconds_of_audio(1), "en", "transcribe", None, 16)
    assert stack.recorder.named("empty_cache")
    assert pipeline.options.initial_prompt is None


def test_other_failures_propagate_unchanged(stack):
    backend = WhisperXBackend(Settings())
    pipeline = backend.load_whisper("base")
    pipeline.fail_with = KeyError("segments")
    with pytest.raises(KeyError):
        backend.transcribe(pipeline, seconds_of_audio(1), "en", "transcribe", None, 16)


def test_aligner_for_unsupported_language_is_not_loaded(stack):
    backend = WhisperXBackend(Settings())
    with pytest.raises(AlignmentUnavailable, match="'sw'"):
        backend.load_aligner("sw")
    assert stack.recorder.named("load_align_model") == []


def test_aligner_load_and_failure(stack):
    backend = WhisperXBackend(Settings(model_cache_dir="/models"))
    aligner = backend.load_aligner("ja")
    assert stack.recorder.named("load_align_model") == [
        ((), {"language_code": "ja", "device": "cuda", "model_dir": "/models"})
    ]
    segments = backend.align(aligner, [{"start": 0.0, "end": 1.5, "text": " Hello world."}], seconds_of_audio(2))
    [(args, kwargs)] = stack.recorder.named("align")
    assert args[1:] == ("wav2vec2", "ja", 32000, "cuda") and kwargs == {"return_char_alignments": False}
    assert [w["word"] for w in segments[0]["words"]] == ["Hello", "world."]

    stack.align_error = ValueError('The chosen align_model "x" could not be found in huggingface')
    with pytest.raises(EngineUnavailable, match="could not be loaded"):
        backend.load_aligner("fr")


def test_diarize_uses_the_pinned_token_keyword_and_speaker_bounds(stack):
    backend = WhisperXBackend(Settings(hf_token="hf_secret"))
    diarizer = backend.load_diarizer("pyannote/speaker-diarization-3.1")
    segments = [{"start": 0.0, "end": 1.0, "text": " Hi.", "words": [{"word": "Hi.", "start": 0.1, "end": 0.4}]}]

    labelled = backend.diarize(diarizer, seconds_of_audio(3), segments, min_speakers=2, max_speakers=4)

    [pipeline] = OldDiarizationPipeline.instances
    assert pipeline.init == {"model_name": "pyannote/speaker-diarization-3.1", "use_auth_token": "hf_secret", "device": "cuda"}
    # min/max go by keyword: the pipeline's second positional parameter is num_speakers.
    assert pipeline.calls == [{"samples": 48000, "num_speakers": None, "min_speakers": 2, "max_speakers": 4}]
    assert labelled[0]["speaker"] == "SPEAKER_00" and labelled[0]["words"][0]["speaker"] == "SPEAKER_00"


def test_diarization_token_keyword_follows_the_signature():
    assert diarization_auth_kwargs(OldDiarizationPipeline, "t") == {"use_auth_token": "t"}
    assert diarization_auth_kwargs(NewDiarizationPipeline, "t") == {"token": "t"}


def test_detect_language_reads_one_window_and_reports_probability(stack):
    backend = WhisperXBackend(Settings())
    pipeline = backend.load_whisper("large-v3")

    assert backend.detect_language(pipeline, seconds_of_audio(12)) == ("de", 0.8731)
    assert stack.recorder.named("log_mel_spectrogram") == [((192000,), {"n_mels": 128, "padding": N_SAMPLES - 192000})]
    backend.detect_language(pipeline, seconds_of_audio(45))
    assert stack.recorder.named("log_mel_spectrogram")[1] == ((N_SAMPLES,), {"n_mels": 128, "padding": 0})


def test_release_memory_empties_the_cuda_cache_only_on_cuda(stack):
    WhisperXBackend(Settings(device="cpu")).release_memory()
    assert stack.recorder.named("empty_cache") == []
    WhisperXBackend(Settings(device="cuda")).release_memory()
    assert len(stack.recorder.named("empty_cache")) == 1


def test_out_of_memory_recognition():
    class OutOfMemoryError(RuntimeError):
        pass

    assert is_out_of_memory(OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError("CUDA failed with error out of memory"))
    assert not is_out_of_memory(RuntimeError("device-side assert triggered"))


def test_asr_request_through_the_real_backend(stack, audio_dir, tmp_path):
    settings = Settings(hf_token="hf_secret", model_idle_timeout_s=0, tmp_dir=str(tmp_path))
    app = create_app(settings, backend_factory=WhisperXBackend)
    with wave.open(str(audio_dir / "jfk.wav")) as source:
        frames = source.getnframes()

    with TestClient(app) as client, open(audio_dir / "jfk.wav", "rb") as handle:
        response = client.post(
            "/asr", params={"output": "json", "diarize": "true", "model": "tiny", "max_speakers": "2"},
            files={"audio_file": ("jfk.wav", handle, "audio/wav")},
        )
        health = client.get("/health").json()

    assert response.status_code == 200, response.text
    assert json.loads(response.text) == {
        "language": "en",
        "segments": [{
            "start": 0.031, "end": 1.5, "text": " Hello world.", "speaker": "SPEAKER_00",
            "words": [
                {"word": "Hello", "start": 0.1, "end": 0.5, "score": 0.9, "speaker": "SPEAKER_00"},
                {"word": "world.", "start": 0.6, "end": 1.2, "score": 0.8, "speaker": "SPEAKER_00"},
            ],
        }],
    }
    assert stack.recorder.named("transcribe")[0][0] == (frames,)
    assert (health["device"], health["compute_type"], health["loaded_models"]) == ("cuda", "float16", ["tiny"])
