"""Decoding real fixtures with ffmpeg to 16 kHz mono PCM."""

import array
import wave

import pytest

from whisperx_service.audio import AudioError, PcmAudio, load_audio


def wav_frames(path):
    with wave.open(str(path)) as source:
        return source.readframes(source.getnframes())


def test_wav_decodes_sample_exact(audio_dir):
    audio = load_audio(str(audio_dir / "jfk.wav"))
    assert audio.pcm == wav_frames(audio_dir / "jfk.wav")
    assert audio.num_samples == 176000
    assert audio.duration_s == 11.0


def test_mp3_becomes_16k_mono(audio_dir):
    mp3 = load_audio(str(audio_dir / "jfk.mp3"))
    assert abs(mp3.duration_s - 11.0) < 0.1


def test_stereo_is_down_mixed_not_one_channel_dropped(audio_dir):
    path = audio_dir / "fw_stereo_diarization.wav"
    interleaved = array.array("h", wav_frames(path))
    left, right = interleaved[0::2], interleaved[1::2]

    mono = array.array("h", load_audio(str(path)).pcm)

    assert len(mono) == len(left) == 5 * 16000
    # Each speaker sits on one channel; the mix must carry both.
    assert max(abs(m - (l + r) / 2) for m, l, r in zip(mono, left, right)) <= 1


def test_raw_pcm_is_taken_as_is(audio_dir, tmp_path):
    raw = tmp_path / "jfk.pcm"
    raw.write_bytes(wav_frames(audio_dir / "jfk.wav"))
    audio = load_audio(str(raw), encode=False)
    assert audio.pcm == raw.read_bytes()


@pytest.mark.parametrize(
    "content, encode, message",
    [
        (b"", True, "audio_file is empty"),
        (b"", False, "audio_file is empty"),
        (b"plain text, not audio\n" * 20, True, "could not decode audio_file: Invalid data"),
        (b"\x00\x01\x02", False, "odd number of bytes"),
    ],
)
def test_bad_uploads(tmp_path, content, encode, message):
    path = tmp_path / "upload"
    path.write_bytes(content)
    with pytest.raises(AudioError) as raised:
        load_audio(str(path), encode=encode)
    assert message in raised.value.detail
    assert raised.value.status_code == 400
    assert str(path) not in raised.value.detail


def test_missing_ffmpeg_is_a_server_error(audio_dir):
    with pytest.raises(RuntimeError, match="ffmpeg is not installed"):
        load_audio(str(audio_dir / "jfk.wav"), ffmpeg="/nonexistent/ffmpeg")


def test_head_keeps_the_first_seconds():
    audio = PcmAudio(b"\x01\x00" * 16000 * 40)
    assert audio.head(30).num_samples == 480000
    short = PcmAudio(b"\x01\x00" * 100)
    assert short.head(30) is short
