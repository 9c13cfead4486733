"""Query-parameter parsing for /asr and /detect-language.

Parameters arrive as raw strings and are validated here rather than by FastAPI, so
every mistake gets the same 400 ``{"detail": "..."}`` answer on pydantic 1 and 2
alike. Empty values count as absent (Swagger UI sends ``language=`` for "unset").
"""

from dataclasses import dataclass
from typing import Mapping, Optional

from .config import ALLOWED_MODELS, Settings
from .errors import BadRequest
from .formats import OUTPUT_FORMATS
from .languages import LANGUAGES

TASKS = ("transcribe", "translate")
MIN_SPEAKERS_LIMIT = 1
MAX_SPEAKERS_LIMIT = 20

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}

Query = Mapping[str, Optional[str]]


@dataclass(frozen=True)
class AsrOptions:
    """A validated /asr request.

    Attributes:
        model: Whisper size (one of ALLOWED_MODELS).
        task: "transcribe" or "translate" (to English).
        language: Whisper code, or None to detect it.
        initial_prompt: text that primes the decoder, or None.
        encode: True: decode the upload with ffmpeg; False: upload is raw 16 kHz mono s16le.
        word_timestamps: accepted for compatibility; WhisperX always aligns words.
        diarize: run speaker diarization.
        min_speakers, max_speakers: bounds for diarization, within 1..20, or None.
        output: one of OUTPUT_FORMATS.
    """

    model: str
    task: str = "transcribe"
    language: Optional[str] = None
    initial_prompt: Optional[str] = None
    encode: bool = True
    word_timestamps: bool = False
    diarize: bool = False
    min_speakers: Optional[int] = None
    max_speakers: Optional[int] = None
    output: str = "txt"


def _value(query: Query, name: str) -> Optional[str]:
    raw = query.get(name)
    if raw is None:
        return None
    raw = raw.strip()
    return raw or None


def _boolean(query: Query, name: str, default: bool) -> bool:
    raw = _value(query, name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise BadRequest(f"{name} must be a boolean (true or false), got {raw!r}")


def _choice(query: Query, name: str, allowed, default: Optional[str]) -> Optional[str]:
    raw = _value(query, name)
    if raw is None:
        return default
    if raw not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def _speakers(query: Query, name: str) -> Optional[int]:
    raw = _value(query, name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if not MIN_SPEAKERS_LIMIT <= value <= MAX_SPEAKERS_LIMIT:
        raise BadRequest(
            f"{name} must be between {MIN_SPEAKERS_LIMIT} and {MAX_SPEAKERS_LIMIT}, got {value}"
        )
    return value


def parse_model(query: Query, settings: Settings) -> str:
    """The ``model`` parameter, defaulting to WHISPER_MODEL.

    Raises:
        BadRequest: not one of ALLOWED_MODELS (the message lists them).
    """
    raw = _value(query, "model")
    if raw is None:
        return settings.whisper_model
    if raw not in ALLOWED_MODELS:
        raise BadRequest(f"unknown model {raw!r}; allowed models: {', '.join(ALLOWED_MODELS)}")
    return raw


def parse_encode(query: Query) -> bool:
    """The ``encode`` parameter (default True). Raises BadRequest when not a boolean."""
    return _boolean(query, "encode", True)


def parse_asr_query(query: Query, settings: Settings) -> AsrOptions:
    """Validate /asr query parameters.

    Raises:
        BadRequest: any invalid parameter; the message names it and what is allowed.
            Also when diarization is requested on a server without HF_TOKEN: pyannote
            cannot load without it, and a retry will not change that (hence 400, not
            503, so clients do not retry).
    """
    language = _value(query, "language")
    if language is not None:
        language = language.lower()
        if language not in LANGUAGES:
            raise BadRequest(
                f"unknown language {language!r}; use a Whisper language code such as en, de or fr, "
                "or leave it out to detect the language"
            )
    diarize = _boolean(query, "diarize", False)
    min_speakers = _speakers(query, "min_speakers")
    max_speakers = _speakers(query, "max_speakers")
    if min_speakers is not None and max_speakers is not None and min_speakers > max_speakers:
        raise BadRequest(
            f"min_speakers ({min_speakers}) must not be greater than max_speakers ({max_speakers})"
        )
    if diarize and not settings.diarization_available:
        raise BadRequest(
            "diarization is unavailable: the server has no HF_TOKEN configured "
            "(set HF_TOKEN and accept the pyannote model licences), or call without diarize=true"
        )
    return AsrOptions(
        model=parse_model(query, settings),
        task=_choice(query, "task", TASKS, "transcribe"),
        language=language,
        initial_prompt=_value(query, "initial_prompt"),
        encode=parse_encode(query),
        word_timestamps=_boolean(query, "word_timestamps", False),
        diarize=diarize,
        min_speakers=min_speakers if diarize else None,
        max_speakers=max_speakers if diarize else None,
        output=_choice(query, "output", OUTPUT_FORMATS, "txt"),
    )
