"""The model boundary: loading models and running them on 16 kHz mono audio.

``ModelBackend`` is what the service needs from a speech stack; ``WhisperXBackend``
implements it with WhisperX 3.3.1 (faster-whisper/CTranslate2 for ASR, wav2vec2 for
alignment, pyannote for diarization). Loaded models are cached by the service
(``whisperx_service.service``), not here: a backend only loads and runs them.

``whisperx``, ``torch`` and numpy are imported inside ``WhisperXBackend`` only, so
everything else in this package imports and runs without them.
"""

import dataclasses
import gc
import inspect
import logging
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Protocol, Tuple

from .audio import PcmAudio
from .config import Settings
from .errors import AlignmentUnavailable, EngineUnavailable

log = logging.getLogger("whisperx_service.backend")

Segment = Dict[str, Any]


class ModelBackend(Protocol):
    """What the transcription service needs from a speech stack.

    Shapes (all times float seconds from the start of the audio):
      * transcription segment: ``{"start", "end", "text"}``
      * aligned segment: ``{"start", "end", "text", "words": [word, ...]}`` where a word
        is ``{"word", "start"?, "end"?, "score"?}``; the aligner leaves out start, end
        and score for words it cannot place (digits, symbols) and they stay absent.
      * diarized segment: an aligned segment plus ``"speaker"`` (``"SPEAKER_00"``...)
        on the segment and on each word that has times.
    """

    device: str
    compute_type: str

    def load_whisper(self, name: str) -> Any:
        """Load a Whisper model by size name. Raises EngineUnavailable when it cannot."""

    def load_aligner(self, language: str) -> Any:
        """Load the alignment model for a Whisper language code.

        Raises AlignmentUnavailable when no alignment model exists for the language,
        EngineUnavailable when one exists but cannot be loaded.
        """

    def load_diarizer(self, name: str) -> Any:
        """Load a speaker diarization pipeline. Raises EngineUnavailable when it cannot."""

    def release_memory(self) -> None:
        """Return memory of models the caller has just dropped (gc, accelerator cache)."""

    def transcribe(
        self,
        whisper_model: Any,
        audio: PcmAudio,
        language: Optional[str],
        task: str,
        initial_prompt: Optional[str],
        batch_size: int,
    ) -> Dict[str, Any]:
        """VAD cut-and-merge plus batched Whisper decoding of the whole audio.

        Args:
            language: Whisper code, or None to detect it from the first 30 s.
            task: "transcribe" or "translate" (to English).
            batch_size: VAD pieces decoded per batch.

        Returns ``{"segments": [transcription segment], "language": code}``.
        """

    def align(self, aligner: Any, segments: List[Segment], audio: PcmAudio) -> List[Segment]:
        """Word times by forced alignment; returns aligned segments."""

    def diarize(
        self,
        diarizer: Any,
        audio: PcmAudio,
        segments: List[Segment],
        min_speakers: Optional[int],
        max_speakers: Optional[int],
    ) -> List[Segment]:
        """Diarize the whole audio and give each segment and timed word the speaker
        that overlaps it most; returns diarized segments."""

    def detect_language(self, whisper_model: Any, audio: PcmAudio) -> Tuple[str, float]:
        """Language of the first 30 s: (Whisper code, probability in [0, 1])."""


def resolve_device(requested: str, cuda_available: bool) -> str:
    """``auto`` becomes cuda when a GPU is visible, else cpu.

    Raises:
        EngineUnavailable: cuda requested but no GPU is visible.
    """
    if requested == "auto":
        return "cuda" if cuda_available else "cpu"
    if requested == "cuda" and not cuda_available:
        raise EngineUnavailable("DEVICE=cuda but torch sees no CUDA GPU")
    return requested


def default_compute_type(device: str) -> str:
    # int8 keeps CPU inference usable; float16 is the fast path on NVIDIA GPUs.
    return "float16" if device == "cuda" else "int8"


def diarization_auth_kwargs(pipeline_class: Any, token: Optional[str]) -> Dict[str, Any]:
    """The keyword that passes the Hugging Face token to WhisperX's DiarizationPipeline.

    WhisperX up to the pinned 3.3.x takes ``use_auth_token=``; releases built on
    pyannote.audio 4 renamed it ``token=``. Reading the signature keeps the call right
    if the pin moves, instead of failing with a TypeError at the first diarization.
    """
    try:
        parameters = inspect.signature(pipeline_class).parameters
    except (TypeError, ValueError):
        parameters = {}
    if "token" in parameters and "use_auth_token" not in parameters:
        return {"token": token}
    return {"use_auth_token": token}


def with_initial_prompt(options: Any, initial_prompt: Optional[str]) -> Any:
    """A copy of faster-whisper's TranscriptionOptions with another initial prompt.

    faster-whisper 1.1 (the one WhisperX 3.3.1 pins) made the options a dataclass;
    earlier releases used a NamedTuple. Both are immutable, hence a copy.
    """
    if dataclasses.is_dataclass(options):
        return dataclasses.replace(options, initial_prompt=initial_prompt)
    return options._replace(initial_prompt=initial_prompt)


def is_out_of_memory(error: BaseException) -> bool:
    """True for torch's CUDA OOM and CTranslate2's "CUDA failed ... out of memory"."""
    return type(error).__name__ == "OutOfMemoryError" or "out of memory" in str(error).lower()


class WhisperXBackend:
    """ModelBackend on WhisperX 3.3.1.

    Raises (constructor):
        RuntimeError: torch or whisperx is not installed.
        EngineUnavailable: DEVICE=cuda without a visible GPU.
    """

    def __init__(self, settings: Settings):
        try:
            import torch
            import whisperx  # noqa: F401 - fail at start-up, not at the first request
        except ImportError as error:
            raise RuntimeError(
                "WhisperXBackend needs torch and whisperx: install requirements.txt "
                "(the Docker image does); " + str(error)
            ) from error
        self._torch = torch
        self._settings = settings
        self.device = resolve_device(settings.device, torch.cuda.is_available())
        self.compute_type = settings.compute_type or default_compute_type(self.device)

    def load_whisper(self, name: str) -> Any:
        import whisperx

        log.info("loading Whisper model %s on %s (%s)", name, self.device, self.compute_type)
        with self._loading(f"Whisper model {name!r}"):
            return whisperx.load_model(
                name,
                self.device,
                compute_type=self.compute_type,
                download_root=self._settings.model_cache_dir,
            )

    def load_aligner(self, language: str) -> Any:
        import whisperx
        from whisperx.alignment import DEFAULT_ALIGN_MODELS_HF, DEFAULT_ALIGN_MODELS_TORCH

        # Checked up front because load_align_model reports both "no model for this
        # language" and "download failed" as ValueError; only the first is permanent.
        if language not in DEFAULT_ALIGN_MODELS_TORCH and language not in DEFAULT_ALIGN_MODELS_HF:
            raise AlignmentUnavailable(f"WhisperX has no alignment model for language {language!r}")
        log.info("loading alignment model for %s", language)
        with self._loading(f"alignment model for {language!r}"):
            model, metadata = whisperx.load_align_model(
                language_code=language,
                device=self.device,
                model_dir=self._settings.model_cache_dir,
            )
        return (model, metadata)

    def load_diarizer(self, name: str) -> Any:
        from whisperx.diarize import DiarizationPipeline

        log.info("loading diarization pipeline %s", name)
        with self._loading(f"diarization pipeline {name!r}"):
            return DiarizationPipeline(
                model_name=name,
                device=self.device,
                **diarization_auth_kwargs(DiarizationPipeline, self._settings.hf_token),
            )

    def release_memory(self) -> None:
        gc.collect()
        if self.device == "cuda":
            self._torch.cuda.empty_cache()

    def transcribe(
        self,
        whisper_model: Any,
        audio: PcmAudio,
        language: Optional[str],
        task: str,
        initial_prompt: Optional[str],
        batch_size: int,
    ) -> Dict[str, Any]:
        # WhisperX fixes the initial prompt at load time (asr_options). Swapping the
        # pipeline's TranscriptionOptions for one call is safe because the service
        # runs one GPU job at a time, and it keeps one loaded model per size instead
        # of one per prompt.
        previous = whisper_model.options
        whisper_model.options = with_initial_prompt(previous, initial_prompt)
        try:
            with self._running("transcription"):
                result = whisper_model.transcribe(
                    audio.float32(), batch_size=batch_size, language=language, task=task
                )
        finally:
            whisper_model.options = previous
        segments = [
            {"start": float(s["start"]), "end": float(s["end"]), "text": s["text"]}
            for s in result["segments"]
        ]
        return {"segments": segments, "language": result["language"]}

    def align(self, aligner: Any, segments: List[Segment], audio: PcmAudio) -> List[Segment]:
        import whisperx

        model, metadata = aligner
        with self._running("alignment"):
            aligned = whisperx.align(
                segments, model, metadata, audio.float32(), self.device,
                return_char_alignments=False,
            )
        return aligned["segments"]

    def diarize(
        self,
        diarizer: Any,
        audio: PcmAudio,
        segments: List[Segment],
        min_speakers: Optional[int],
        max_speakers: Optional[int],
    ) -> List[Segment]:
        from whisperx.diarize import assign_word_speakers

        with self._running("diarization"):
            # Keywords, not positions: the pipeline's second parameter is num_speakers.
            turns = diarizer(audio.float32(), min_speakers=min_speakers, max_speakers=max_speakers)
        return assign_word_speakers(turns, {"segments": segments})["segments"]

    def detect_language(self, whisper_model: Any, audio: PcmAudio) -> Tuple[str, float]:
        from whisperx.audio import N_SAMPLES, log_mel_spectrogram

        # Same steps as FasterWhisperPipeline.detect_language, which returns only the
        # code; the probability is needed for the response's confidence.
        samples = audio.float32()[:N_SAMPLES]
        model = whisper_model.model
        n_mels = model.feat_kwargs.get("feature_size") or 80
        with self._running("language detection"):
            mel = log_mel_spectrogram(samples, n_mels=n_mels, padding=N_SAMPLES - samples.shape[0])
            encoder_output = model.encode(mel)
            token, probability = model.model.detect_language(encoder_output)[0][0]
        return token[2:-2], float(probability)

    @contextmanager
    def _loading(self, what: str) -> Iterator[None]:
        try:
            yield
        except Exception as error:
            self.release_memory()
            raise EngineUnavailable(f"{what} could not be loaded: {error}") from error

    @contextmanager
    def _running(self, what: str) -> Iterator[None]:
        try:
            yield
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            self.release_memory()
            raise EngineUnavailable(
                f"{what} ran out of GPU memory; retry later, lower BATCH_SIZE or use a smaller model"
            ) from error
