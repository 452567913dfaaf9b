"""The one prompt loader: files, label list from labels.py, placeholders only for kept modalities."""

from __future__ import annotations

import pytest

from omni_mer.core.labels import LABEL_NAMES, LABELS
from omni_mer.omni.prompts import build_messages, label_list, load_prompt, user_text

ALL = frozenset({"text", "audio", "visual"})


def _types(messages):
    return [c["type"] for c in messages[1]["content"]]


def _text(messages):
    return [c["text"] for c in messages[1]["content"] if c["type"] == "text"][0]


@pytest.mark.parametrize("name", ["system", "user_en", "user_zh"])
def test_prompt_files_load(name):
    assert len(load_prompt(name)) > 40


def test_missing_prompt_is_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("OMNI_MER_PROMPTS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="OMNI_MER_PROMPTS"):
        load_prompt("system")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_label_list_comes_from_labels(lang):
    lines = label_list(lang).splitlines()
    assert len(lines) == len(LABELS)
    for line, label in zip(lines, LABELS):
        assert label in line and LABEL_NAMES[lang][label] in line


def test_user_text_has_format_and_all_labels():
    text = user_text("en", "great film", ALL, True, True)
    assert "<think></think>" in text and "<answer></answer>" in text
    assert all(label in text for label in LABELS)
    assert "{" not in text  # every placeholder filled


def test_transcript_only_when_text_kept():
    with_text = _text(build_messages("en", "I adore this phone", frozenset({"text"}), True, True))
    without = _text(build_messages("en", "I adore this phone", frozenset({"audio"}), True, True))
    assert "I adore this phone" in with_text
    assert "I adore this phone" not in without


def test_placeholders_follow_keep():
    assert _types(build_messages("en", "x", frozenset(), True, True)) == ["text"]
    assert _types(build_messages("en", "x", frozenset({"audio"}), True, True)) == ["audio", "text"]
    assert _types(build_messages("en", "x", frozenset({"visual"}), True, True)) == ["video", "text"]
    # audio rides inside the video placeholder (TMRoPE interleaving) …
    assert _types(build_messages("en", "x", ALL, True, True, use_audio_in_video=True)) == ["video", "text"]
    # … or is its own placeholder when the flag is off
    assert _types(build_messages("en", "x", ALL, True, True, use_audio_in_video=False)) == ["video", "audio", "text"]


def test_absent_streams_get_no_placeholder():
    assert _types(build_messages("en", "x", ALL, has_video=False, has_audio=True)) == ["audio", "text"]
    assert _types(build_messages("en", "x", ALL, has_video=True, has_audio=False)) == ["video", "text"]
    assert _types(build_messages("en", None, ALL, has_video=False, has_audio=False)) == ["text"]


def test_chinese_prompt():
    msgs = build_messages("zh", "这个很好", ALL, True, True)
    text = _text(msgs)
    assert "这个很好" in text and "强烈消极" in text
    assert msgs[0]["role"] == "system" and msgs[1]["role"] == "user"


def test_unknown_language_falls_back_to_english():
    assert "Transcript" in _text(build_messages("fr", "bien", ALL, True, True))
