"""Result normalisation and the txt/vtt/srt/tsv/json writers."""

import json
import math

import pytest

from whisperx_service.formats import format_timestamp, render
from whisperx_service.result import build_result

RESULT = build_result("en", [
    {"start": 0.0, "end": 1.5, "text": " Hello there.", "speaker": "SPEAKER_00",
     "words": [{"word": "Hello", "start": 0.1, "end": 0.5, "score": 0.91, "speaker": "SPEAKER_00"},
               {"word": "there.", "start": 0.6, "end": 1.4, "score": 0.88, "speaker": "SPEAKER_00"}]},
    {"start": 3661.234, "end": 3662.0, "text": " Up 50% --> down\tnow", "speaker": "SPEAKER_01",
     "words": [{"word": "Up", "start": 3661.3, "end": 3661.5, "score": 0.7, "speaker": "SPEAKER_01"},
               {"word": "50%"}]},
])


def test_format_timestamp():
    assert format_timestamp(0) == "00:00.000"
    assert format_timestamp(3.2834) == "00:03.283"
    assert format_timestamp(59.9996) == "01:00.000"
    assert format_timestamp(3661.2345) == "01:01:01.234"
    assert format_timestamp(1.5, always_include_hours=True, decimal_marker=",") == "00:00:01,500"
    with pytest.raises(ValueError):
        format_timestamp(-0.1)


def test_txt():
    assert render(RESULT, "txt") == "[SPEAKER_00]: Hello there.\n[SPEAKER_01]: Up 50% --> down\tnow\n"


def test_srt():
    assert render(RESULT, "srt") == (
        "1\n00:00:00,000 --> 00:00:01,500\n[SPEAKER_00]: Hello there.\n\n"
        "2\n01:01:01,234 --> 01:01:02,000\n[SPEAKER_01]: Up 50% -> down\tnow\n\n"
    )


def test_vtt():
    assert render(RESULT, "vtt") == (
        "WEBVTT\n\n"
        "00:00.000 --> 00:01.500\n[SPEAKER_00]: Hello there.\n\n"
        "01:01:01.234 --> 01:01:02.000\n[SPEAKER_01]: Up 50% -> down\tnow\n\n"
    )


def test_tsv():
    assert render(RESULT, "tsv") == "start\tend\ttext\n0\t1500\tHello there.\n3661234\t3662000\tUp 50% --> down now\n"


def test_json_keeps_non_ascii_and_shape():
    result = build_result("de", [{"start": 0, "end": 1, "text": " Grüße", "words": [{"word": "Grüße", "start": 0.0, "end": 1.0, "score": 0.5}]}])
    text = render(result, "json")
    assert "Grüße" in text
    assert json.loads(text) == {
        "language": "de",
        "segments": [{"start": 0.0, "end": 1.0, "text": " Grüße",
                      "words": [{"word": "Grüße", "start": 0.0, "end": 1.0, "score": 0.5}]}],
    }


def test_empty_result_renders_empty_documents():
    empty = build_result("en", [])
    assert render(empty, "txt") == ""
    assert render(empty, "srt") == ""
    assert render(empty, "vtt") == "WEBVTT\n\n"
    assert render(empty, "tsv") == "start\tend\ttext\n"
    assert json.loads(render(empty, "json")) == {"language": "en", "segments": []}


def test_build_result_never_invents_word_times():
    result = build_result("en", [{
        "start": 1.0, "end": 2.0, "text": " In 1984 it cost 5 $.",
        "words": [
            {"word": "In", "start": 1.0, "end": 1.2, "score": 0.9},
            {"word": "1984"},
            {"word": "it", "start": 1.5, "end": float("nan"), "score": None},
            {"word": "$."},
        ],
        "chars": None,
        "avg_logprob": -0.3,
    }])
    words = result["segments"][0]["words"]
    assert words == [
        {"word": "In", "start": 1.0, "end": 1.2, "score": 0.9},
        {"word": "1984"},
        {"word": "it", "start": 1.5},
        {"word": "$."},
    ]
    assert set(result["segments"][0]) == {"start", "end", "text", "words"}


def test_build_result_fills_missing_segment_times_in_order():
    result = build_result("en", [
        {"start": 0.0, "end": 2.0, "text": " a", "words": []},
        {"start": float("nan"), "end": math.nan, "text": " 42"},
        {"start": 5.0, "end": 4.0, "text": " b"},
    ])
    times = [(s["start"], s["end"]) for s in result["segments"]]
    assert times == [(0.0, 2.0), (2.0, 2.0), (5.0, 5.0)]
    assert result["segments"][1]["words"] == []


def test_times_are_plain_floats_rounded_to_milliseconds():
    result = build_result("en", [{"start": 1.23456, "end": 2.00049, "text": "x",
                                  "words": [{"word": "x", "start": 1.23456, "end": 2.00049, "score": 0.98765}]}])
    segment = result["segments"][0]
    assert (segment["start"], segment["end"]) == (1.235, 2.0)
    assert segment["words"][0] == {"word": "x", "start": 1.235, "end": 2.0, "score": 0.988}
