"""The model boundary: everything that touches torch and openai-whisper lives here.

``WhisperBackend`` is the contract the HTTP layer depends on. ``OpenAIWhisperBackend`` is
the real implementation; it imports ``torch``, ``whisper`` and ``numpy`` inside its
methods, so the rest of the service (and its tests, which substitute a fake backend)
imports on a machine without them.
"""

import logging
import platform
import time
from typing import Any, Dict, Optional, Protocol, Tuple

from .audio import DecodedAudio
from .config import Settings
from .languages import LANGUAGES

log = logging.getLogger("whisper_rocm_service.backend")

# Whisper's CLI default: on a failed decode (too repetitive or too unlikely) the
# segment is decoded again at the next temperature, up to 1.0.
TEMPERATURE_INCREMENT_ON_FALLBACK = 0.2


class BackendInputError(ValueError):
    """The request cannot be served by the loaded model (e.g. a language the model's
    vocabulary lacks). Maps to HTTP 400; ``param`` names the request field at fault."""

    def __init__(self, message: str, param: Optional[str] = None) -> None:
        super().__init__(message)
        self.param = param


class WhisperBackend(Protocol):
    """What the HTTP layer needs from a speech model.

    ``load`` runs once per process, before any ``transcribe``; ``transcribe`` is never
    called concurrently on one instance (the caller serialises GPU work).
    """

    def load(self) -> Dict[str, Any]:
        """Load the model; return its runtime description for ``GET /health``:
        ``{model, device, device_name, fp16, hip_version, torch_version}`` where
        ``device`` is ``"cuda"`` (also on ROCm) or ``"cpu"`` and ``hip_version`` is
        ``torch.version.hip`` (``None`` on non-ROCm builds). Raises on any failure."""
        ...

    def transcribe(self, audio: DecodedAudio, *, language: Optional[str],
                   prompt: Optional[str], temperature: float,
                   word_timestamps: bool, task: str = "transcribe") -> Dict[str, Any]:
        """Transcribe 16 kHz mono PCM (``audio``) and return openai-whisper's result
        shape with plain JSON types and times in seconds:
        ``{text, language, segments: [{id, seek, start, end, text, tokens, temperature,
        avg_logprob, compression_ratio, no_speech_prob, words?: [{word, start, end,
        probability}]}]}``; ``words`` only when ``word_timestamps`` is true.

        ``language`` is a Whisper code or ``None`` to detect it; ``prompt`` is the
        initial prompt (previous-context text); ``temperature`` is the starting sampling
        temperature in 0..1; ``task`` is ``"transcribe"`` (text in the spoken language) or
        ``"translate"`` (English text; ``language`` stays the detected spoken one). Raises
        ``BackendInputError`` for requests the model cannot serve; any other exception is a
        server fault."""
        ...


def temperature_schedule(temperature: float) -> Tuple[float, ...]:
    """Temperatures Whisper tries in order for each 30 s window, starting at
    ``temperature`` and stepping by 0.2 up to 1.0 (Whisper's CLI behaviour).

    OpenAI documents ``temperature=0`` as "start greedy, raise the temperature when the
    output fails the log-probability and compression checks": the same fallback.
    ``0.0`` → ``(0.0, 0.2, 0.4, 0.6, 0.8, 1.0)``; ``1.0`` → ``(1.0,)``.
    """
    steps = []
    value = float(temperature)
    while value <= 1.0 + 1e-6:
        steps.append(round(value, 4))
        value += TEMPERATURE_INCREMENT_ON_FALLBACK
    return tuple(steps) or (1.0,)


def to_builtin(value: Any) -> Any:
    """Deep-convert numpy scalars and tuples in a Whisper result to JSON-ready Python
    types (``numpy.float32`` → ``float``), leaving other values unchanged."""
    if isinstance(value, dict):
        return {key: to_builtin(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_builtin(item) for item in value]
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (str, bytes)):
        try:
            return value.item()
        except (TypeError, ValueError):
            return value
    return value


class OpenAIWhisperBackend:
    """Official openai-whisper on PyTorch; on the ROCm image the "cuda" device is the AMD
    GPU through HIP.

    One instance holds one model on one device; ``load`` is meant to run once per worker
    process. Not thread-safe: the caller serialises ``transcribe`` calls.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._model: Any = None
        self._fp16 = False

    def load(self) -> Dict[str, Any]:
        """Load ``settings.model`` (downloading it into ``settings.cache_dir`` on first
        use) onto the GPU when present. See ``WhisperBackend.load`` for the returned
        dict. Raises ``RuntimeError`` when ``WHISPER_DEVICE=cuda`` and no GPU is visible,
        and whatever whisper raises for an unknown model name or failed download."""
        import torch  # heavy, GPU-specific: only the real backend pays for it
        import whisper

        settings = self._settings
        gpu = torch.cuda.is_available()
        if settings.device == "cuda" and not gpu:
            raise RuntimeError(
                "WHISPER_DEVICE=cuda but torch sees no GPU (check --device=/dev/kfd "
                "--device=/dev/dri and the video/render groups)"
            )
        device = "cuda" if (gpu and settings.device != "cpu") else "cpu"
        # fp16 halves memory and is the speed path on GPUs; on CPU Whisper would warn
        # and fall back to fp32 anyway.
        fp16 = settings.fp16 if settings.fp16 is not None else device == "cuda"
        if device == "cpu":
            fp16 = False

        started = time.monotonic()
        self._model = whisper.load_model(
            settings.model, device=device, download_root=settings.cache_dir
        )
        self._fp16 = fp16
        device_name = torch.cuda.get_device_name(0) if device == "cuda" else (
            platform.processor() or platform.machine() or "cpu"
        )
        hip_version = getattr(torch.version, "hip", None)
        if device == "cuda" and not hip_version:
            log.warning("GPU in use but torch.version.hip is empty: not a ROCm build of torch")
        log.info("loaded whisper model %s on %s (%s, fp16=%s, hip=%s) in %.1f s",
                 settings.model, device, device_name, fp16, hip_version,
                 time.monotonic() - started)
        return {
            "model": settings.model,
            "device": device,
            "device_name": device_name,
            "fp16": fp16,
            "hip_version": hip_version,
            "torch_version": str(torch.__version__),
        }

    def _read_samples(self, audio: DecodedAudio) -> Any:
        """The PCM file as a float32 numpy array in [-1, 1), as ``whisper.load_audio``
        would produce it (same scaling), without running ffmpeg a second time."""
        import numpy

        pcm = numpy.fromfile(audio.path, dtype="<i2")
        return pcm.astype(numpy.float32) / 32768.0

    def _check_language(self, language: Optional[str]) -> None:
        """Reject a language the loaded checkpoint cannot be prompted with: English-only
        ``*.en`` models take only ``en``, and only large-v3's vocabulary has ``yue``."""
        if language is None:
            return
        if not getattr(self._model, "is_multilingual", True) and language != "en":
            raise BackendInputError(
                "model %s is English-only; language %r is not supported"
                % (self._settings.model, language),
                param="language",
            )
        num_languages = int(getattr(self._model, "num_languages", 99))
        if list(LANGUAGES).index(language) >= num_languages:
            raise BackendInputError(
                "language %r is not in the vocabulary of model %s"
                % (language, self._settings.model),
                param="language",
            )

    def transcribe(self, audio: DecodedAudio, *, language: Optional[str],
                   prompt: Optional[str], temperature: float,
                   word_timestamps: bool, task: str = "transcribe") -> Dict[str, Any]:
        """Run ``whisper.transcribe`` on ``audio``; see ``WhisperBackend.transcribe``.

        Raises ``RuntimeError`` if called before ``load``, ``BackendInputError`` for an
        unsupported language or a translation on an English-only (``*.en``) model, which
        has no translate task."""
        if self._model is None:
            raise RuntimeError("transcribe called before the model was loaded")
        if task not in ("transcribe", "translate"):
            raise BackendInputError("task must be transcribe or translate, got %r" % task)
        if task == "translate" and not getattr(self._model, "is_multilingual", True):
            raise BackendInputError(
                "model %s is English-only and cannot translate; load a multilingual model "
                "(e.g. medium, large-v2) for translations" % self._settings.model,
                param="model",
            )
        self._check_language(language)
        samples = self._read_samples(audio)
        result = self._model.transcribe(
            samples,
            task=task,
            language=language,
            initial_prompt=prompt or None,
            temperature=temperature_schedule(temperature),
            word_timestamps=word_timestamps,
            fp16=self._fp16,
            verbose=None,  # None silences both the text log and the progress bar
        )
        return to_builtin(result)
