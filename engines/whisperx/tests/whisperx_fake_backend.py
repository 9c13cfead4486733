"""A stand-in for the WhisperX model stack that behaves like it where the service cares.

It returns what WhisperX 3.3.1 returns for the shared fixtures: segments on the real
speech turns of the audio, word alignment that leaves digits and symbols without
start/end/score, pyannote-style speakers ``SPEAKER_00``/``SPEAKER_01`` taken from the
fixture's RTTM reference, and an auto-detected language. It records every call.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from whisperx_service.errors import AlignmentUnavailable, EngineUnavailable

JFK_TEXT = (
    " And so, my fellow Americans, ask not what your country can do for you,"
    " ask what you can do for your country."
)


@dataclass
class Turn:
    start: float
    end: float
    speaker: str


@dataclass
class Call:
    name: str
    args: Dict[str, Any]


def read_rttm(path: Path) -> List[Turn]:
    """Speaker turns of an RTTM file, speakers renamed SPEAKER_00... in order of appearance."""
    names: Dict[str, str] = {}
    turns = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if not fields or fields[0] != "SPEAKER":
            continue
        start, duration, label = float(fields[3]), float(fields[4]), fields[7]
        speaker = names.setdefault(label, f"SPEAKER_{len(names):02d}")
        turns.append(Turn(start, start + duration, speaker))
    return turns


def _alignable(token: str) -> bool:
    # The English wav2vec2 dictionary holds letters and the apostrophe only; a token
    # without any of them ("1984.", "100%") cannot be placed, exactly as in WhisperX.
    return re.search(r"[A-Za-z']", token) is not None


class FakeWhisperX:
    """ModelBackend double. ``script``: (duration_s, [(start, end, text)]) per known clip;
    the clip whose duration is closest to the request's audio is used."""

    device = "cpu"
    compute_type = "int8"

    def __init__(
        self,
        scripts: Sequence[Tuple[float, List[Tuple[float, float, str]]]],
        turns: Sequence[Turn],
        detected_language: str = "en",
        language_probability: float = 0.968,
        languages_without_aligner: Sequence[str] = ("sw",),
    ):
        self.scripts = list(scripts)
        self.turns = list(turns)
        self.detected_language = detected_language
        self.language_probability = language_probability
        self.languages_without_aligner = set(languages_without_aligner)
        self.calls: List[Call] = []
        self.loads: List[Tuple[str, str]] = []
        self.memory_releases = 0
        self.failing_models: set = set()

    @classmethod
    def for_fixtures(cls, audio_dir: Path) -> "FakeWhisperX":
        turns = read_rttm(audio_dir / "tts" / "dialogue_2spk.rttm")
        lines = (audio_dir / "tts" / "harvard.txt").read_text().splitlines()
        # Whisper writes some numbers as digits; two lines carry tokens the aligner
        # cannot place.
        lines[6] = lines[6].rstrip(".") + " in 1984."
        lines[9] = "A large size in stockings is 100% hard to sell."
        dialogue = [(t.start, t.end, " " + text) for t, text in zip(turns, lines)]
        jfk = [(0.0, 10.5, JFK_TEXT)]
        return cls(scripts=[(11.0, jfk), (32.0, dialogue)], turns=turns)

    def calls_to(self, name: str) -> List[Dict[str, Any]]:
        return [call.args for call in self.calls if call.name == name]

    # -- loading -------------------------------------------------------------------

    def load_whisper(self, name: str) -> Any:
        if name in self.failing_models:
            raise EngineUnavailable(f"Whisper model {name!r} could not be loaded: download failed")
        self.loads.append(("whisper", name))
        return {"kind": "whisper", "name": name}

    def load_aligner(self, language: str) -> Any:
        if language in self.languages_without_aligner:
            raise AlignmentUnavailable(f"WhisperX has no alignment model for language {language!r}")
        self.loads.append(("align", language))
        return {"kind": "align", "language": language}

    def load_diarizer(self, name: str) -> Any:
        self.loads.append(("diarization", name))
        return {"kind": "diarization", "name": name}

    def release_memory(self) -> None:
        self.memory_releases += 1

    # -- running -------------------------------------------------------------------

    def transcribe(self, whisper_model, audio, language, task, initial_prompt, batch_size):
        self.calls.append(Call("transcribe", {
            "model": whisper_model["name"], "language": language, "task": task,
            "initial_prompt": initial_prompt, "batch_size": batch_size,
            "num_samples": audio.num_samples, "audio": audio,
        }))
        duration = audio.duration_s
        _, script = min(self.scripts, key=lambda entry: abs(entry[0] - duration))
        segments = [
            {"start": start, "end": min(end, duration), "text": text, "avg_logprob": -0.21}
            for start, end, text in script
            if start < duration
        ]
        return {"segments": segments, "language": language or self.detected_language}

    def align(self, aligner, segments, audio):
        self.calls.append(Call("align", {"language": aligner["language"], "segments": len(segments)}))
        aligned = []
        for segment in segments:
            tokens = segment["text"].split()
            slot = (segment["end"] - segment["start"]) / max(len(tokens), 1)
            words = []
            for index, token in enumerate(tokens):
                word: Dict[str, Any] = {"word": token}
                if _alignable(token):
                    start = segment["start"] + index * slot
                    word.update(start=round(start, 3), end=round(start + 0.8 * slot, 3),
                                score=round(0.6 + 0.03 * (index % 10), 3))
                words.append(word)
            timed = [w for w in words if "start" in w]
            aligned.append({
                "start": timed[0]["start"] if timed else segment["start"],
                "end": timed[-1]["end"] if timed else segment["end"],
                "text": segment["text"],
                "words": words,
                "chars": None,
            })
        return aligned

    def diarize(self, diarizer, audio, segments, min_speakers, max_speakers):
        self.calls.append(Call("diarize", {
            "min_speakers": min_speakers, "max_speakers": max_speakers,
            "num_samples": audio.num_samples,
        }))
        for segment in segments:
            speaker = self._speaker(segment["start"], segment["end"])
            if speaker:
                segment["speaker"] = speaker
            for word in segment.get("words", []):
                # Like whisperx.assign_word_speakers: only words with times get a speaker.
                if "start" in word:
                    speaker = self._speaker(word["start"], word["end"])
                    if speaker:
                        word["speaker"] = speaker
        return segments

    def detect_language(self, whisper_model, audio):
        self.calls.append(Call("detect_language", {
            "model": whisper_model["name"], "num_samples": audio.num_samples,
        }))
        return self.detected_language, self.language_probability

    def _speaker(self, start: float, end: float) -> Optional[str]:
        overlap: Dict[str, float] = {}
        for turn in self.turns:
            shared = min(end, turn.end) - max(start, turn.start)
            if shared > 0:
                overlap[turn.speaker] = overlap.get(turn.speaker, 0.0) + shared
        return max(overlap, key=overlap.get) if overlap else None
