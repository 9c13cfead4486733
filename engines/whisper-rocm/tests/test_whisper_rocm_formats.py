"""Output formats and language table, independent of HTTP."""

import pytest

from whisper_rocm_fakes import jfk_result
from whisper_rocm_service import formats
from whisper_rocm_service.languages import LANGUAGES, language_name, normalize_language


@pytest.mark.parametrize("seconds, srt, vtt", [
    (0.0, "00:00:00,000", "00:00:00.000"),
    (1.0, "00:00:01,000", "00:00:01.000"),
    (6.82, "00:00:06,820", "00:00:06.820"),
    (1.9996, "00:00:02,000", "00:00:02.000"),
    (59.9994, "00:00:59,999", "00:00:59.999"),
    (3725.5, "01:02:05,500", "01:02:05.500"),
    (-0.2, "00:00:00,000", "00:00:00.000"),
    (360000.25, "100:00:00,250", "100:00:00.250"),
])
def test_timestamps(seconds, srt, vtt):
    assert formats.format_timestamp(seconds, ",") == srt
    assert formats.format_timestamp(seconds, ".") == vtt


def test_srt_document():
    segments = jfk_result(11.0, "en", False)["segments"]
    assert formats.to_srt(segments) == (
        "1\n00:00:00,000 --> 00:00:06,820\n"
        "And so my fellow Americans, ask not what your country can do for you,\n"
        "\n"
        "2\n00:00:06,820 --> 00:00:11,000\n"
        "ask what you can do for your country.\n"
    )


def test_vtt_document():
    segments = jfk_result(11.0, "en", False)["segments"]
    assert formats.to_vtt(segments) == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:06.820\n"
        "And so my fellow Americans, ask not what your country can do for you,\n"
        "\n"
        "00:00:06.820 --> 00:00:11.000\n"
        "ask what you can do for your country.\n"
    )


def test_blank_segments_are_skipped_and_arrows_defused_in_subtitles():
    segments = [
        {"start": 0.0, "end": 1.0, "text": "  "},
        {"start": 1.0, "end": 2.5, "text": " a --> b"},
    ]
    srt = formats.to_srt(segments)
    assert srt == "1\n00:00:01,000 --> 00:00:02,500\na -> b\n"
    assert formats.to_vtt([]) == "WEBVTT\n"


def test_verbose_json_converts_types_and_drops_word_probability():
    result = jfk_result(11.0, "fr", True)
    result["segments"][0]["tokens"] = [50364.0, 400.0]
    body = formats.to_verbose_json(result, 11.0, ["segment", "word"])
    assert body["language"] == "french"
    assert body["segments"][0]["tokens"] == [50364, 400]
    assert all(isinstance(t, int) for t in body["segments"][0]["tokens"])
    assert "words" not in body["segments"][0]
    assert body["words"][0] == {"word": "And", "start": 0.0, "end": pytest.approx(0.49, abs=0.01)}


def test_verbose_json_default_granularity_is_segment():
    body = formats.to_verbose_json(jfk_result(5.0, "en", True), 5.0, [])
    assert "segments" in body and "words" not in body


def test_verbose_json_of_a_translation_names_the_output_language():
    # Whisper reports the spoken language (here German) also when it translated to English.
    body = formats.to_verbose_json(jfk_result(11.0, "de", False), 11.0, [], task="translate")
    assert body["task"] == "translate"
    assert body["language"] == "english"
    assert formats.to_verbose_json(jfk_result(11.0, "de", False), 11.0, [])["language"] == "german"


def test_language_table_matches_whisper():
    assert len(LANGUAGES) == 100
    assert list(LANGUAGES)[:3] == ["en", "zh", "de"]
    assert list(LANGUAGES)[-1] == "yue"
    assert language_name("en") == "english"
    assert language_name("haw") == "hawaiian"
    assert language_name("zz") == "zz"


@pytest.mark.parametrize("raw, code", [(None, None), ("", None), ("  ", None), ("en", "en"),
                                       (" DE ", "de"), ("yue", "yue")])
def test_normalize_language(raw, code):
    assert normalize_language(raw) == code


@pytest.mark.parametrize("raw", ["english", "xx", "en-US", "e"])
def test_normalize_language_rejects_non_codes(raw):
    with pytest.raises(ValueError):
        normalize_language(raw)
