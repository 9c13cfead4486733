"""Decoding uploads to the one format every model here consumes: 16 kHz mono PCM."""

import os
import subprocess
from typing import Optional

from .errors import BadRequest

SAMPLE_RATE = 16000
BYTES_PER_SAMPLE = 2  # signed 16-bit little-endian


class AudioError(BadRequest):
    """The upload is empty, not audio, or not valid raw PCM."""


class PcmAudio:
    """16 kHz mono signed 16-bit little-endian PCM held in memory.

    The bytes are the single source of truth; ``float32()`` derives the
    [-1, 1) float array that WhisperX, wav2vec2 and pyannote take, once per
    instance, so a request converts at most once however many models read it.
    """

    __slots__ = ("pcm", "_float32")

    def __init__(self, pcm: bytes):
        if len(pcm) % BYTES_PER_SAMPLE:
            raise AudioError(
                "raw PCM must be 16-bit samples: the upload has an odd number of bytes"
            )
        self.pcm = pcm
        self._float32 = None

    @property
    def num_samples(self) -> int:
        return len(self.pcm) // BYTES_PER_SAMPLE

    @property
    def duration_s(self) -> float:
        return self.num_samples / SAMPLE_RATE

    def head(self, seconds: float) -> "PcmAudio":
        """The first ``seconds`` of audio (all of it when shorter)."""
        end = int(seconds * SAMPLE_RATE) * BYTES_PER_SAMPLE
        return self if end >= len(self.pcm) else PcmAudio(self.pcm[:end])

    def float32(self):
        """Samples as a numpy float32 array of shape (num_samples,), values in [-1, 1).

        numpy is imported here, not at module level, because only the real model
        backend needs it.
        """
        if self._float32 is None:
            import numpy as np

            self._float32 = np.frombuffer(self.pcm, np.int16).astype(np.float32) / 32768.0
        return self._float32


def load_audio(path: str, encode: bool = True, ffmpeg: str = "ffmpeg") -> PcmAudio:
    """Read an uploaded file as 16 kHz mono PCM.

    Args:
        path: file on disk holding the upload.
        encode: True decodes any container/codec ffmpeg knows, down-mixing and
            resampling to 16 kHz mono; False takes the bytes as raw 16 kHz mono
            s16le PCM (the whisper-asr-webservice ``encode=false`` contract).
        ffmpeg: the ffmpeg executable.

    Raises:
        AudioError (400): empty upload, undecodable audio, no audio stream, or raw PCM
            with an odd number of bytes.
        RuntimeError: ffmpeg is not installed.
    """
    size = os.path.getsize(path)
    if size == 0:
        raise AudioError("audio_file is empty")
    if not encode:
        with open(path, "rb") as handle:
            return PcmAudio(handle.read())

    command = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "0",
        "-i", path,
        "-vn", "-f", "s16le", "-acodec", "pcm_s16le", "-ac", "1", "-ar", str(SAMPLE_RATE),
        "-",
    ]
    try:
        completed = subprocess.run(command, capture_output=True, check=False)
    except FileNotFoundError as error:
        raise RuntimeError(f"ffmpeg is not installed ({ffmpeg!r} not found)") from error
    if completed.returncode != 0:
        raise AudioError(f"could not decode audio_file: {_last_line(completed.stderr)}")
    if not completed.stdout:
        raise AudioError("audio_file contains no audio samples")
    return PcmAudio(completed.stdout)


def _last_line(stderr: Optional[bytes]) -> str:
    # ffmpeg puts the decisive reason on its last line ("Invalid data found when
    # processing input"); earlier lines repeat the temporary path, useless to a client.
    lines = [line.strip() for line in (stderr or b"").decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return "ffmpeg failed"
    return lines[-1].split(": ", 1)[-1] if lines[-1].startswith("/") else lines[-1]
