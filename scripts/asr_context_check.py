"""How much of Whisper's 30 s window the encoder needs: word error rate and time per clip, full window vs trimmed.

``Transcriber(encoder_pad_s=...)`` encodes a clip's audio plus ``encoder_pad_s`` seconds of the window padding
instead of the whole 30 s window. This script measures what that costs in accuracy on project-made speech:

- 20 English sentences from espeak-ng (three voices), each clean and with white noise at 10 dB SNR;
- one 29 s and one 45 s utterance (the 45 s one spans two windows: the seek path);
- 10 Mandarin sentences spoken from tone-numbered pinyin (Whisper base hears this voice poorly in every setting:
  reported for completeness, not as a Mandarin benchmark).

It writes ``docs/asr_context.md`` and ``docs/asr_context.json``. Needs Debian's ``espeak-ng`` (``apt-get install espeak-ng``; setup does not install it).
Run on an idle machine: ``.venv/bin/python scripts/asr_context_check.py`` (~5 min on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from make_samples import speak  # noqa: E402

from omni_mer.core.clip import Clip  # noqa: E402
from omni_mer.evidence.asr import Transcriber  # noqa: E402

EN = [
    "I absolutely love this movie, the acting was brilliant.",
    "This was the worst meal I have ever had.",
    "The package arrived on Monday, as expected.",
    "Honestly, I am a little disappointed with the ending.",
    "We are so proud of what the team achieved this year.",
    "I don't think this product is worth the money.",
    "The lecture starts at nine and ends at eleven.",
    "What a fantastic surprise, thank you so much!",
    "He was rude to everyone and never apologized.",
    "It was okay, nothing special, but not bad either.",
    "My phone battery dies after only two hours.",
    "The hotel staff were friendly and the room was clean.",
    "I hate waiting in line for hours just to be ignored.",
    "The weather today is cloudy with a chance of rain.",
    "This is the happiest day of my life.",
    "Frankly, the service was slow and the food was cold.",
    "She explained the results clearly and calmly.",
    "I'm not sure how I feel about the new policy.",
    "The children loved the show and laughed the whole time.",
    "Nothing works, and support never answers my emails.",
]
# (characters, tone-numbered pinyin): Debian's cmn dictionary is partial, so Mandarin is spoken from pinyin.
ZH = [
    ("我今天非常开心，这个结果太好了。", "wo3 jin1 tian1 fei1 chang2 kai1 xin1, zhe4 ge5 jie2 guo3 tai4 hao3 le5."),
    ("这部电影真的很无聊，我很失望。", "zhe4 bu4 dian4 ying3 zhen1 de5 hen3 wu2 liao2, wo3 hen3 shi1 wang4."),
    ("会议在星期二下午三点开始。", "hui4 yi4 zai4 xing1 qi1 er4 xia4 wu3 san1 dian3 kai1 shi3."),
    ("服务员态度很差，我再也不来了。", "fu2 wu4 yuan2 tai4 du4 hen3 cha4, wo3 zai4 ye3 bu4 lai2 le5."),
    ("谢谢你们，我觉得非常幸福。", "xie4 xie4 ni3 men5, wo3 jue2 de5 fei1 chang2 xing4 fu2."),
    ("这个价格还可以，质量一般。", "zhe4 ge5 jia4 ge2 hai2 ke3 yi3, zhi4 liang4 yi4 ban1."),
    ("我真的很讨厌这种天气。", "wo3 zhen1 de5 hen3 tao3 yan4 zhe4 zhong3 tian1 qi4."),
    ("孩子们玩得很高兴。", "hai2 zi5 men5 wan2 de2 hen3 gao1 xing4."),
    ("他说的话让我很难过。", "ta1 shuo1 de5 hua4 rang4 wo3 hen3 nan2 guo4."),
    ("明天我们去公园散步吧。", "ming2 tian1 wo3 men5 qu4 gong1 yuan2 san4 bu4 ba5."),
]
VOICES = [("en-us", 160, 50), ("en-gb", 140, 40), ("en-us+f3", 180, 70)]
SETTINGS = [None, 0.0, 1.0, 3.0, 5.0]  # encoder_pad_s; None = the full 30 s window


def edit_rate(ref: str, hyp: str, chars: bool) -> tuple[int, int]:
    """(edits, reference length) in words, or in characters for Mandarin; case and punctuation ignored."""
    def norm(s: str) -> list[str]:
        s = re.sub(r"[^\w\s]", "", s.lower())
        return list(s.replace(" ", "")) if chars else s.split()

    r, h = norm(ref), norm(hyp)
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            cur = d[j]
            d[j] = min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
            prev = cur
    return d[len(h)], len(r)


def utterances(seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    items = []
    clean = []
    for i, text in enumerate(EN):
        voice, speed, pitch = VOICES[i % len(VOICES)]
        audio = speak(text, voice, speed, pitch)
        clean.append(audio)
        items.append({"kind": "en clean", "lang": "en", "ref": text, "audio": audio})
        noise = rng.normal(0.0, 1.0, audio.shape) * np.sqrt(np.mean(audio ** 2) / 10.0)  # 10 dB SNR
        items.append({"kind": "en 10 dB", "lang": "en", "ref": text, "audio": (audio + noise).astype(np.float32)})
    items.append({"kind": "en 29 s", "lang": "en", "ref": " ".join(EN[:8]), "audio": np.concatenate(clean[:8])})
    items.append({"kind": "en 45 s", "lang": "en", "ref": " ".join(EN[:13]), "audio": np.concatenate(clean[:13])})
    for chars, pinyin in ZH:
        items.append({"kind": "zh pinyin", "lang": "zh", "ref": chars,
                      "audio": speak(pinyin, "cmn-latn-pinyin", 150, 50)})
    return items


def run_setting(pad: float | None, items: list[dict]) -> dict:
    tr = Transcriber(encoder_pad_s=pad)
    rows = []
    for k, it in enumerate(items):
        a = it["audio"]
        clip = Clip.from_audio(a, f"utt{k}")
        t0 = time.perf_counter()
        out = tr.transcribe(clip)
        sec = time.perf_counter() - t0
        edits, n = edit_rate(it["ref"], out.text, chars=it["lang"] == "zh")
        rows.append({"kind": it["kind"], "seconds": sec, "edits": edits, "n": n, "language": out.language,
                     "lang_ok": out.language == it["lang"], "text": out.text,
                     "last_word_end": out.words[-1][1] if out.words else None})
    return {"encoder_pad_s": pad, "rows": rows}


def summarise(res: dict) -> dict:
    rows = res["rows"]

    def rate(pred) -> float:
        sel = [r for r in rows if pred(r)]
        return sum(r["edits"] for r in sel) / max(1, sum(r["n"] for r in sel))

    short = [r["seconds"] for r in rows if r["kind"] in ("en clean", "en 10 dB")]
    return {
        "encoder_pad_s": res["encoder_pad_s"],
        "wer_en_clean": rate(lambda r: r["kind"] == "en clean"),
        "wer_en_noisy": rate(lambda r: r["kind"] == "en 10 dB"),
        "wer_en_long": rate(lambda r: r["kind"] in ("en 29 s", "en 45 s")),
        "wer_en_all": rate(lambda r: r["kind"].startswith("en")),
        "cer_zh_pinyin": rate(lambda r: r["kind"] == "zh pinyin"),
        "zh_detected": sum(r["lang_ok"] for r in rows if r["kind"] == "zh pinyin"),
        "en_detected": sum(r["lang_ok"] for r in rows if r["kind"].startswith("en")),
        "median_s_short": float(np.median(short)),
        "mean_s_short": float(np.mean(short)),
        "seconds_45s": next(r["seconds"] for r in rows if r["kind"] == "en 45 s"),
    }


def to_markdown(summaries: list[dict], n_en: int, n_zh: int) -> str:
    lines = [
        "# Whisper encoder context: full 30 s window vs trimmed padding",
        "",
        "Written by `python scripts/asr_context_check.py` (2-core CPU, Whisper base int8, beam 2, VAD on).",
        f"{n_en} English utterances from espeak-ng (20 sentences × clean / 10 dB white noise, plus a 29 s and a 45 s",
        f"one) and {n_zh} Mandarin sentences spoken from pinyin. WER/CER ignore case and punctuation. `pad` is",
        "`Transcriber(encoder_pad_s=...)`: seconds of the window's padding the encoder still sees (full = 30 s window).",
        "",
        "| pad | WER en clean | WER en 10 dB | WER en long | WER en all | en detected | CER zh (pinyin voice) "
        "| zh detected | median s/clip (3–5 s clips) | s for 45 s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        pad = "full" if s["encoder_pad_s"] is None else f"{s['encoder_pad_s']:g} s"
        lines.append(
            f"| {pad} | {s['wer_en_clean']:.3f} | {s['wer_en_noisy']:.3f} | {s['wer_en_long']:.3f} | "
            f"{s['wer_en_all']:.3f} | {s['en_detected']}/{n_en} | {s['cer_zh_pinyin']:.2f} | "
            f"{s['zh_detected']}/{n_zh} | {s['median_s_short']:.2f} | {s['seconds_45s']:.2f} |")
    lines += [
        "",
        "Reading it: with no padding at all the decoder stumbles at the end of short clips (clean WER jumps); with",
        "a few seconds of padding, accuracy is within the set's noise of the full window (a few hundredths of WER",
        "is a handful of words here) at about a quarter of the time. Times are single runs and vary by ±0.1 s.",
        "espeak's pinyin Mandarin is mostly heard as English in every setting, so the zh columns say little about",
        "real Mandarin. The default is `encoder_pad_s=5.0`.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for asr_context.md/.json")
    args = ap.parse_args()
    if shutil.which("espeak-ng") is None:
        sys.exit("asr_context_check.py: error: needs espeak-ng to make the speech (apt-get install espeak-ng)")
    items = utterances()
    results = [run_setting(pad, items) for pad in SETTINGS]
    summaries = [summarise(r) for r in results]
    n_en = sum(it["lang"] == "en" for it in items)
    n_zh = sum(it["lang"] == "zh" for it in items)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "asr_context.md").write_text(to_markdown(summaries, n_en, n_zh), encoding="utf-8")
    (args.out / "asr_context.json").write_text(
        json.dumps({"summary": summaries, "results": results}, ensure_ascii=False, indent=1), encoding="utf-8")
    sys.stdout.write(to_markdown(summaries, n_en, n_zh))


if __name__ == "__main__":
    main()
