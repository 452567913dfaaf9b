"""Privacy: the main job runs with the network blocked; saved frames are face-blurred by default; no audio is kept
unless --save-audio; the demo binds to localhost."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
AUDIO_EXTS = {".wav", ".mp3", ".m4a", ".flac", ".ogg", ".aac", ".opus", ".webm", ".mp4", ".mkv"}

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(not (SAMPLES / "meta" / "manifest.jsonl").is_file(), reason="samples not generated")]

# Loaded by every Python process of the job (parent and spawned workers) through PYTHONPATH: any attempt to open a
# network connection raises and is recorded in $NET_LOG.
SITECUSTOMIZE = r'''
import os, socket

_LOG = os.environ.get("NET_LOG")


def _blocked(self, address, *a, **k):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        if _LOG:
            with open(_LOG, "a") as f:
                f.write(f"{os.getpid()} connect {address!r}\n")
        raise OSError(101, "network blocked by test_privacy")
    return _orig_connect(self, address, *a, **k)


def _blocked_ex(self, address, *a, **k):
    try:
        _blocked(self, address, *a, **k)
    except OSError as e:
        return e.errno
    return 0


def _no_dns(*a, **k):
    if _LOG:
        with open(_LOG, "a") as f:
            f.write(f"{os.getpid()} getaddrinfo {a[:2]!r}\n")
    raise socket.gaierror(-2, "name resolution blocked by test_privacy")


_orig_connect = socket.socket.connect
socket.socket.connect = _blocked
socket.socket.connect_ex = _blocked_ex
socket.getaddrinfo = _no_dns
'''


# English and Mandarin, both with a face: every model of the lite path runs (ASR en/zh, both lexicons, embeddings,
# prosody, face). The whole samples folder runs in the slow test below.
SUBSET = ("en_happy_review.mp4", "zh_good_news.mp4")


def _offline_job(d: Path, input_dir: Path, extra_env: dict | None = None, unset: tuple[str, ...] = ()) -> dict:
    """Run test_script.py with every network connection (and DNS lookup) blocked in all its processes
    (``extra_env`` added to the environment, the variables in ``unset`` removed from it)."""
    (d / "site").mkdir(parents=True, exist_ok=True)
    (d / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    net_log = d / "net.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(d / "site"), str(ROOT)]), NET_LOG=str(net_log),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg", **(extra_env or {}))
    for var in unset:
        env.pop(var, None)
    # The blocker itself must work, or the test below proves nothing.
    probe = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('1.1.1.1', 80), 2)"],
                           env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "blocked" in probe.stderr, probe.stderr
    net_log.unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, str(ROOT / "test_script.py"), "--input", str(input_dir), "--output",
                           str(d / "res"), "--supplements", str(d / "sup"), "--backend", "lite"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return {"dir": d, "proc": proc, "net_log": net_log}


def _check_offline_job(run: dict, expected_ids: list[str]) -> None:
    proc, d = run["proc"], run["dir"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(d / "res" / "label_prediction.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["ID"] for r in rows) == sorted(expected_ids)
    errors = list(csv.DictReader(open(d / "res" / "errors.csv", encoding="utf-8")))
    assert errors == [], errors
    attempts = run["net_log"].read_text() if run["net_log"].exists() else ""
    assert attempts == "", f"network access attempted:\n{attempts}"


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("privacy")
    (d / "in").mkdir()
    for name in SUBSET:
        (d / "in" / name).write_bytes((SAMPLES / name).read_bytes())
    return _offline_job(d, d / "in")


def test_main_job_passes_with_sockets_blocked(offline_run):
    _check_offline_job(offline_run, [Path(n).stem for n in SUBSET])


@pytest.mark.slow
def test_main_job_on_all_samples_with_sockets_blocked(tmp_path):
    ids = [p.stem for p in SAMPLES.iterdir() if p.suffix.lower() in (".mp4", ".wav")]
    run = _offline_job(tmp_path, SAMPLES)
    proc = run["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / "res" / "label_prediction.csv", encoding="utf-8")))
    assert sorted(r["ID"] for r in rows) == sorted(ids)
    errors = list(csv.DictReader(open(tmp_path / "res" / "errors.csv", encoding="utf-8")))
    assert errors == []  # samples/ holds only media; its manifest sits in samples/meta/ (sub-folders are skipped)
    assert not run["net_log"].exists() or run["net_log"].read_text() == ""


def test_nothing_written_outside_outputs_in_a_fresh_home(tmp_path):
    """In a fresh HOME and TMPDIR, the job writes only its output folders and the documented cache
    (~/.cache/omni-mer: Whisper weights, matplotlib's font list, jieba's dictionary cache): no onnxruntime telemetry
    (~/.cache/Microsoft/DeveloperTools), no ~/.config, nothing left in the temp dir."""
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / SUBSET[0]).write_bytes((SAMPLES / SUBSET[0]).read_bytes())
    run = _offline_job(tmp_path, tmp_path / "in", {"HOME": str(home), "TMPDIR": str(tmp)},
                       unset=("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "MPLCONFIGDIR", "OMNI_MER_CACHE"))
    _check_offline_job(run, [Path(SUBSET[0]).stem])
    outside = sorted(str(p.relative_to(home)) for p in home.rglob("*")
                     if p.is_file() and not p.relative_to(home).parts[:2] == (".cache", "omni-mer"))
    assert outside == [], outside
    assert sorted(p.name for p in home.iterdir()) == [".cache"]
    assert sorted(p.name for p in (home / ".cache").iterdir()) == ["omni-mer"]
    assert list(tmp.rglob("*")) == [], list(tmp.rglob("*"))


def test_no_audio_saved_by_default(offline_run):
    d = offline_run["dir"]
    saved = [p for p in (d / "sup").rglob("*") if p.suffix.lower() in AUDIO_EXTS]
    saved += [p for p in (d / "res").rglob("*") if p.suffix.lower() in AUDIO_EXTS]
    assert saved == []


def _sharpness(img: np.ndarray) -> float:
    import cv2

    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def _face_sharpness(frame_path: Path, clip_frames: np.ndarray, frame_times: np.ndarray) -> tuple[float, float]:
    """(sharpness of the face in the saved frame, in the decoded original at the same time)."""
    from PIL import Image

    from omni_mer.evidence.face import detect_faces
    from omni_mer.eval.perturb import _box_xyxy

    saved = np.asarray(Image.open(frame_path).convert("RGB"))
    t = float(frame_path.stem.split("_")[1].rstrip("s"))
    orig = clip_frames[int(np.argmin(np.abs(frame_times - t)))]
    boxes = detect_faces(orig)
    assert boxes, f"no face found in the original frame behind {frame_path.name}"
    x0, y0, x1, y1 = _box_xyxy(boxes[0], *orig.shape[:2])
    return _sharpness(saved[y0:y1, x0:x1]), _sharpness(orig[y0:y1, x0:x1])


def test_saved_frames_are_face_blurred_by_default(offline_run):
    from omni_mer.media import decode

    d = offline_run["dir"]
    checked = 0
    for vid in [SAMPLES / n for n in SUBSET]:
        expl = json.loads((d / "sup" / vid.stem / "explanation.json").read_text(encoding="utf-8"))
        assert expl["frames_blurred"] is True
        frames = sorted((d / "sup" / vid.stem / "frames").glob("*.jpg"))
        assert frames, f"no frames saved for {vid.name}"
        clip = decode(vid)
        blurred, original = _face_sharpness(frames[0], clip.frames, clip.frame_times)
        assert blurred < 0.3 * original, (vid.name, blurred, original)
        checked += 1
    assert checked >= 1


def test_no_blur_and_save_audio_are_opt_in(tmp_path):
    """--no-blur keeps faces sharp and --save-audio writes audio.wav (in-process run on one sample)."""
    from omni_mer.media import decode
    from omni_mer.batch.predict import PredictConfig, run

    vid = SAMPLES / "en_happy_review.mp4"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / vid.name).write_bytes(vid.read_bytes())
    run(PredictConfig(input=tmp_path / "in", output=tmp_path / "res", supplements=tmp_path / "sup",
                      backend="lite", workers=0, blur=False, save_audio=True))
    out = tmp_path / "sup" / vid.stem
    assert (out / "audio.wav").is_file()
    import soundfile as sf

    audio, sr = sf.read(out / "audio.wav")
    assert sr == 16000 and len(audio) > sr
    assert json.loads((out / "explanation.json").read_text(encoding="utf-8"))["frames_blurred"] is False
    clip = decode(vid)
    sharp, original = _face_sharpness(sorted((out / "frames").glob("*.jpg"))[0], clip.frames, clip.frame_times)
    assert sharp > 0.5 * original


def test_demo_binds_to_localhost_by_default():
    demo = pytest.importorskip("omni_mer.demo.app")
    assert demo.DEFAULT_HOST == "127.0.0.1"
    src = Path(demo.__file__).read_text(encoding="utf-8")
    assert "share=False" in src
