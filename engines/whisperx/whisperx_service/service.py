"""The transcription pipeline: model caches, the GPU lock and the order of the steps.

VAD + batched Whisper -> wav2vec2 word alignment -> pyannote diarization of the whole
file -> speaker per word by largest overlap. Each step's models come from a bounded
``ModelCache``; one lock serialises GPU work in this process.
"""

import logging
import threading
import time
from typing import Any, Dict, List, Optional

from .audio import PcmAudio
from .backend import ModelBackend
from .cache import Clock, ModelCache
from .config import ALLOWED_MODELS, Settings
from .errors import AlignmentUnavailable
from .languages import LANGUAGES
from .options import AsrOptions
from .result import build_result

log = logging.getLogger("whisperx_service.service")

# Language identification looks at one Whisper window.
LANGUAGE_DETECTION_SECONDS = 30.0


class TranscriptionService:
    """Runs requests against a ModelBackend with cached, bounded, idle-expiring models.

    Thread-safe: blocking methods may be called from worker threads; GPU work runs one
    request at a time because concurrent CUDA jobs on one card mostly contend for
    memory and seldom finish sooner.
    """

    def __init__(self, backend: ModelBackend, settings: Settings, clock: Clock = time.monotonic):
        self._backend = backend
        self._settings = settings
        self._gpu = threading.Lock()
        timeout = settings.model_idle_timeout_s
        self.whisper_models: ModelCache[str, Any] = ModelCache(
            backend.load_whisper, settings.max_loaded_models, timeout, clock, self._evicted
        )
        self.align_models: ModelCache[str, Any] = ModelCache(
            backend.load_aligner, settings.max_align_models, timeout, clock, self._evicted
        )
        self.diarizers: ModelCache[str, Any] = ModelCache(
            backend.load_diarizer, 1, timeout, clock, self._evicted
        )

    def transcribe(self, audio: PcmAudio, options: AsrOptions) -> Dict[str, Any]:
        """Transcribe (or translate) 16 kHz mono audio.

        Returns the JSON result of ``result.build_result`` (float seconds).

        Raises:
            EngineUnavailable (503): a model could not be loaded or the GPU ran out of memory.
        """
        with self._gpu:
            with self.whisper_models.lease(options.model) as whisper_model:
                raw = self._backend.transcribe(
                    whisper_model,
                    audio,
                    language=options.language,
                    task=options.task,
                    initial_prompt=options.initial_prompt,
                    batch_size=self._settings.batch_size,
                )
            language = raw["language"]
            segments = raw["segments"]
            if segments:
                # A translation is English text whatever was spoken, so it is aligned
                # with the English model; the source language stays in the result.
                segments = self._align(segments, audio, "en" if options.task == "translate" else language)
                if options.diarize:
                    with self.diarizers.lease(self._settings.diarization_model) as diarizer:
                        segments = self._backend.diarize(
                            diarizer, audio, segments, options.min_speakers, options.max_speakers
                        )
        return build_result(language, segments)

    def detect_language(self, audio: PcmAudio, model: str) -> Dict[str, Any]:
        """Identify the language from the first 30 s.

        Returns ``{"detected_language": name, "language_code": code, "confidence": p}``
        with p in [0, 1], rounded to 3 decimals.
        """
        head = audio.head(LANGUAGE_DETECTION_SECONDS)
        with self._gpu:
            with self.whisper_models.lease(model) as whisper_model:
                code, probability = self._backend.detect_language(whisper_model, head)
        return {
            "detected_language": LANGUAGES.get(code, code),
            "language_code": code,
            "confidence": round(float(probability), 3),
        }

    def health(self) -> Dict[str, Any]:
        """Process state for GET /health; never waits for the GPU lock."""
        return {
            "status": "ok",
            "device": self._backend.device,
            "compute_type": self._backend.compute_type,
            "default_model": self._settings.whisper_model,
            "allowed_models": list(ALLOWED_MODELS),
            "loaded_models": self.whisper_models.keys(),
            "loaded_align_models": self.align_models.keys(),
            "diarization_available": self._settings.diarization_available,
            "diarization_loaded": bool(self.diarizers.keys()),
        }

    def evict_idle(self) -> Optional[List[str]]:
        """Unload models idle for MODEL_IDLE_TIMEOUT seconds.

        Skips the round (returns None) while a request holds the GPU: models it leases
        are busy anyway, and freeing accelerator memory then would only contend with it.
        Returns the unloaded model names otherwise.
        """
        if not self._gpu.acquire(blocking=False):
            return None
        try:
            evicted = [f"whisper:{key}" for key in self.whisper_models.evict_idle()]
            evicted += [f"align:{key}" for key in self.align_models.evict_idle()]
            evicted += [f"diarization:{key}" for key in self.diarizers.evict_idle()]
        finally:
            self._gpu.release()
        if evicted:
            log.info("unloaded idle models: %s", ", ".join(evicted))
        return evicted

    def close(self) -> None:
        """Unload every model (process shutdown)."""
        with self._gpu:
            self.whisper_models.clear()
            self.align_models.clear()
            self.diarizers.clear()

    def _align(self, segments: List[Dict[str, Any]], audio: PcmAudio, language: str) -> List[Dict[str, Any]]:
        try:
            with self.align_models.lease(language) as aligner:
                return self._backend.align(aligner, segments, audio)
        except AlignmentUnavailable as reason:
            # Segment text and times are still right; only word times are missing.
            log.warning("no word alignment: %s", reason)
            return [dict(segment, words=[]) for segment in segments]

    def _evicted(self, key: str) -> None:
        self._backend.release_memory()
