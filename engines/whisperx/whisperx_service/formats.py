"""Text renderings of a result, byte-compatible with whisper-asr-webservice.

All writers read the normalised result of ``result.build_result``. One subtitle cue
per segment (whisper-asr-webservice's defaults: no line-width limit, no word
highlighting). With diarization, txt/srt/vtt prefix each line with ``[SPEAKER_00]: ``
as WhisperX's writers do; tsv stays ``start<TAB>end<TAB>text`` in integer
milliseconds.
"""

import json
from typing import Any, Callable, Dict, Iterator, List, Tuple

OUTPUT_FORMATS = ("txt", "vtt", "srt", "tsv", "json")


def format_timestamp(seconds: float, always_include_hours: bool = False, decimal_marker: str = ".") -> str:
    """``[HH:]MM:SS.mmm`` from seconds, rounded to the millisecond.

    Hours appear when ``always_include_hours`` (SRT) or when non-zero (VTT).

    Raises:
        ValueError: negative time.
    """
    if seconds < 0:
        raise ValueError(f"non-negative timestamp expected, got {seconds}")
    milliseconds = round(seconds * 1000.0)
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    whole_seconds, milliseconds = divmod(milliseconds, 1_000)
    hours_marker = f"{hours:02d}:" if always_include_hours or hours > 0 else ""
    return f"{hours_marker}{minutes:02d}:{whole_seconds:02d}{decimal_marker}{milliseconds:03d}"


def _line(segment: Dict[str, Any]) -> str:
    text = segment["text"].strip()
    speaker = segment.get("speaker")
    return f"[{speaker}]: {text}" if speaker is not None else text


def _cues(result: Dict[str, Any]) -> Iterator[Tuple[float, float, str]]:
    for segment in result["segments"]:
        # "-->" inside a cue would end the cue's timing line for SRT/VTT parsers.
        yield segment["start"], segment["end"], _line(segment).replace("-->", "->")


def write_txt(result: Dict[str, Any]) -> str:
    return "".join(_line(segment) + "\n" for segment in result["segments"])


def write_vtt(result: Dict[str, Any]) -> str:
    parts: List[str] = ["WEBVTT\n\n"]
    for start, end, text in _cues(result):
        parts.append(f"{format_timestamp(start)} --> {format_timestamp(end)}\n{text}\n\n")
    return "".join(parts)


def write_srt(result: Dict[str, Any]) -> str:
    parts: List[str] = []
    for index, (start, end, text) in enumerate(_cues(result), start=1):
        span = (
            f"{format_timestamp(start, always_include_hours=True, decimal_marker=',')} --> "
            f"{format_timestamp(end, always_include_hours=True, decimal_marker=',')}"
        )
        parts.append(f"{index}\n{span}\n{text}\n\n")
    return "".join(parts)


def write_tsv(result: Dict[str, Any]) -> str:
    # Integer milliseconds, so no locale can turn a decimal point into a comma.
    parts = ["start\tend\ttext\n"]
    for segment in result["segments"]:
        text = segment["text"].strip().replace("\t", " ")
        parts.append(f"{round(1000 * segment['start'])}\t{round(1000 * segment['end'])}\t{text}\n")
    return "".join(parts)


def write_json(result: Dict[str, Any]) -> str:
    return json.dumps(result, ensure_ascii=False)


_WRITERS: Dict[str, Callable[[Dict[str, Any]], str]] = {
    "txt": write_txt,
    "vtt": write_vtt,
    "srt": write_srt,
    "tsv": write_tsv,
    "json": write_json,
}


def render(result: Dict[str, Any], output: str) -> str:
    """The result as text in ``output`` format (one of OUTPUT_FORMATS).

    Raises:
        KeyError: unknown format (callers validate first).
    """
    return _WRITERS[output](result)
