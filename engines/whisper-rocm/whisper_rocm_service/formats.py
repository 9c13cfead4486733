"""Rendering an openai-whisper result in the OpenAI transcription ``response_format``s.

Input everywhere is the dict ``whisper.transcribe`` returns::

    {"text": str, "language": str (code),
     "segments": [{"id", "seek", "start", "end", "text", "tokens", "temperature",
                   "avg_logprob", "compression_ratio", "no_speech_prob",
                   "words"?: [{"word", "start", "end", "probability"}]}]}

with times in float seconds from the start of the audio.
"""

from typing import Any, Dict, Iterable, List, Mapping, Sequence, Tuple

from .languages import language_name

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
TIMESTAMP_GRANULARITIES = ("segment", "word")

TEXT_MEDIA_TYPE = "text/plain; charset=utf-8"


def format_timestamp(seconds: float, decimal_marker: str) -> str:
    """``HH:MM:SS<marker>mmm`` for a time in seconds.

    SRT uses ``,`` (``00:00:01,000``), WebVTT ``.`` (``00:00:01.000``). The time is
    rounded to whole milliseconds before splitting, so 1.9996 s gives ``00:00:02,000``
    rather than ``00:00:01,1000``; negative times clamp to zero. Hours are always written
    and may exceed 99.
    """
    total_ms = max(0, int(round(float(seconds) * 1000.0)))
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return "%02d:%02d:%02d%s%03d" % (hours, minutes, secs, decimal_marker, millis)


def _cues(segments: Iterable[Mapping[str, Any]]) -> List[Tuple[float, float, str]]:
    """(start s, end s, text) per segment with text; ``-->`` in the text would end a cue
    line early in both subtitle formats, so it is defused the way Whisper's writers do."""
    cues = []
    for segment in segments:
        text = str(segment.get("text", "")).strip().replace("-->", "->")
        if text:
            cues.append((float(segment["start"]), float(segment["end"]), text))
    return cues


def to_srt(segments: Sequence[Mapping[str, Any]]) -> str:
    """SubRip text: one numbered cue per segment, numbering from 1, times with ``,``.

    Segments whose text is blank are left out (a cue without text is invalid SRT).
    """
    blocks = []
    for index, (start, end, text) in enumerate(_cues(segments), start=1):
        blocks.append(
            "%d\n%s --> %s\n%s\n"
            % (index, format_timestamp(start, ","), format_timestamp(end, ","), text)
        )
    return "\n".join(blocks)


def to_vtt(segments: Sequence[Mapping[str, Any]]) -> str:
    """WebVTT text: the ``WEBVTT`` header, a blank line, then one cue per segment with
    ``.`` as the millisecond separator."""
    out = ["WEBVTT\n"]
    for start, end, text in _cues(segments):
        out.append(
            "%s --> %s\n%s\n" % (format_timestamp(start, "."), format_timestamp(end, "."), text)
        )
    return "\n".join(out)


def transcript_text(result: Mapping[str, Any]) -> str:
    """The whole transcript as one string without Whisper's leading space."""
    return str(result.get("text", "")).strip()


def _segment_view(segment: Mapping[str, Any]) -> Dict[str, Any]:
    """One OpenAI ``verbose_json`` segment: exactly the OpenAI fields, JSON types only."""
    return {
        "id": int(segment.get("id", 0)),
        "seek": int(segment.get("seek", 0)),
        "start": float(segment["start"]),
        "end": float(segment["end"]),
        "text": str(segment.get("text", "")),
        "tokens": [int(token) for token in segment.get("tokens", [])],
        "temperature": float(segment.get("temperature", 0.0)),
        "avg_logprob": float(segment.get("avg_logprob", 0.0)),
        "compression_ratio": float(segment.get("compression_ratio", 0.0)),
        "no_speech_prob": float(segment.get("no_speech_prob", 0.0)),
    }


def _words(segments: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """All word timings across segments as ``{word, start, end}`` (seconds).

    Whisper keeps the leading space on each word (``" fellow"``); OpenAI does not.
    ``probability`` is dropped because OpenAI's word objects have no such field.
    """
    words = []
    for segment in segments:
        for word in segment.get("words") or []:
            text = str(word.get("word", "")).strip()
            if text:
                words.append(
                    {"word": text, "start": float(word["start"]), "end": float(word["end"])}
                )
    return words


def to_verbose_json(result: Mapping[str, Any], duration: float,
                    granularities: Sequence[str], task: str = "transcribe") -> Dict[str, Any]:
    """OpenAI ``verbose_json``: ``{task, language, duration, text, segments?, words?}``.

    ``language`` is the full English name (``"english"``) as OpenAI reports it; for
    ``task="translate"`` it is the output's language, always ``"english"`` (OpenAI's
    ``TranslationVerbose``), whatever language was spoken;
    ``duration`` is the decoded audio's length in seconds. Following OpenAI,
    ``segments`` is present unless only word granularity was requested, and ``words`` is
    present only when word granularity was requested. An empty ``granularities`` means
    the default, ``["segment"]``.
    """
    wanted = set(granularities) or {"segment"}
    segments = result.get("segments") or []
    language = "en" if task == "translate" else str(result.get("language") or "")
    body: Dict[str, Any] = {
        "task": task,
        "language": language_name(language),
        "duration": float(duration),
        "text": transcript_text(result),
    }
    if "segment" in wanted:
        body["segments"] = [_segment_view(segment) for segment in segments]
    if "word" in wanted:
        body["words"] = _words(segments)
    return body
