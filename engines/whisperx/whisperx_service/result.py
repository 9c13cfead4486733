"""The JSON result in WhisperX's shape, built from whatever the backend produced.

Shape (times float seconds, rounded to milliseconds)::

    {"language": "en",
     "segments": [{"start": 0.0, "end": 2.5, "text": " ...", "speaker": "SPEAKER_00",
                   "words": [{"word": "...", "start": 0.1, "end": 0.4, "score": 0.93,
                              "speaker": "SPEAKER_00"},
                             {"word": "1984"}]}]}

``speaker`` appears only with diarization. A word the aligner could not place keeps
only the keys it has: no time is ever made up for it.
"""

import math
from typing import Any, Dict, Iterable, List, Optional


def _finite(value: Any) -> Optional[float]:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _word(raw: Dict[str, Any]) -> Dict[str, Any]:
    word: Dict[str, Any] = {"word": str(raw.get("word", ""))}
    for key, digits in (("start", 3), ("end", 3), ("score", 3)):
        value = _finite(raw.get(key))
        if value is not None:
            word[key] = round(value, digits)
    if raw.get("speaker") is not None:
        word["speaker"] = str(raw["speaker"])
    return word


def build_result(language: str, segments: Iterable[Dict[str, Any]]) -> Dict[str, Any]:
    """Normalise backend segments into the service's JSON result.

    Keeps start, end, text, speaker and words (word, start, end, score, speaker);
    drops backend extras (``chars``, ``avg_logprob``) and NaN/None values.

    A segment whose start or end is missing (WhisperX's aligner leaves NaN when no
    character of a sentence could be placed) takes the previous segment's end as its
    start and its own start as its end: segment times must exist for subtitles, and
    this is the only choice that keeps them ordered.
    """
    result: List[Dict[str, Any]] = []
    previous_end = 0.0
    for raw in segments:
        start = _finite(raw.get("start"))
        start = previous_end if start is None else start
        end = _finite(raw.get("end"))
        end = start if end is None else max(end, start)
        segment: Dict[str, Any] = {
            "start": round(start, 3),
            "end": round(end, 3),
            "text": str(raw.get("text", "")),
        }
        if raw.get("speaker") is not None:
            segment["speaker"] = str(raw["speaker"])
        segment["words"] = [_word(w) for w in raw.get("words") or []]
        result.append(segment)
        previous_end = end
    return {"language": language, "segments": result}
