"""THE prompt loader: inference, training and the demo all build their chat messages here.

Prompt texts live in ONE place, the package data folder ``omni_mer/prompt_texts/`` (system.txt, user_en.txt,
user_zh.txt), read with ``importlib.resources`` so an installed wheel carries them; set ``OMNI_MER_PROMPTS`` to use
another folder. The label list in the prompt is generated from ``omni_mer.core.labels``.
"""

from __future__ import annotations

import functools
import os
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from omni_mer.core.config import MODALITIES, MediaConfig
from omni_mer.core.i18n import language_code
from omni_mer.core.labels import LABEL_NAMES, LABELS

PROMPTS_ENV = "OMNI_MER_PROMPTS"
PROMPTS_PACKAGE_DIR = "prompt_texts"  # omni_mer/prompt_texts/ (package data; see pyproject.toml)

_MODALITY_WORDS = {
    "en": {
        "text": "the transcript of what was said",
        "audio": "the audio track (tone of voice)",
        "visual": "the video frames (the speaker's face)",
        "none": "nothing but this instruction (give your best guess)",
        "sep": "; ",
        "transcript": 'Transcript: "{t}"',
        "no_transcript": "No transcript is given.",
    },
    "zh": {
        "text": "说话内容的转写文本",
        "audio": "音频（语气语调）",
        "visual": "视频画面（说话人的面部）",
        "none": "除本指令外没有任何信息（请给出最可能的判断）",
        "sep": "；",
        "transcript": "转写文本：“{t}”",
        "no_transcript": "没有提供转写文本。",
    },
}


def prompts_dir() -> Traversable:
    """The folder prompt files are read from: ``$OMNI_MER_PROMPTS`` or the package's ``prompt_texts/``."""
    env = os.environ.get(PROMPTS_ENV)
    if env:
        return Path(env)
    return resources.files("omni_mer") / PROMPTS_PACKAGE_DIR


@functools.lru_cache(maxsize=None)
def _read(path: Traversable) -> str:
    return path.read_text(encoding="utf-8").strip()


def load_prompt(name: str) -> str:
    """Text of ``<prompts_dir>/<name>.txt`` (``name`` like "system", "user_en", "user_zh"), stripped."""
    path = prompts_dir() / f"{name}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"prompt file {path} not found (set {PROMPTS_ENV} to the prompts folder)")
    return _read(path)


def label_list(language: str) -> str:
    """One line per label, ``CODE: name`` in the clip's language, in LABELS order."""
    lang = language_code(language)
    sep = "：" if lang == "zh" else ": "
    return "\n".join(f"- {label}{sep}{LABEL_NAMES[lang][label]}" for label in LABELS)


def user_text(language: str, transcript: str | None, keep: frozenset[str], has_video: bool, has_audio: bool) -> str:
    """The user instruction: which modalities are given, the transcript when text is kept, the labels, the format."""
    lang = language_code(language)
    words = _MODALITY_WORDS[lang]
    present = []
    for m in MODALITIES:
        if m not in keep:
            continue
        if m == "text" and transcript is not None and transcript.strip():
            present.append(words[m])
        elif m == "audio" and has_audio:
            present.append(words[m])
        elif m == "visual" and has_video:
            present.append(words[m])
    if "text" in keep and transcript is not None and transcript.strip():
        transcript_line = words["transcript"].format(t=transcript.strip())
    else:
        transcript_line = words["no_transcript"]
    return load_prompt(f"user_{lang}").format(
        modalities=words["sep"].join(present) if present else words["none"],
        transcript=transcript_line,
        labels=label_list(lang),
        example_label=LABELS[len(LABELS) // 2],
    )


def build_messages(
    language: str,
    transcript: str | None,
    keep: frozenset[str],
    has_video: bool,
    has_audio: bool,
    use_audio_in_video: bool | None = None,
) -> list[dict]:
    """Chat messages in the Qwen2.5-Omni format with placeholders only for kept, present modalities.

    ``keep`` ⊆ {"text","audio","visual"}: text = transcript in the prompt, audio = the audio track, visual = frames.
    When video and audio are both used and ``use_audio_in_video`` (default: MediaConfig's) is on, the audio rides
    inside the video placeholder (Qwen's interleaved TMRoPE) and no separate audio placeholder is emitted; the
    processor call, forward and generate must then all use the same flag (see omni_mer.omni.inputs).
    """
    if use_audio_in_video is None:
        use_audio_in_video = MediaConfig().use_audio_in_video
    use_video = "visual" in keep and has_video
    use_audio = "audio" in keep and has_audio
    content: list[dict] = []
    if use_video:
        content.append({"type": "video"})
    if use_audio and not (use_video and use_audio_in_video):
        content.append({"type": "audio"})
    content.append({"type": "text", "text": user_text(language, transcript, keep, has_video, has_audio)})
    return [
        {"role": "system", "content": [{"type": "text", "text": load_prompt("system")}]},
        {"role": "user", "content": content},
    ]


def uses_audio_in_video(keep: frozenset[str], has_video: bool, has_audio: bool, media: MediaConfig) -> bool:
    """The effective ``use_audio_in_video`` of one call: on only when both streams are used and the config says so."""
    return bool(media.use_audio_in_video and "visual" in keep and has_video and "audio" in keep and has_audio)
