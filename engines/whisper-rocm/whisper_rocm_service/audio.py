"""Decoding uploads to the model's input: 16 kHz mono signed 16-bit PCM.

ffmpeg does all decoding, so any container or codec it reads is accepted (WAV, MP3, FLAC,
Ogg/Opus, M4A, video files with an audio track). The output is headerless little-endian
PCM (``s16le``) in a temp file rather than WAV: a WAV header cannot describe more than
4 GiB, which a 1 GiB compressed upload can exceed once decoded, and the sample count
follows from the file size anyway.
"""

import os
import subprocess
from dataclasses import dataclass
from typing import List

SAMPLE_RATE = 16000
CHANNELS = 1
BYTES_PER_SAMPLE = 2  # signed 16-bit


@dataclass(frozen=True)
class DecodedAudio:
    """Decoded audio handed to the model backend.

    Attributes:
        path: file of raw PCM, signed 16-bit little-endian, ``sample_rate`` Hz,
            ``channels`` channel(s), no header. It exists only while the request runs.
        num_samples: samples per channel in the file.
        sample_rate: samples per second; always 16000, Whisper's input rate.
        channels: always 1 (ffmpeg averages the input channels).
    """

    path: str
    num_samples: int
    sample_rate: int = SAMPLE_RATE
    channels: int = CHANNELS

    @property
    def duration(self) -> float:
        """Length of the audio in seconds, from the sample count."""
        return self.num_samples / float(self.sample_rate)


class AudioDecodeError(Exception):
    """The upload is not decodable audio (ffmpeg failed, or no audio stream, or zero
    samples). The message is safe to show to the client: temp paths are removed."""


class DecoderUnavailableError(Exception):
    """ffmpeg could not be run or ran past its time limit: a server-side fault."""


def ffmpeg_command(ffmpeg_bin: str, src_path: str, dst_path: str) -> List[str]:
    """The ffmpeg argv that decodes ``src_path`` to 16 kHz mono s16le PCM at ``dst_path``.

    ``-map 0:a:0`` picks the first audio stream so a video file works and a file without
    audio fails with a clear message instead of producing an empty output.
    """
    return [
        ffmpeg_bin,
        "-nostdin",
        "-hide_banner",
        "-loglevel", "error",
        "-y",
        "-i", src_path,
        "-map", "0:a:0",
        "-vn", "-sn", "-dn",
        "-ac", str(CHANNELS),
        "-ar", str(SAMPLE_RATE),
        "-c:a", "pcm_s16le",
        "-f", "s16le",
        dst_path,
    ]


def decode_to_pcm(src_path: str, dst_path: str, *, ffmpeg_bin: str = "ffmpeg",
                  timeout_s: float = 1800.0) -> DecodedAudio:
    """Decode the file at ``src_path`` to 16 kHz mono s16le PCM written to ``dst_path``.

    Blocks for the length of the decode (run it in a worker thread). Returns the
    ``DecodedAudio`` describing ``dst_path``; the caller owns and deletes both files.

    Raises:
        AudioDecodeError: ffmpeg rejected the input, found no audio stream, or the audio
            has no samples.
        DecoderUnavailableError: ffmpeg is missing or exceeded ``timeout_s`` seconds.
    """
    try:
        proc = subprocess.run(
            ffmpeg_command(ffmpeg_bin, src_path, dst_path),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout_s,
            check=False,
        )
    except FileNotFoundError as exc:
        raise DecoderUnavailableError("ffmpeg executable not found: %s" % ffmpeg_bin) from exc
    except subprocess.TimeoutExpired as exc:
        raise DecoderUnavailableError("decoding took longer than %.0f s" % timeout_s) from exc

    if proc.returncode != 0:
        raise AudioDecodeError(
            "could not decode audio: " + _summarize_stderr(proc.stderr, (src_path, dst_path))
        )

    size = os.path.getsize(dst_path)
    num_samples = size // (BYTES_PER_SAMPLE * CHANNELS)
    if num_samples == 0:
        raise AudioDecodeError("could not decode audio: the file contains no audio samples")
    return DecodedAudio(path=dst_path, num_samples=num_samples)


def _summarize_stderr(stderr: bytes, paths: tuple) -> str:
    """Last meaningful ffmpeg error lines, with server-side temp paths replaced."""
    text = stderr.decode("utf-8", errors="replace")
    for path in paths:
        text = text.replace(path, "<upload>")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "ffmpeg failed without a message"
    summary = "; ".join(lines[-3:])
    return summary[:500]
