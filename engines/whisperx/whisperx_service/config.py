"""Service settings, read once from the environment at start-up."""

import os
from dataclasses import dataclass
from typing import Mapping, Optional

# The Whisper sizes this service offers per request through the `model` query parameter.
ALLOWED_MODELS = ("tiny", "base", "small", "medium", "large-v2", "large-v3")

DEFAULT_DIARIZATION_MODEL = "pyannote/speaker-diarization-3.1"


class ConfigError(ValueError):
    """One or more environment variables are invalid; the message lists every one."""


@dataclass(frozen=True)
class Settings:
    """Validated configuration.

    Attributes:
        whisper_model: model used when a request names none (one of ALLOWED_MODELS).
        device: "cuda", "cpu" or "auto" (cuda when torch sees a GPU).
        compute_type: CTranslate2 compute type; None means float16 on cuda, int8 on cpu.
        batch_size: VAD pieces (each at most 30 s) decoded together per batch.
        hf_token: Hugging Face token for the pyannote models; None disables diarization.
        diarization_model: pyannote pipeline name on the Hugging Face hub.
        max_loaded_models: Whisper models kept loaded at once (LRU beyond that).
        max_align_models: wav2vec2 alignment models (one per language) kept loaded.
        model_idle_timeout_s: seconds a model may stay unused before it is unloaded;
            0 keeps models until LRU eviction.
        model_cache_dir: where model weights are downloaded; None uses library defaults.
        tmp_dir: where uploads are spooled; None uses the system temporary directory.
    """

    whisper_model: str = "base"
    device: str = "auto"
    compute_type: Optional[str] = None
    batch_size: int = 16
    hf_token: Optional[str] = None
    diarization_model: str = DEFAULT_DIARIZATION_MODEL
    max_loaded_models: int = 2
    max_align_models: int = 2
    model_idle_timeout_s: float = 300.0
    model_cache_dir: Optional[str] = None
    tmp_dir: Optional[str] = None

    @property
    def diarization_available(self) -> bool:
        return bool(self.hf_token)

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Settings":
        """Build settings from environment variables.

        Reads WHISPER_MODEL, DEVICE, COMPUTE_TYPE, BATCH_SIZE, HF_TOKEN,
        DIARIZATION_MODEL, MAX_LOADED_MODELS, MAX_ALIGN_MODELS, MODEL_IDLE_TIMEOUT
        (seconds), MODEL_CACHE_DIR and UPLOAD_TMP_DIR; empty values count as unset.

        Raises:
            ConfigError: listing every invalid variable at once, so one restart fixes all.
        """
        env = os.environ if env is None else env
        problems = []

        def text(name: str) -> Optional[str]:
            value = env.get(name, "").strip()
            return value or None

        def integer(name: str, default: int, minimum: int) -> int:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError:
                problems.append(f"{name} must be an integer, got {raw!r}")
                return default
            if value < minimum:
                problems.append(f"{name} must be >= {minimum}, got {value}")
            return value

        def number(name: str, default: float) -> float:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError:
                problems.append(f"{name} must be a number of seconds, got {raw!r}")
                return default
            if value < 0:
                problems.append(f"{name} must be >= 0 seconds, got {raw}")
            return value

        whisper_model = text("WHISPER_MODEL") or cls.whisper_model
        if whisper_model not in ALLOWED_MODELS:
            problems.append(
                f"WHISPER_MODEL must be one of {', '.join(ALLOWED_MODELS)}, got {whisper_model!r}"
            )
        device = (text("DEVICE") or cls.device).lower()
        if device not in ("auto", "cuda", "cpu"):
            problems.append(f"DEVICE must be auto, cuda or cpu, got {device!r}")

        settings = cls(
            whisper_model=whisper_model,
            device=device,
            compute_type=text("COMPUTE_TYPE"),
            batch_size=integer("BATCH_SIZE", cls.batch_size, 1),
            hf_token=text("HF_TOKEN"),
            diarization_model=text("DIARIZATION_MODEL") or cls.diarization_model,
            max_loaded_models=integer("MAX_LOADED_MODELS", cls.max_loaded_models, 1),
            max_align_models=integer("MAX_ALIGN_MODELS", cls.max_align_models, 1),
            model_idle_timeout_s=number("MODEL_IDLE_TIMEOUT", cls.model_idle_timeout_s),
            model_cache_dir=text("MODEL_CACHE_DIR"),
            tmp_dir=text("UPLOAD_TMP_DIR"),
        )
        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))
        return settings
