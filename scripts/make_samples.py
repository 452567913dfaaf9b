"""Regenerate the project-made sample clips in samples/ (English and Mandarin speech with a face).

Speech comes from espeak-ng (Debian package `espeak-ng`), faces from scikit-image's test data: the astronaut
(smiling) and three Labeled-Faces-in-the-Wild faces from `lfw_subset` chosen because the shipped expression model
reads them as angry (#84), sad (#82) and neutral (#7); they are 25x25 originals, upscaled, so they look soft. Run: .venv/bin/python scripts/make_samples.py
The outputs are committed (a few hundred KB), so nothing here runs in CI.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly
from skimage import data, transform

from omni_mer.core.labels import from_mosei, from_sims
from omni_mer.media.write import write_audio, write_video

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "samples"
FPS = 10
SIZE = (240, 320)  # h, w

# id, language, espeak voice, speed (wpm), pitch (0-99), face, text, gold score, score scale.
# Mandarin is spoken from tone-numbered pinyin with the cmn-latn-pinyin voice: Debian's cmn dictionary lacks many
# characters and would read their tone digits in English.
SAMPLES = [
    ("en_happy_review", "en", "en-us", 175, 70, "astronaut",
     "I absolutely love this. It is wonderful, and it makes me so happy!", 2.4, "mosei"),
    ("en_bad_service", "en", "en-us", 130, 25, "lfw:84",
     "This was terrible. I hate how they treated us. What a disappointing mess.", -2.2, "mosei"),
    ("en_schedule", "en", "en-us", 160, 50, "lfw:7",
     "The meeting is on Tuesday at three o'clock, in the second room.", 0.0, "mosei"),
    ("zh_good_news", "zh", "cmn-latn-pinyin", 150, 70, "astronaut",
     "我今天非常开心，这个结果太好了，我真的很喜欢。", 0.8, "sims"),
    ("zh_disappointed", "zh", "cmn-latn-pinyin", 135, 25, "lfw:82",
     "这太糟糕了，我非常失望，真让人难过。", -0.8, "sims"),
]
PINYIN = {
    "zh_good_news": "wo3 jin1 tian1 fei1 chang2 kai1 xin1, zhe4 ge4 jie2 guo3 tai4 hao3 le, wo3 zhen1 de hen3 xi3 huan1.",
    "zh_disappointed": "zhe4 tai4 zao1 gao1 le, wo3 fei1 chang2 shi1 wang4, zhen1 rang4 ren2 nan2 guo4.",
}
AUDIO_ONLY = {"en_schedule"}  # also shipped as a WAV: the audio-only path


def speak(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav), text],
                       check=True)
        audio, sr = sf.read(wav, dtype="float32")
    audio = resample_poly(audio, 16000, sr).astype(np.float32)
    return np.concatenate([np.zeros(4000, np.float32), audio, np.zeros(4000, np.float32)])


def face_image(name: str) -> np.ndarray:
    if name == "astronaut":
        return data.astronaut()[0:300, 100:400]  # head and shoulders
    idx = int(name.split(":")[1])
    face = (transform.resize(data.lfw_subset()[idx], (200, 200)) * 255).astype(np.uint8)
    canvas = np.full((240, 320), 90, np.uint8)  # the face fills most of a plain background, like a close-up
    canvas[20:220, 60:260] = face
    return np.stack([canvas] * 3, axis=-1)


def animate(img: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Slow zoom and pan over the image, so frames differ like a talking-head shot."""
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    frames = []
    for i in range(n):
        z = 1.0 + 0.06 * np.sin(i / n * np.pi)
        ch, cw = int(h / z), int(w / z)
        y0 = int((h - ch) / 2 + rng.integers(-3, 4))
        x0 = int((w - cw) / 2 + rng.integers(-3, 4))
        y0, x0 = np.clip(y0, 0, h - ch), np.clip(x0, 0, w - cw)
        crop = img[y0:y0 + ch, x0:x0 + cw]
        frames.append((transform.resize(crop, SIZE, anti_aliasing=True) * 255).astype(np.uint8))
    return np.stack(frames)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    manifest = []
    for i, (sid, lang, voice, speed, pitch, face, text, score, scale) in enumerate(SAMPLES):
        audio = speak(PINYIN.get(sid, text), voice, speed, pitch)
        n = int(np.ceil(len(audio) / 16000 * FPS))
        path = write_video(OUT / f"{sid}.mp4", animate(face_image(face), n, seed=i), FPS, audio=audio)
        label5 = (from_mosei if scale == "mosei" else from_sims)(score)
        rec = {"id": sid, "path": f"../{path.name}", "lang": lang, "label5": label5, "score": score, "text": text,
               "split": "train", "source": "samples"}
        manifest.append(rec)
        if sid in AUDIO_ONLY:
            wav = write_audio(OUT / f"{sid}_audio.wav", audio)
            manifest.append({**rec, "id": wav.stem, "path": f"../{wav.name}"})
    # The manifest lives in a sub-folder so that samples/ itself holds only media (the main job's input folder).
    (OUT / "meta").mkdir(exist_ok=True)
    with open(OUT / "meta" / "manifest.jsonl", "w", encoding="utf-8") as f:
        for rec in manifest:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
