"""Service settings, read from the environment once per process and validated together.

A bad variable stops the process at startup with one message naming every bad variable,
instead of failing on the first request.
"""

import math
import os
from dataclasses import dataclass
from typing import FrozenSet, List, Mapping, Optional

DEFAULT_MAX_UPLOAD_BYTES = 1024 ** 3  # 1 GiB
# The name OpenAI's own API uses for Whisper; clients written for OpenAI send it.
OPENAI_MODEL_ALIAS = "whisper-1"


class SettingsError(ValueError):
    """Raised by ``Settings.from_env`` when one or more variables are invalid; the message
    lists all of them."""


@dataclass(frozen=True)
class Settings:
    """Validated configuration of one worker process.

    Attributes:
        model: Whisper model name or checkpoint path given to ``whisper.load_model``
            (``tiny``, ``base``, ``small``, ``medium``, ``large-v3``, ``turbo``, ``*.en``...).
        cache_dir: directory where Whisper downloads checkpoints; ``None`` keeps Whisper's
            default (``$XDG_CACHE_HOME/whisper``, else ``~/.cache/whisper``).
        device: ``auto`` (GPU when ``torch.cuda.is_available()``, which is true on ROCm
            builds too), ``cuda`` (GPU required; load fails without one) or ``cpu``.
        fp16: ``None`` for automatic (fp16 on GPU, fp32 on CPU), else forced.
        max_upload_bytes: largest accepted audio upload, in bytes.
        api_key: when set, the transcription endpoint requires ``Authorization: Bearer``.
        ffmpeg_bin: ffmpeg executable used to decode uploads.
        decode_timeout_s: wall-clock limit for one ffmpeg decode, in seconds.
        tmp_dir: directory for upload and decoded-PCM temp files; ``None`` uses the
            system default (``TMPDIR``).
    """

    model: str = "medium"
    cache_dir: Optional[str] = None
    device: str = "auto"
    fp16: Optional[bool] = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    api_key: Optional[str] = None
    ffmpeg_bin: str = "ffmpeg"
    decode_timeout_s: float = 1800.0
    tmp_dir: Optional[str] = None

    @property
    def accepted_model_names(self) -> FrozenSet[str]:
        """Values of the request's ``model`` field that select the loaded model.

        ``whisper-1`` is accepted as an alias so OpenAI clients work unchanged; any other
        name is rejected rather than silently served by a different model.
        """
        return frozenset({OPENAI_MODEL_ALIAS, self.model, "whisper-" + self.model})

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Settings":
        """Build settings from environment variables (``os.environ`` by default).

        Variables: ``WHISPER_MODEL``, ``WHISPER_CACHE_DIR`` (falls back to
        ``XDG_CACHE_HOME``/whisper through Whisper itself), ``WHISPER_DEVICE``,
        ``WHISPER_FP16`` (``auto``/``true``/``false``), ``MAX_UPLOAD_BYTES``, ``API_KEY``,
        ``FFMPEG_BIN``, ``DECODE_TIMEOUT_SECONDS``, ``WHISPER_TMP_DIR``.

        Raises ``SettingsError`` listing every invalid variable.
        """
        env = os.environ if env is None else env
        problems: List[str] = []

        def text(name: str, default: Optional[str]) -> Optional[str]:
            value = env.get(name, "").strip()
            return value or default

        model = text("WHISPER_MODEL", "medium") or "medium"

        device = (text("WHISPER_DEVICE", "auto") or "auto").lower()
        if device not in ("auto", "cuda", "cpu"):
            problems.append("WHISPER_DEVICE must be auto, cuda or cpu (got %r)" % device)

        fp16_raw = (text("WHISPER_FP16", "auto") or "auto").lower()
        fp16: Optional[bool] = None
        if fp16_raw in ("1", "true", "yes", "on"):
            fp16 = True
        elif fp16_raw in ("0", "false", "no", "off"):
            fp16 = False
        elif fp16_raw != "auto":
            problems.append("WHISPER_FP16 must be auto, true or false (got %r)" % fp16_raw)

        max_upload_bytes = DEFAULT_MAX_UPLOAD_BYTES
        raw = text("MAX_UPLOAD_BYTES", None)
        if raw is not None:
            try:
                max_upload_bytes = int(raw)
                if max_upload_bytes <= 0:
                    raise ValueError
            except ValueError:
                problems.append("MAX_UPLOAD_BYTES must be a positive integer of bytes (got %r)" % raw)

        decode_timeout_s = 1800.0
        raw = text("DECODE_TIMEOUT_SECONDS", None)
        if raw is not None:
            try:
                decode_timeout_s = float(raw)
                if not math.isfinite(decode_timeout_s) or decode_timeout_s <= 0:
                    raise ValueError
            except ValueError:
                problems.append("DECODE_TIMEOUT_SECONDS must be a positive number of seconds (got %r)" % raw)

        if problems:
            raise SettingsError("invalid environment: " + "; ".join(problems))

        return cls(
            model=model,
            cache_dir=text("WHISPER_CACHE_DIR", None),
            device=device,
            fp16=fp16,
            max_upload_bytes=max_upload_bytes,
            # An empty or blank API_KEY disables auth rather than requiring a blank token.
            api_key=text("API_KEY", None),
            ffmpeg_bin=text("FFMPEG_BIN", "ffmpeg") or "ffmpeg",
            decode_timeout_s=decode_timeout_s,
            tmp_dir=text("WHISPER_TMP_DIR", None),
        )
