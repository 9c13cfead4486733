"""Test doubles for the model boundary (``WhisperBackend``) and for torch/whisper.

The fake backend returns a result in openai-whisper's exact shape (modelled on Whisper's
output for the JFK fixture) and records what it was called with, including facts about
the decoded PCM it received, so tests can check the decoding contract: 16 kHz, mono,
signed 16-bit.
"""

import array
import os
import sys
import threading
import time
import types
from typing import Any, Dict, List, Optional

JFK_SEGMENTS = [
    (" And so my fellow Americans, ask not what your country can do for you,",
     [50364, 400, 370, 452, 7177, 6280, 11, 1029, 406, 437, 428, 1941, 393, 360, 337, 291, 11, 50700]),
    (" ask what you can do for your country.",
     [50700, 1029, 437, 291, 393, 360, 337, 428, 1941, 13, 50914]),
]

HEALTH_INFO = {
    "device": "cuda",
    "device_name": "AMD Instinct MI210",
    "fp16": True,
    "hip_version": "6.2.41134-65d174c3e",
    "torch_version": "2.3.0+rocm6.2.3",
}


def jfk_result(duration: float, language: str, word_timestamps: bool) -> Dict[str, Any]:
    """A Whisper result for ``duration`` seconds of audio: two segments splitting the
    audio at 62 %, each word given an equal share of its segment."""
    cut = round(duration * 0.62, 2)
    bounds = [(0.0, cut), (cut, round(duration, 2))]
    segments = []
    for index, ((text, tokens), (start, end)) in enumerate(zip(JFK_SEGMENTS, bounds)):
        segment = {
            "id": index,
            "seek": 0,
            "start": start,
            "end": end,
            "text": text,
            "tokens": list(tokens),
            "temperature": 0.0,
            "avg_logprob": -0.19 - index * 0.05,
            "compression_ratio": 1.27,
            "no_speech_prob": 0.011,
        }
        if word_timestamps:
            pieces = text.split(" ")[1:]
            step = (end - start) / len(pieces)
            segment["words"] = [
                {"word": " " + piece, "start": round(start + i * step, 2),
                 "end": round(start + (i + 1) * step, 2), "probability": 0.9}
                for i, piece in enumerate(pieces)
            ]
        segments.append(segment)
    return {"text": "".join(text for text, _ in JFK_SEGMENTS), "segments": segments,
            "language": language}


def pcm_facts(path: str) -> Dict[str, Any]:
    """Sample count, peak |amplitude| and zero-crossing count of an s16le PCM file."""
    samples = array.array("h")
    with open(path, "rb") as handle:
        samples.frombytes(handle.read())
    if sys.byteorder == "big":
        samples.byteswap()
    crossings = sum(1 for a, b in zip(samples, samples[1:]) if (a < 0) != (b < 0))
    return {
        "bytes": os.path.getsize(path),
        "samples_in_file": len(samples),
        "peak": max((abs(s) for s in samples), default=0),
        "zero_crossings": crossings,
    }


class FakeWhisperBackend:
    """``WhisperBackend`` without a model. Options:

    ``load_gate``: load blocks until this event is set (to observe the loading state);
    ``load_error``: load raises it; ``transcribe_error``: transcribe raises it;
    ``transcribe_gate``: each transcription blocks until the event is set;
    ``transcribe_delay``: seconds each transcription sleeps (to expose overlap);
    ``spoken_language``: the language "detected" when none is given (``de`` stands for a
    German recording: a translation then reports ``de`` with English text, as Whisper does).
    """

    def __init__(self, settings: Any = None, *, load_gate: Optional[threading.Event] = None,
                 load_error: Optional[BaseException] = None,
                 transcribe_error: Optional[BaseException] = None,
                 transcribe_gate: Optional[threading.Event] = None,
                 transcribe_delay: float = 0.0, spoken_language: str = "en") -> None:
        self.settings = settings
        self.spoken_language = spoken_language
        self.load_gate = load_gate
        self.load_error = load_error
        self.transcribe_error = transcribe_error
        self.transcribe_gate = transcribe_gate
        self.transcribe_delay = transcribe_delay
        self.load_calls = 0
        self.calls: List[Dict[str, Any]] = []
        self.active = 0
        self.max_active = 0
        self.started = threading.Event()
        self._count_lock = threading.Lock()

    def load(self) -> Dict[str, Any]:
        self.load_calls += 1
        if self.load_gate is not None:
            self.load_gate.wait(timeout=30)
        if self.load_error is not None:
            raise self.load_error
        model = getattr(self.settings, "model", "medium")
        return dict(HEALTH_INFO, model=model)

    def transcribe(self, audio: Any, *, language: Optional[str], prompt: Optional[str],
                   temperature: float, word_timestamps: bool,
                   task: str = "transcribe") -> Dict[str, Any]:
        with self._count_lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self.started.set()
        try:
            call = {
                "language": language,
                "prompt": prompt,
                "temperature": temperature,
                "word_timestamps": word_timestamps,
                "task": task,
                "sample_rate": audio.sample_rate,
                "channels": audio.channels,
                "num_samples": audio.num_samples,
                "duration": audio.duration,
                "path": audio.path,
            }
            call.update(pcm_facts(audio.path))
            self.calls.append(call)
            if self.transcribe_gate is not None:
                self.transcribe_gate.wait(timeout=30)
            if self.transcribe_delay:
                time.sleep(self.transcribe_delay)
            if self.transcribe_error is not None:
                raise self.transcribe_error
            return jfk_result(audio.duration, language or self.spoken_language, word_timestamps)
        finally:
            with self._count_lock:
                self.active -= 1


class NumpyLikeScalar:
    """Stands in for ``numpy.float32``: not JSON-serialisable, has ``.item()``."""

    def __init__(self, value: float) -> None:
        self.value = value

    def item(self) -> float:
        return self.value


class FakeWhisperModel:
    """Stands in for ``whisper.model.Whisper``: records ``transcribe`` keyword args."""

    def __init__(self, is_multilingual: bool = True, num_languages: int = 99) -> None:
        self.is_multilingual = is_multilingual
        self.num_languages = num_languages
        self.transcribe_calls: List[Dict[str, Any]] = []

    def transcribe(self, audio: Any, **kwargs: Any) -> Dict[str, Any]:
        self.transcribe_calls.append(dict(kwargs, audio=audio))
        result = jfk_result(11.0, kwargs.get("language") or "en", kwargs["word_timestamps"])
        result["segments"][0]["avg_logprob"] = NumpyLikeScalar(-0.25)
        return result


def fake_torch_and_whisper(gpu: bool = True, hip: Optional[str] = "6.2.41134-65d174c3e",
                           model: Optional[FakeWhisperModel] = None):
    """Module objects to put in ``sys.modules`` as ``torch`` and ``whisper``; the
    ``whisper`` one records ``load_model`` calls in ``load_calls``."""
    torch = types.ModuleType("torch")
    torch.__version__ = "2.3.0+rocm6.2.3"
    torch.cuda = types.SimpleNamespace(
        is_available=lambda: gpu,
        get_device_name=lambda index=0: "AMD Radeon PRO W7900",
    )
    torch.version = types.SimpleNamespace(hip=hip, cuda=None)

    whisper = types.ModuleType("whisper")
    whisper.load_calls = []
    the_model = model or FakeWhisperModel()

    def load_model(name: str, device: Any = None, download_root: Any = None, in_memory: bool = False):
        whisper.load_calls.append({"name": name, "device": device, "download_root": download_root})
        return the_model

    whisper.load_model = load_model
    whisper.model_instance = the_model
    return torch, whisper


def wait_until_ready(client: Any, timeout_s: float = 10.0) -> Dict[str, Any]:
    """Poll ``GET /health`` until it answers 200 (or ``timeout_s`` seconds pass); return
    the last health body."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = client.get("/health")
        if response.status_code == 200 or time.monotonic() > deadline:
            return response.json()
        time.sleep(0.01)
