"""Whisper's language table, kept as a static copy.

The service validates ``language`` before any model is involved, and the HTTP layer must
import without openai-whisper installed, so it cannot read ``whisper.tokenizer.LANGUAGES``
at request time. The table below is the one shipped with openai-whisper 20240930 (99
languages plus Cantonese, which only the large-v3 vocabulary covers); the order matters
because Whisper derives language token ids from it.
"""

from typing import Dict, Optional

LANGUAGES: Dict[str, str] = {
    "en": "english",
    "zh": "chinese",
    "de": "german",
    "es": "spanish",
    "ru": "russian",
    "ko": "korean",
    "fr": "french",
    "ja": "japanese",
    "pt": "portuguese",
    "tr": "turkish",
    "pl": "polish",
    "ca": "catalan",
    "nl": "dutch",
    "ar": "arabic",
    "sv": "swedish",
    "it": "italian",
    "id": "indonesian",
    "hi": "hindi",
    "fi": "finnish",
    "vi": "vietnamese",
    "he": "hebrew",
    "uk": "ukrainian",
    "el": "greek",
    "ms": "malay",
    "cs": "czech",
    "ro": "romanian",
    "da": "danish",
    "hu": "hungarian",
    "ta": "tamil",
    "no": "norwegian",
    "th": "thai",
    "ur": "urdu",
    "hr": "croatian",
    "bg": "bulgarian",
    "lt": "lithuanian",
    "la": "latin",
    "mi": "maori",
    "ml": "malayalam",
    "cy": "welsh",
    "sk": "slovak",
    "te": "telugu",
    "fa": "persian",
    "lv": "latvian",
    "bn": "bengali",
    "sr": "serbian",
    "az": "azerbaijani",
    "sl": "slovenian",
    "kn": "kannada",
    "et": "estonian",
    "mk": "macedonian",
    "br": "breton",
    "eu": "basque",
    "is": "icelandic",
    "hy": "armenian",
    "ne": "nepali",
    "mn": "mongolian",
    "bs": "bosnian",
    "kk": "kazakh",
    "sq": "albanian",
    "sw": "swahili",
    "gl": "galician",
    "mr": "marathi",
    "pa": "punjabi",
    "si": "sinhala",
    "km": "khmer",
    "sn": "shona",
    "yo": "yoruba",
    "so": "somali",
    "af": "afrikaans",
    "oc": "occitan",
    "ka": "georgian",
    "be": "belarusian",
    "tg": "tajik",
    "sd": "sindhi",
    "gu": "gujarati",
    "am": "amharic",
    "yi": "yiddish",
    "lo": "lao",
    "uz": "uzbek",
    "fo": "faroese",
    "ht": "haitian creole",
    "ps": "pashto",
    "tk": "turkmen",
    "nn": "nynorsk",
    "mt": "maltese",
    "sa": "sanskrit",
    "lb": "luxembourgish",
    "my": "myanmar",
    "bo": "tibetan",
    "tl": "tagalog",
    "mg": "malagasy",
    "as": "assamese",
    "tt": "tatar",
    "haw": "hawaiian",
    "ln": "lingala",
    "ha": "hausa",
    "ba": "bashkir",
    "jw": "javanese",
    "su": "sundanese",
    "yue": "cantonese",
}


def normalize_language(value: Optional[str]) -> Optional[str]:
    """Return the Whisper language code for a request's ``language`` field.

    ``value`` is an ISO-639-1 code as the OpenAI API takes it (``"en"``, ``"de"``; Whisper
    also uses the three-letter ``"haw"`` and ``"yue"``); case and surrounding blanks are
    ignored. ``None`` or an empty string means "detect the language" and gives ``None``.

    Raises ``ValueError`` for a code Whisper does not know, including full language names
    such as ``"english"``: the API contract is codes only, and accepting names would hide
    client bugs that OpenAI itself rejects.
    """
    if value is None:
        return None
    code = value.strip().lower()
    if not code:
        return None
    if code not in LANGUAGES:
        raise ValueError(code)
    return code


def language_name(code: str) -> str:
    """Full lower-case English name for a Whisper language code (``"en"`` → ``"english"``).

    OpenAI's ``verbose_json`` reports the language this way. An unknown code is returned
    unchanged rather than raising, because the code comes from the model's own detection.
    """
    return LANGUAGES.get(code, code)
