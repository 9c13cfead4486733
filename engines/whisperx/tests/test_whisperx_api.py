"""The HTTP API end to end: real uploads and ffmpeg, the model boundary faked."""

import json
import re
import wave
from pathlib import Path

import pytest

import whisperx_service.app as app_module
from whisperx_fake_backend import read_rttm
from whisperx_service.config import ALLOWED_MODELS, Settings

TIMING = re.compile(r"^(\S+) --> (\S+)$")


def post_asr(client, path: Path, filename=None, **params):
    with open(path, "rb") as handle:
        return client.post(
            "/asr",
            params={key: str(value) for key, value in params.items()},
            files={"audio_file": (filename or path.name, handle, "application/octet-stream")},
        )


def seconds(stamp: str) -> float:
    """'00:00:03,283' or '00:03.283' -> 3.283."""
    parts = stamp.replace(",", ".").split(":")
    total = 0.0
    for part in parts:
        total = total * 60 + float(part)
    return total


def parse_srt(text: str):
    cues = []
    for block in text.strip().split("\n\n"):
        lines = block.split("\n")
        assert lines[0] == str(len(cues) + 1), f"cue numbers must run 1, 2, ...: {block!r}"
        match = TIMING.match(lines[1])
        assert match, f"bad SRT timing line {lines[1]!r}"
        assert re.fullmatch(r"\d\d:\d\d:\d\d,\d\d\d", match.group(1))
        cues.append((seconds(match.group(1)), seconds(match.group(2)), "\n".join(lines[2:])))
    return cues


def parse_vtt(text: str):
    assert text.startswith("WEBVTT\n\n")
    cues = []
    for block in text[len("WEBVTT\n\n"):].strip().split("\n\n"):
        lines = block.split("\n")
        match = TIMING.match(lines[0])
        assert match, f"bad VTT timing line {lines[0]!r}"
        assert re.fullmatch(r"(\d\d:)?\d\d:\d\d\.\d\d\d", match.group(1))
        cues.append((seconds(match.group(1)), seconds(match.group(2)), "\n".join(lines[1:])))
    return cues


def parse_tsv(text: str):
    lines = text.rstrip("\n").split("\n")
    assert lines[0] == "start\tend\ttext"
    rows = []
    for line in lines[1:]:
        start, end, body = line.split("\t")
        rows.append((int(start), int(end), body))
    return rows


# --- output formats ---------------------------------------------------------------


def test_json_is_served_as_text_plain_with_engine_header(client, audio_dir):
    response = post_asr(client, audio_dir / "jfk.wav", output="json")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["asr-engine"] == "whisperx"
    assert response.headers["content-disposition"] == 'attachment; filename="jfk.wav.json"'
    result = json.loads(response.text)
    assert result["language"] == "en"
    [segment] = result["segments"]
    assert segment["text"].strip().startswith("And so, my fellow Americans")
    assert "speaker" not in segment
    assert [w["word"] for w in segment["words"]][:4] == ["And", "so,", "my", "fellow"]
    assert all(isinstance(w["start"], float) and w["end"] > w["start"] for w in segment["words"])
    # Backend extras such as "chars" and "avg_logprob" are not part of the result shape.
    assert set(segment) == {"start", "end", "text", "words"}


def test_default_output_is_txt(client, audio_dir):
    response = post_asr(client, audio_dir / "jfk.wav")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == (
        "And so, my fellow Americans, ask not what your country can do for you,"
        " ask what you can do for your country.\n"
    )


def test_txt_prefixes_speakers_when_diarized(client, audio_dir):
    response = post_asr(client, audio_dir / "tts" / "dialogue_2spk.wav", output="txt", diarize="true")

    lines = response.text.rstrip("\n").split("\n")
    assert len(lines) == 10
    assert lines[0] == "[SPEAKER_00]: The birch canoe slid on the smooth planks."
    assert lines[1] == "[SPEAKER_01]: Glue the sheet to the dark blue background."


def test_srt_round_trips_with_speaker_prefixes(client, audio_dir):
    rttm = read_rttm(audio_dir / "tts" / "dialogue_2spk.rttm")

    response = post_asr(client, audio_dir / "tts" / "dialogue_2spk.wav", output="srt", diarize="true")

    assert response.status_code == 200
    cues = parse_srt(response.text)
    assert len(cues) == len(rttm) == 10
    for (start, end, text), turn in zip(cues, rttm):
        assert text.startswith(f"[{turn.speaker}]: ")
        # Cue times come from the aligned words, inside the speaker's turn.
        assert turn.start - 0.001 <= start < end <= turn.end + 0.001
    assert [text.split("]")[0] for _, _, text in cues] == ["[SPEAKER_00", "[SPEAKER_01"] * 5


def test_vtt_round_trips(client, audio_dir):
    response = post_asr(client, audio_dir / "tts" / "dialogue_2spk.wav", output="vtt")

    cues = parse_vtt(response.text)
    assert len(cues) == 10
    assert cues[0][2] == "The birch canoe slid on the smooth planks."
    assert all(start < end for start, end, _ in cues)
    assert [c[0] for c in cues] == sorted(c[0] for c in cues)
    # Without diarization there is no speaker prefix.
    assert not any(text.startswith("[SPEAKER") for _, _, text in cues)


def test_tsv_is_integer_milliseconds_matching_json(client, audio_dir):
    path = audio_dir / "tts" / "dialogue_2spk.wav"
    rows = parse_tsv(post_asr(client, path, output="tsv").text)
    segments = json.loads(post_asr(client, path, output="json").text)["segments"]

    assert [(start, end) for start, end, _ in rows] == [
        (round(s["start"] * 1000), round(s["end"] * 1000)) for s in segments
    ]
    assert [body for _, _, body in rows] == [s["text"].strip() for s in segments]


# --- WhisperX result shape -----------------------------------------------------------


def test_words_the_aligner_cannot_place_keep_no_times(client, audio_dir):
    response = post_asr(client, audio_dir / "tts" / "dialogue_2spk.wav", output="json", diarize="true")

    words = [w for s in json.loads(response.text)["segments"] for w in s["words"]]
    untimed = [w for w in words if w["word"] in ("1984.", "100%")]
    assert untimed == [{"word": "1984."}, {"word": "100%"}]
    timed = [w for w in words if w not in untimed]
    assert all({"start", "end", "score", "speaker"} <= set(w) for w in timed)


def test_diarization_passes_speaker_bounds_and_labels_words(client, fake, audio_dir):
    response = post_asr(
        client, audio_dir / "tts" / "dialogue_2spk.wav",
        output="json", diarize="true", min_speakers=2, max_speakers=3,
    )

    assert response.status_code == 200
    [call] = fake.calls_to("diarize")
    assert (call["min_speakers"], call["max_speakers"]) == (2, 3)
    with wave.open(str(audio_dir / "tts" / "dialogue_2spk.wav")) as source:
        assert call["num_samples"] == source.getnframes()  # the whole file, not pieces
    segments = json.loads(response.text)["segments"]
    assert {s["speaker"] for s in segments} == {"SPEAKER_00", "SPEAKER_01"}
    for segment in segments:
        assert {w["speaker"] for w in segment["words"] if "start" in w} == {segment["speaker"]}


def test_no_diarization_unless_asked(client, fake, audio_dir):
    post_asr(client, audio_dir / "tts" / "dialogue_2spk.wav", output="json", min_speakers=2)

    assert fake.calls_to("diarize") == []
    assert ("diarization", "pyannote/speaker-diarization-3.1") not in fake.loads


def test_language_is_detected_when_absent_and_passed_when_given(client, fake, audio_dir):
    detected = json.loads(post_asr(client, audio_dir / "jfk.wav", output="json").text)
    given = json.loads(post_asr(client, audio_dir / "jfk.wav", output="json", language="DE").text)

    assert detected["language"] == "en"
    assert given["language"] == "de"
    assert [c["language"] for c in fake.calls_to("transcribe")] == [None, "de"]
    assert [c["language"] for c in fake.calls_to("align")] == ["en", "de"]


def test_translation_is_aligned_with_the_english_model(client, fake, audio_dir):
    result = json.loads(post_asr(client, audio_dir / "jfk.wav", output="json", task="translate", language="fr").text)

    assert fake.calls_to("transcribe")[0]["task"] == "translate"
    assert fake.calls_to("align")[0]["language"] == "en"
    assert result["language"] == "fr"


def test_translation_detects_the_spoken_language_and_keeps_the_requested_options(client, fake, audio_dir):
    response = post_asr(client, audio_dir / "jfk.wav", output="json", task="translate", word_timestamps="true", diarize="false")
    assert response.status_code == 200, response.text
    result = json.loads(response.text)

    call = fake.calls_to("transcribe")[0]
    assert (call["task"], call["language"]) == ("translate", None)
    assert fake.calls_to("align")[0]["language"] == "en"
    # whisper-asr-webservice reports the spoken (detected) language even for a translation.
    assert result["language"] == "en"
    assert all(w.get("word") for s in result["segments"] for w in s["words"])


def test_language_without_aligner_keeps_segments_without_words(client, fake, audio_dir):
    response = post_asr(client, audio_dir / "jfk.wav", output="json", language="sw")

    assert response.status_code == 200
    [segment] = json.loads(response.text)["segments"]
    assert segment["words"] == []
    assert (segment["start"], segment["end"]) == (0.0, 10.5)


def test_options_reach_the_model(client, fake, audio_dir):
    post_asr(client, audio_dir / "jfk.wav", initial_prompt="Kennedy inaugural address", model="small")

    [call] = fake.calls_to("transcribe")
    assert call["initial_prompt"] == "Kennedy inaugural address"
    assert call["model"] == "small"
    assert call["task"] == "transcribe"
    assert call["batch_size"] == 16


# --- audio input ---------------------------------------------------------------------


def test_encode_false_takes_raw_pcm(client, fake, audio_dir):
    with wave.open(str(audio_dir / "jfk.wav")) as source:
        assert (source.getframerate(), source.getnchannels(), source.getsampwidth()) == (16000, 1, 2)
        frames = source.readframes(source.getnframes())

    raw = client.post(
        "/asr", params={"encode": "false", "output": "json"},
        files={"audio_file": ("jfk.pcm", frames, "application/octet-stream")},
    )
    decoded = post_asr(client, audio_dir / "jfk.wav", output="json")

    assert raw.status_code == 200
    raw_call, decoded_call = fake.calls_to("transcribe")
    assert raw_call["audio"].pcm == frames
    assert raw_call["num_samples"] == 176000  # 11 s at 16 kHz
    # ffmpeg's decode of the WAV gives the same samples as the raw upload.
    assert decoded_call["audio"].pcm == frames
    assert raw.text == decoded.text


def test_compressed_and_stereo_uploads_are_decoded_to_16k_mono(client, fake, audio_dir):
    assert post_asr(client, audio_dir / "jfk.mp3").status_code == 200
    assert post_asr(client, audio_dir / "fw_stereo_diarization.wav").status_code == 200

    mp3_call, stereo_call = fake.calls_to("transcribe")
    assert abs(mp3_call["num_samples"] / 16000 - 11.0) < 0.1
    assert stereo_call["num_samples"] == 5 * 16000


def test_uploads_are_spooled_to_disk_and_deleted(client, settings, upload_dir, audio_dir, monkeypatch):
    seen = []
    real_load_audio = app_module.load_audio

    def spying_load_audio(path, encode=True):
        seen.append((Path(path).parent, Path(path).stat().st_size))
        return real_load_audio(path, encode)

    monkeypatch.setattr(app_module, "load_audio", spying_load_audio)
    size = (audio_dir / "jfk.wav").stat().st_size

    assert post_asr(client, audio_dir / "jfk.wav").status_code == 200
    assert client.post("/asr", files={"audio_file": ("junk.wav", b"not audio at all", "audio/wav")}).status_code == 400

    assert seen[0] == (upload_dir, size)
    assert list(upload_dir.iterdir()) == []


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"output": "docx"}, "output must be one of txt, vtt, srt, tsv, json"),
        ({"task": "summarize"}, "task must be one of transcribe, translate"),
        ({"language": "xx"}, "unknown language 'xx'"),
        ({"encode": "maybe"}, "encode must be a boolean"),
        ({"diarize": "2"}, "diarize must be a boolean"),
        ({"diarize": "true", "min_speakers": "3", "max_speakers": "2"}, "min_speakers (3) must not be greater than max_speakers (2)"),
        ({"diarize": "true", "min_speakers": "0"}, "min_speakers must be between 1 and 20"),
        ({"diarize": "true", "max_speakers": "21"}, "max_speakers must be between 1 and 20"),
        ({"diarize": "true", "max_speakers": "two"}, "max_speakers must be an integer"),
    ],
)
def test_bad_query_parameters_are_400_with_detail(client, fake, audio_dir, params, fragment):
    response = post_asr(client, audio_dir / "jfk.wav", **params)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert fragment in response.json()["detail"]
    assert fake.calls == []


def test_unknown_model_lists_the_allowed_ones(client, audio_dir):
    response = post_asr(client, audio_dir / "jfk.wav", model="huge")

    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "unknown model 'huge'" in detail
    assert all(name in detail for name in ALLOWED_MODELS)


def test_missing_audio_file_is_400(client):
    response = client.post("/asr", params={"output": "json"})

    assert response.status_code == 400
    assert response.json() == {"detail": "missing multipart file field 'audio_file'"}


def test_audio_file_sent_as_text_field_is_422_with_string_detail(client):
    response = client.post("/asr", data={"audio_file": "hello"})

    assert response.status_code == 422
    assert response.json()["detail"].startswith("invalid request: audio_file")


def test_empty_upload_is_400(client):
    response = client.post("/asr", files={"audio_file": ("empty.wav", b"", "audio/wav")})

    assert response.status_code == 400
    assert response.json() == {"detail": "audio_file is empty"}


def test_undecodable_upload_is_400(client, fake):
    response = client.post("/asr", files={"audio_file": ("notes.wav", b"these are not audio bytes\n" * 40, "audio/wav")})

    assert response.status_code == 400
    assert response.json()["detail"].startswith("could not decode audio_file: ")
    assert "Invalid data" in response.json()["detail"]
    assert fake.calls == []


def test_odd_length_raw_pcm_is_400(client):
    response = client.post(
        "/asr", params={"encode": "false"},
        files={"audio_file": ("odd.pcm", b"\x00\x01\x02", "application/octet-stream")},
    )

    assert response.status_code == 400
    assert "odd number of bytes" in response.json()["detail"]


def test_diarize_without_hf_token_is_400(make_client, settings, audio_dir):
    no_token = Settings(**{**settings.__dict__, "hf_token": None})
    with make_client(no_token) as client:
        response = post_asr(client, audio_dir / "jfk.wav", diarize="true")
        plain = post_asr(client, audio_dir / "jfk.wav")
        health = client.get("/health").json()

    assert response.status_code == 400
    assert "HF_TOKEN" in response.json()["detail"]
    assert plain.status_code == 200
    assert health["diarization_available"] is False


def test_model_that_cannot_load_is_503(client, fake, audio_dir):
    fake.failing_models.add("large-v3")

    response = post_asr(client, audio_dir / "jfk.wav", model="large-v3")

    assert response.status_code == 503
    assert "large-v3" in response.json()["detail"]
    assert "large-v3" not in client.get("/health").json()["loaded_models"]


def test_unexpected_failure_is_500_with_detail(make_client, settings, fake, audio_dir):
    def broken_align(aligner, segments, audio):
        raise KeyError("dictionary")

    fake.align = broken_align
    # The app answers; the client must not re-raise the server-side exception.
    with make_client(settings, raise_server_exceptions=False) as client:
        response = post_asr(client, audio_dir / "jfk.wav")

    assert response.status_code == 500
    assert response.json() == {"detail": "internal error: KeyError: 'dictionary'"}


# --- detect-language -----------------------------------------------------------------


def test_detect_language_uses_the_first_30_seconds(client, fake, audio_dir):
    with open(audio_dir / "tts" / "dialogue_2spk.wav", "rb") as handle:
        response = client.post("/detect-language", files={"audio_file": ("d.wav", handle, "audio/wav")})

    assert response.status_code == 200
    assert response.json() == {"detected_language": "english", "language_code": "en", "confidence": 0.968}
    [call] = fake.calls_to("detect_language")
    assert call["num_samples"] == 30 * 16000
    assert call["model"] == "base"


def test_detect_language_accepts_raw_pcm_and_model(client, fake, audio_dir):
    with wave.open(str(audio_dir / "goforward.wav")) as source:
        frames = source.readframes(source.getnframes())

    response = client.post(
        "/detect-language", params={"encode": "false", "model": "tiny"},
        files={"audio_file": ("g.pcm", frames, "application/octet-stream")},
    )

    assert response.status_code == 200
    [call] = fake.calls_to("detect_language")
    assert call == {"model": "tiny", "num_samples": len(frames) // 2}


def test_detect_language_errors(client):
    assert client.post("/detect-language").json() == {"detail": "missing multipart file field 'audio_file'"}
    empty = client.post("/detect-language", files={"audio_file": ("e.wav", b"", "audio/wav")})
    assert (empty.status_code, empty.json()) == (400, {"detail": "audio_file is empty"})


# --- health and model cache ----------------------------------------------------------


def test_health_reports_loaded_models(client, audio_dir):
    before = client.get("/health")
    post_asr(client, audio_dir / "jfk.wav", model="tiny")
    after = client.get("/health").json()

    assert before.status_code == 200
    assert before.headers["asr-engine"] == "whisperx"
    assert before.json() == {
        "status": "ok",
        "device": "cpu",
        "compute_type": "int8",
        "default_model": "base",
        "allowed_models": list(ALLOWED_MODELS),
        "loaded_models": [],
        "loaded_align_models": [],
        "diarization_available": True,
        "diarization_loaded": False,
    }
    assert after["loaded_models"] == ["tiny"]
    assert after["loaded_align_models"] == ["en"]


def test_models_per_request_are_cached_and_lru_bounded(client, fake, audio_dir):
    for model in ("tiny", "small", "tiny", "medium", "tiny"):
        assert post_asr(client, audio_dir / "goforward.wav", model=model).status_code == 200

    # MAX_LOADED_MODELS=2: "small" was least recently used when "medium" arrived.
    assert client.get("/health").json()["loaded_models"] == ["medium", "tiny"]
    assert [name for kind, name in fake.loads if kind == "whisper"] == ["tiny", "small", "medium"]
    assert fake.memory_releases == 1
