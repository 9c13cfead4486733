"""HTTP contract of the service, with the model replaced by ``FakeWhisperBackend`` and
real ffmpeg decoding real audio fixtures."""

import asyncio
import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from whisper_rocm_fakes import HEALTH_INFO, FakeWhisperBackend, wait_until_ready
from whisper_rocm_service.backend import BackendInputError
from whisper_rocm_service.main import _BodyTooLarge, _limited_receive

URL = "/v1/audio/transcriptions"
SEGMENT_KEYS = {"id", "seek", "start", "end", "text", "tokens", "temperature",
                "avg_logprob", "compression_ratio", "no_speech_prob"}
JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")


def assert_openai_error(response, status, param=None, code=None):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"] == ("server_error" if status >= 500 else "invalid_request_error")
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    return error


def srt_to_seconds(stamp: str) -> float:
    match = re.fullmatch(r"(\d{2,}):(\d{2}):(\d{2}),(\d{3})", stamp)
    assert match, stamp
    h, m, s, ms = (int(x) for x in match.groups())
    return h * 3600 + m * 60 + s + ms / 1000.0


def vtt_to_seconds(stamp: str) -> float:
    match = re.fullmatch(r"(\d{2,}):(\d{2}):(\d{2})\.(\d{3})", stamp)
    assert match, stamp
    h, m, s, ms = (int(x) for x in match.groups())
    return h * 3600 + m * 60 + s + ms / 1000.0


# --- health and model lifecycle -------------------------------------------------------

def test_health_is_503_while_loading_then_200_with_runtime_fields(make_service, jfk_wav):
    gate = threading.Event()
    service = make_service(backend=FakeWhisperBackend(load_gate=gate), wait_ready=False)

    loading = service.client.get("/health")
    assert loading.status_code == 503
    assert loading.json() == {"status": "loading", "model": "medium"}
    error = assert_openai_error(service.transcribe(jfk_wav), 503, code="model_not_loaded")
    assert "loading" in error["message"]
    assert service.backend.calls == []

    gate.set()
    body = wait_until_ready(service.client)
    assert body["status"] == "ok"
    for key in ("model", "device", "device_name", "fp16", "hip_version", "torch_version"):
        assert key in body
    assert body["model"] == "medium"
    assert body["device"] == HEALTH_INFO["device"]
    assert body["hip_version"] == HEALTH_INFO["hip_version"]
    assert body["fp16"] is True
    assert service.transcribe(jfk_wav).status_code == 200


def test_failed_load_keeps_reporting_503_with_the_reason(make_service, jfk_wav):
    backend = FakeWhisperBackend(load_error=RuntimeError("no GPU visible"))
    service = make_service(backend=backend, wait_ready=False)
    deadline = time.monotonic() + 5
    while service.client.get("/health").json()["status"] != "error":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    health = service.client.get("/health")
    assert health.status_code == 503
    assert "no GPU visible" in health.json()["error"]
    error = assert_openai_error(service.transcribe(jfk_wav), 503, code="model_not_loaded")
    assert "no GPU visible" in error["message"]


def test_model_is_built_and_loaded_once_across_requests(make_service, jfk_wav):
    service = make_service()
    for response_format in ("json", "text", "srt", "vtt", "verbose_json"):
        response = service.transcribe(jfk_wav, data={"response_format": response_format})
        assert response.status_code == 200, response.text
    assert len(service.factory_calls) == 1
    assert service.backend.load_calls == 1
    assert len(service.backend.calls) == 5


def test_gpu_work_is_serialised_and_does_not_block_the_event_loop(make_service, jfk_wav):
    gate = threading.Event()
    backend = FakeWhisperBackend(transcribe_gate=gate)
    service = make_service(backend=backend)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(service.transcribe, jfk_wav) for _ in range(3)]
        assert backend.started.wait(timeout=10)
        # One transcription holds the model; the server must still answer probes.
        started = time.monotonic()
        assert service.client.get("/health").status_code == 200
        assert time.monotonic() - started < 2.0
        time.sleep(0.2)
        assert backend.active == 1
        gate.set()
        statuses = [future.result(timeout=30).status_code for future in futures]
    assert statuses == [200, 200, 200]
    assert backend.max_active == 1
    assert len(backend.calls) == 3


# --- response formats ---------------------------------------------------------------

def test_json_is_only_the_text(make_service, jfk_wav):
    service = make_service()
    response = service.transcribe(jfk_wav)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"text": JFK_TEXT}
    assert response.headers["x-whisper-model"] == "medium"
    assert float(response.headers["x-audio-duration-seconds"]) == pytest.approx(11.0)
    assert float(response.headers["x-real-time-factor"]) >= 0.0


def test_text_is_plain_transcript(make_service, jfk_wav):
    response = make_service().transcribe(jfk_wav, data={"response_format": "text"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == JFK_TEXT + "\n"


def test_srt_parses_back_to_the_segment_times(make_service, jfk_wav):
    response = make_service().transcribe(jfk_wav, data={"response_format": "srt"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    blocks = [b for b in response.text.strip("\n").split("\n\n")]
    assert len(blocks) == 2
    cues = []
    for expected_index, block in enumerate(blocks, start=1):
        index, timing, text = block.split("\n")
        assert int(index) == expected_index
        start, end = timing.split(" --> ")
        cues.append((srt_to_seconds(start), srt_to_seconds(end), text))
    # The fake cuts 11.0 s of audio at 62 %: 6.82 s.
    assert cues[0] == (0.0, 6.82, "And so my fellow Americans, ask not what your country can do for you,")
    assert cues[1] == (6.82, 11.0, "ask what you can do for your country.")
    assert "00:00:06,820 --> 00:00:11,000" in response.text


def test_vtt_has_header_and_dot_millisecond_times(make_service, jfk_wav):
    response = make_service().transcribe(jfk_wav, data={"response_format": "vtt"})
    assert response.status_code == 200
    lines = response.text.split("\n")
    assert lines[0] == "WEBVTT"
    assert lines[1] == ""
    timings = [line for line in lines if " --> " in line]
    assert len(timings) == 2
    parsed = [tuple(vtt_to_seconds(x) for x in line.split(" --> ")) for line in timings]
    assert parsed == [(0.0, 6.82), (6.82, 11.0)]
    assert "," not in "".join(timings)
    assert lines[lines.index(timings[1]) + 1] == "ask what you can do for your country."


def test_verbose_json_without_word_granularity(make_service, jfk_wav):
    service = make_service()
    response = service.transcribe(jfk_wav, data={"response_format": "verbose_json"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"task", "language", "duration", "text", "segments"}
    assert body["task"] == "transcribe"
    assert body["language"] == "english"
    assert body["duration"] == pytest.approx(11.0)
    assert body["text"] == JFK_TEXT
    assert len(body["segments"]) == 2
    for index, segment in enumerate(body["segments"]):
        assert set(segment) == SEGMENT_KEYS
        assert segment["id"] == index
        assert all(isinstance(token, int) for token in segment["tokens"])
        assert isinstance(segment["start"], float) and isinstance(segment["end"], float)
    assert body["segments"][1]["end"] == pytest.approx(11.0)
    assert service.backend.calls[-1]["word_timestamps"] is False


def test_verbose_json_with_word_and_segment_granularity(make_service, jfk_wav):
    service = make_service()
    response = service.transcribe(jfk_wav, data={
        "response_format": "verbose_json",
        "timestamp_granularities[]": ["word", "segment"],
    })
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"task", "language", "duration", "text", "segments", "words"}
    assert service.backend.calls[-1]["word_timestamps"] is True
    words = body["words"]
    assert [w["word"] for w in words[:4]] == ["And", "so", "my", "fellow"]
    assert len(words) == len(JFK_TEXT.split(" "))
    for word in words:
        assert set(word) == {"word", "start", "end"}
        assert 0.0 <= word["start"] <= word["end"] <= 11.0
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    for segment in body["segments"]:
        assert set(segment) == SEGMENT_KEYS  # words are top-level only, as in OpenAI


def test_verbose_json_with_only_word_granularity_omits_segments(make_service, jfk_wav):
    service = make_service()
    response = service.transcribe(jfk_wav, data={
        "response_format": "verbose_json", "timestamp_granularities[]": "word"})
    assert response.status_code == 200
    body = response.json()
    assert "segments" not in body
    assert body["words"][-1] == {"word": "country.", "start": pytest.approx(10.48, abs=0.01),
                                 "end": pytest.approx(11.0)}


def test_word_granularity_is_not_computed_for_non_verbose_formats(make_service, jfk_wav):
    service = make_service()
    response = service.transcribe(jfk_wav, data={"timestamp_granularities[]": "word"})
    assert response.status_code == 200
    assert response.json() == {"text": JFK_TEXT}
    assert service.backend.calls[-1]["word_timestamps"] is False


def test_granularity_field_without_brackets_is_also_read(make_service, jfk_wav):
    service = make_service()
    response = service.transcribe(jfk_wav, data={
        "response_format": "verbose_json", "timestamp_granularities": "word"})
    assert response.status_code == 200
    assert "words" in response.json()


# --- request fields reach the model -------------------------------------------------

def test_language_prompt_and_temperature_are_passed_to_the_model(make_service, jfk_wav):
    service = make_service()
    response = service.transcribe(jfk_wav, data={
        "language": "DE", "prompt": "Kennedy, Berlin.", "temperature": "0.4",
        "response_format": "verbose_json", "model": "whisper-1"})
    assert response.status_code == 200
    call = service.backend.calls[-1]
    assert call["language"] == "de"
    assert call["prompt"] == "Kennedy, Berlin."
    assert call["temperature"] == pytest.approx(0.4)
    assert response.json()["language"] == "german"


def test_defaults_detect_language_and_start_greedy(make_service, jfk_wav):
    service = make_service()
    assert service.transcribe(jfk_wav).status_code == 200
    call = service.backend.calls[-1]
    assert call["language"] is None
    assert call["prompt"] is None
    assert call["temperature"] == 0.0


@pytest.mark.parametrize("model", ["whisper-1", "medium", "whisper-medium", ""])
def test_model_field_accepts_the_loaded_model_and_its_aliases(make_service, jfk_wav, model):
    response = make_service().transcribe(jfk_wav, data={"model": model})
    assert response.status_code == 200, response.text


def test_model_field_naming_another_model_is_rejected(make_service, jfk_wav):
    service = make_service()
    error = assert_openai_error(service.transcribe(jfk_wav, data={"model": "large-v3"}),
                                400, param="model", code="model_not_found")
    assert "medium" in error["message"]
    assert service.backend.calls == []


# --- decoding ---------------------------------------------------------------------

def test_wav_reaches_the_model_as_16khz_mono_pcm(make_service, jfk_wav):
    service = make_service()
    assert service.transcribe(jfk_wav).status_code == 200
    call = service.backend.calls[-1]
    assert (call["sample_rate"], call["channels"]) == (16000, 1)
    assert call["num_samples"] == 176000  # 11.0 s × 16 kHz
    assert call["samples_in_file"] == call["num_samples"]
    assert call["bytes"] == 2 * call["num_samples"]
    assert call["duration"] == pytest.approx(11.0)
    assert call["peak"] > 1000  # real speech, not silence


def test_mp3_is_decoded(make_service, jfk_mp3):
    service = make_service()
    response = service.transcribe(jfk_mp3, data={"response_format": "verbose_json"})
    assert response.status_code == 200
    call = service.backend.calls[-1]
    assert 10.9 < call["duration"] < 11.2
    assert response.json()["duration"] == pytest.approx(call["duration"])


def _lavfi(tmp_path: Path, name: str, expression: str, rate: int, seconds: float) -> Path:
    out = tmp_path / name
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", "aevalsrc=%s:s=%d:d=%s" % (expression, rate, seconds), "-c:a", "pcm_s16le", str(out)],
        check=True)
    return out


def test_44k_stereo_is_resampled_to_16k_mono(make_service, tmp_path):
    # 440 Hz in both channels at 44.1 kHz for 2 s: after decoding there must be 32000
    # samples and still 440 Hz (about 2 × 440 × 2 zero crossings).
    source = _lavfi(tmp_path, "tone.wav", "0.5*sin(2*PI*440*t)|0.5*sin(2*PI*440*t)", 44100, 2)
    service = make_service()
    assert service.transcribe(source).status_code == 200
    call = service.backend.calls[-1]
    assert (call["sample_rate"], call["channels"]) == (16000, 1)
    assert abs(call["num_samples"] - 32000) <= 16
    assert abs(call["zero_crossings"] - 1760) <= 10
    assert call["peak"] > 10000


def test_stereo_channels_are_averaged_to_mono(make_service, tmp_path):
    # The right channel is the left one inverted: a true downmix cancels to silence,
    # while keeping one channel (or interleaving both) would not.
    source = _lavfi(tmp_path, "antiphase.wav", "0.5*sin(2*PI*440*t)|-0.5*sin(2*PI*440*t)", 16000, 1)
    service = make_service()
    assert service.transcribe(source).status_code == 200
    call = service.backend.calls[-1]
    assert call["num_samples"] == 16000
    assert call["peak"] <= 2


def test_temp_files_are_removed_after_success_and_failure(make_service, jfk_wav, tmp_path):
    service = make_service()
    assert service.transcribe(jfk_wav).status_code == 200
    pcm_path = service.backend.calls[-1]["path"]
    assert pcm_path.startswith(str(service.tmp_dir))
    assert not Path(pcm_path).exists()
    bogus = tmp_path / "notes.txt"
    bogus.write_text("this is not audio\n" * 20)
    assert service.transcribe(bogus).status_code == 400
    assert list(service.tmp_dir.iterdir()) == []


# --- validation errors --------------------------------------------------------------

def test_missing_file_is_400(make_service):
    service = make_service()
    response = service.client.post(URL, data={"model": "whisper-1"})
    assert_openai_error(response, 400, param="file", code="missing_file")


def test_file_sent_as_text_field_is_400(make_service):
    response = make_service().client.post(URL, files={"file": (None, "hello")})
    assert_openai_error(response, 400, param="file", code="invalid_file")


def test_empty_file_is_400(make_service):
    service = make_service()
    response = service.client.post(URL, files={"file": ("empty.wav", b"", "audio/wav")})
    assert_openai_error(response, 400, param="file", code="empty_file")
    assert service.backend.calls == []


def test_text_file_is_400_undecodable(make_service, tmp_path):
    service = make_service()
    bogus = tmp_path / "readme.txt"
    bogus.write_text("Ask not what your country can do for you.\n")
    error = assert_openai_error(service.transcribe(bogus), 400, param="file", code="invalid_audio")
    assert str(service.tmp_dir) not in error["message"]  # no server paths leak
    assert service.backend.calls == []


@pytest.mark.parametrize("data, param", [
    ({"response_format": "xml"}, "response_format"),
    ({"response_format": "verbose"}, "response_format"),
    ({"timestamp_granularities[]": "sentence"}, "timestamp_granularities[]"),
    ({"timestamp_granularities[]": ["word", "char"]}, "timestamp_granularities[]"),
    ({"temperature": "hot"}, "temperature"),
    ({"temperature": "1.5"}, "temperature"),
    ({"temperature": "-0.1"}, "temperature"),
    ({"temperature": "nan"}, "temperature"),
    ({"language": "xx"}, "language"),
    ({"language": "english"}, "language"),
])
def test_bad_field_values_are_400_naming_the_field(make_service, jfk_wav, data, param):
    service = make_service()
    assert_openai_error(service.transcribe(jfk_wav, data=data), 400, param=param)
    assert service.backend.calls == []


def test_language_the_model_cannot_serve_is_400(make_service, jfk_wav):
    backend = FakeWhisperBackend(
        transcribe_error=BackendInputError("model medium.en is English-only", param="language"))
    error = assert_openai_error(make_service(backend=backend).transcribe(jfk_wav, data={"language": "de"}),
                                400, param="language", code="unsupported_language")
    assert "English-only" in error["message"]


def test_model_crash_is_500_with_openai_shape(make_service, jfk_wav):
    backend = FakeWhisperBackend(transcribe_error=RuntimeError("HIP error: out of memory"))
    service = make_service(backend=backend)
    assert_openai_error(service.transcribe(jfk_wav), 500, code="internal_error")
    assert list(service.tmp_dir.iterdir()) == []


def test_unknown_route_uses_openai_error_shape(make_service):
    assert_openai_error(make_service().client.get("/v1/nope"), 404)


# --- upload size ------------------------------------------------------------------

def test_file_over_the_limit_is_413(make_service, tmp_path):
    # Body below limit + multipart allowance, file above the limit: caught while copying.
    service = make_service(max_upload_bytes=1000)
    big = tmp_path / "big.wav"
    big.write_bytes(b"\0" * 2000)
    assert_openai_error(service.transcribe(big), 413, param="file", code="file_too_large")
    assert service.backend.calls == []
    assert list(service.tmp_dir.iterdir()) == []


def test_declared_content_length_over_the_limit_is_413_before_reading(make_service, tmp_path):
    service = make_service(max_upload_bytes=1000)
    huge = tmp_path / "huge.wav"
    huge.write_bytes(b"\0" * (3 * 1024 * 1024))
    assert_openai_error(service.transcribe(huge), 413, code="file_too_large")


def test_chunked_upload_over_the_limit_is_cut_off_with_413(make_service):
    service = make_service(max_upload_bytes=1000)
    boundary = "whisperrocmboundary"
    head = ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
            "Content-Type: audio/wav\r\n\r\n" % boundary).encode()
    tail = ("\r\n--%s--\r\n" % boundary).encode()

    def body():
        yield head
        for _ in range(48):  # 3 MiB in 64 KiB chunks, no Content-Length
            yield b"\0" * 65536
        yield tail

    response = service.client.post(
        URL, content=body(),
        headers={"content-type": "multipart/form-data; boundary=%s" % boundary})
    assert_openai_error(response, 413, code="file_too_large")
    assert "content-length" not in {k.lower() for k in response.request.headers.keys()}
    assert service.backend.calls == []


def test_body_limit_stops_reading_at_the_limit():
    chunks = [{"type": "http.request", "body": b"x" * 400, "more_body": True} for _ in range(10)]
    served = []

    async def receive():
        served.append(1)
        return chunks[len(served) - 1]

    limited = _limited_receive(receive, 1000)

    async def drain():
        while True:
            await limited()

    with pytest.raises(_BodyTooLarge):
        asyncio.run(drain())
    assert len(served) == 3  # 1200 bytes read, the remaining 2800 never requested


# --- API key ----------------------------------------------------------------------

def test_api_key_is_required_when_configured(make_service, jfk_wav):
    service = make_service(api_key="s3cret-key")
    missing = service.transcribe(jfk_wav)
    assert_openai_error(missing, 401, code="invalid_api_key")
    assert missing.headers["www-authenticate"] == "Bearer"
    assert_openai_error(service.transcribe(jfk_wav, headers={"Authorization": "Bearer wrong"}),
                        401, code="invalid_api_key")
    assert_openai_error(service.transcribe(jfk_wav, headers={"Authorization": "Basic s3cret-key"}),
                        401, code="invalid_api_key")
    assert service.backend.calls == []
    ok = service.transcribe(jfk_wav, headers={"Authorization": "Bearer s3cret-key"})
    assert ok.status_code == 200
    assert service.client.get("/health").status_code == 200  # probes need no key


def test_no_api_key_configured_means_no_auth(make_service, jfk_wav):
    response = make_service().transcribe(jfk_wav, headers={"Authorization": "Bearer anything"})
    assert response.status_code == 200


# --- translations ---------------------------------------------------------------------

TRANSLATIONS_URL = "/v1/audio/translations"


def translate(service, path: Path, data=None):
    with open(path, "rb") as handle:
        return service.client.post(
            TRANSLATIONS_URL,
            files={"file": (path.name, handle, "application/octet-stream")},
            data=data or {},
        )


def test_translation_runs_whispers_translate_task_and_answers_json_text(make_service, jfk_wav):
    service = make_service(backend=FakeWhisperBackend(spoken_language="de"))
    response = translate(service, jfk_wav, {"model": "whisper-1", "prompt": "Kennedy.", "temperature": "0.2"})
    assert response.status_code == 200, response.text
    assert response.json() == {"text": JFK_TEXT}
    call = service.backend.calls[-1]
    assert call["task"] == "translate"
    # The spoken language is detected (OpenAI's translations have no language field); no word timings.
    assert call["language"] is None
    assert call["word_timestamps"] is False
    assert call["prompt"] == "Kennedy."
    assert call["temperature"] == pytest.approx(0.2)


def test_translation_verbose_json_reports_english_output_and_segments_only(make_service, jfk_wav):
    service = make_service(backend=FakeWhisperBackend(spoken_language="de"))
    response = translate(service, jfk_wav, {"response_format": "verbose_json"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"task", "language", "duration", "text", "segments"}
    # Whisper reports the spoken language (de); the translation's language is the output's.
    assert body["task"] == "translate"
    assert body["language"] == "english"
    assert body["duration"] == pytest.approx(11.0)
    assert body["text"] == JFK_TEXT
    assert [set(s) for s in body["segments"]] == [SEGMENT_KEYS, SEGMENT_KEYS]


@pytest.mark.parametrize("response_format", ["text", "srt", "vtt"])
def test_translation_text_formats(make_service, jfk_wav, response_format):
    service = make_service()
    response = translate(service, jfk_wav, {"response_format": response_format})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert "ask what you can do for your country." in response.text
    assert service.backend.calls[-1]["task"] == "translate"


@pytest.mark.parametrize("field, value", [
    ("language", "de"),
    ("timestamp_granularities[]", "word"),
])
def test_translation_refuses_transcription_only_fields(make_service, jfk_wav, field, value):
    service = make_service()
    response = translate(service, jfk_wav, {field: value})
    error = assert_openai_error(response, 400, param=field, code="unknown_parameter")
    assert field in error["message"]
    assert service.backend.calls == []


def test_translation_validates_the_shared_fields(make_service, jfk_wav):
    service = make_service()
    assert_openai_error(translate(service, jfk_wav, {"model": "large-v3"}), 400, param="model", code="model_not_found")
    assert_openai_error(translate(service, jfk_wav, {"response_format": "diarized_json"}), 400, param="response_format")
    with service.client as client:
        assert_openai_error(client.post(TRANSLATIONS_URL, data={"model": "whisper-1"}), 400, param="file", code="missing_file")


def test_transcriptions_still_run_the_transcribe_task(make_service, jfk_wav):
    service = make_service()
    assert service.transcribe(jfk_wav).status_code == 200
    assert service.backend.calls[-1]["task"] == "transcribe"


def test_english_only_model_cannot_translate(make_service, jfk_wav):
    service = make_service(backend=FakeWhisperBackend(
        transcribe_error=BackendInputError("model medium.en is English-only and cannot translate", param="model")))
    assert_openai_error(translate(service, jfk_wav), 400, param="model", code="invalid_value")
