"""ffmpeg decoding to 16 kHz mono s16le, without HTTP."""

import subprocess
import wave

import pytest

from whisper_rocm_service.audio import (
    AudioDecodeError, DecoderUnavailableError, decode_to_pcm)


def test_decodes_wav_to_pcm(jfk_wav, tmp_path):
    out = tmp_path / "out.pcm"
    audio = decode_to_pcm(str(jfk_wav), str(out))
    assert audio.path == str(out)
    assert (audio.sample_rate, audio.channels) == (16000, 1)
    assert audio.num_samples == 176000
    assert out.stat().st_size == 2 * 176000
    assert audio.duration == pytest.approx(11.0)


def test_stereo_fixture_becomes_mono(audio_dir, tmp_path):
    # fw_stereo_diarization.wav: 5 s, 16 kHz, two channels.
    audio = decode_to_pcm(str(audio_dir / "fw_stereo_diarization.wav"), str(tmp_path / "o.pcm"))
    assert audio.num_samples == 80000
    assert (tmp_path / "o.pcm").stat().st_size == 160000


def test_text_is_rejected_without_leaking_paths(tmp_path):
    src = tmp_path / "secret-dir-name.txt"
    src.write_text("not audio at all\n" * 10)
    with pytest.raises(AudioDecodeError) as info:
        decode_to_pcm(str(src), str(tmp_path / "o.pcm"))
    assert "secret-dir-name" not in str(info.value)
    assert str(info.value).startswith("could not decode audio")


def test_file_without_audio_stream_is_rejected(tmp_path):
    image = tmp_path / "frame.png"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "color=c=black:s=16x16:d=1", "-frames:v", "1", str(image)], check=True)
    with pytest.raises(AudioDecodeError):
        decode_to_pcm(str(image), str(tmp_path / "o.pcm"))


def test_zero_sample_audio_is_rejected(tmp_path):
    src = tmp_path / "silent-empty.wav"
    with wave.open(str(src), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes(b"")
    with pytest.raises(AudioDecodeError, match="no audio samples"):
        decode_to_pcm(str(src), str(tmp_path / "o.pcm"))


def test_missing_ffmpeg_is_a_server_fault(jfk_wav, tmp_path):
    with pytest.raises(DecoderUnavailableError):
        decode_to_pcm(str(jfk_wav), str(tmp_path / "o.pcm"), ffmpeg_bin=str(tmp_path / "no-ffmpeg"))
