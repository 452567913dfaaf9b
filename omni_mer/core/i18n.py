"""The two languages (English, Mandarin): which they are, how a language tag is read, what the modalities are
called in each. Clips, prompts, ASR language ID, the text head, rationales, the chat and the demo all use these."""

from __future__ import annotations

LANGUAGES: tuple[str, ...] = ("en", "zh")  # the languages of clips, prompts, ASR language ID and the text head

# How the modalities are named in sentences shown to people (rationales, chat answers); MODALITIES' order.
MODALITY_NAMES: dict[str, dict[str, str]] = {
    "en": {"text": "text", "audio": "voice", "visual": "face"},
    "zh": {"text": "文本", "audio": "语音", "visual": "面部"},
}


def language_code(language: str | None) -> str:
    """One of LANGUAGES for a language tag: "zh", "zh-CN", "ZH_tw" -> "zh"; anything else (None included) -> "en"."""
    code = (language or "").strip().lower()[:2]
    return code if code in LANGUAGES else LANGUAGES[0]
