"""CenterFace on real faces (scikit-image's astronaut, frames of ../shared/data/clips) and their harder views, and
the fail-closed blur of saved frames (tilted, turned, small, stretched, two-face frames made from real faces)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omni_mer.evidence import face_variants as fv
from omni_mer.evidence.anonymize import anonymize_frames, whole_frame_blur
from omni_mer.evidence.detector import get_detector

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT.parent / "shared" / "data" / "clips"


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="module")
def real_frames() -> list[tuple[np.ndarray, tuple]]:
    """One frame from each of 4 real clips, with its CenterFace box at full size."""
    if not CLIPS.is_dir():
        pytest.skip("../shared/data/clips not present")
    from omni_mer.core.config import MediaConfig
    from omni_mer.media import decode

    out = []
    for p in sorted(CLIPS.glob("*.mp4"))[::5][:4]:
        clip = decode(p, MediaConfig())
        f = clip.frames[len(clip.frames) // 2]
        faces = get_detector().raw(f, side=max(f.shape[:2]))
        assert faces, f"no face in the middle frame of {p.name}"
        out.append((f, faces[0].box))
    return out


def _views(frame, box, other, other_box):
    return {"tilt25": fv.tilted(frame, box, 25), "tilt-40": fv.tilted(frame, box, -40), "lying": fv.turned(frame, box, 1),
            "upside-down": fv.turned(frame, box, 2), "small40": fv.small(frame, box, 40),
            "stretched": fv.stretched(frame, box), "two": fv.two_faces(frame, box, other, other_box)}


def test_centerface_finds_the_astronaut_with_landmarks(astronaut):
    faces = get_detector().raw(astronaut)
    assert len(faces) == 1
    f = faces[0]
    x, y, w, h = f.box
    assert 150 < x < 200 and 40 < y < 90 and 70 < w < 130 and 80 < h < 140 and f.score > 0.8
    (lx, ly), (rx, ry) = f.landmarks[0], f.landmarks[1]
    assert x < lx < rx < x + w and abs(ly - ry) < 0.2 * h  # two eyes, level, left of each other
    assert get_detector().raw(np.full((240, 320, 3), 127, np.uint8)) == []


def test_centerface_on_harder_views_of_the_astronaut(astronaut):
    box = get_detector().raw(astronaut)[0].box
    det = get_detector()
    for name, (img, truth) in {"tilt25": fv.tilted(astronaut, box, 25), "tilt45": fv.tilted(astronaut, box, 45),
                               "small40": fv.small(astronaut, box, 40),
                               "stretched": fv.stretched(astronaut, box)}.items():
        found = [f.box for f in det.raw(img, side=max(img.shape[:2]))]
        assert any(fv.hit(b, truth[0]) for b in found), (name, found, truth)


def test_tracking_keeps_the_largest_face(astronaut, real_frames):
    from omni_mer.evidence.face import FaceAnalyzer

    big, small_face = astronaut, fv.small(*real_frames[0], 60, canvas=astronaut.shape[:2])[0]
    frames = [np.concatenate([big, small_face], axis=1)] * 3
    boxes = FaceAnalyzer.__new__(FaceAnalyzer).track(frames)
    assert all(b is not None and b[0] < 512 for b in boxes), boxes  # the astronaut, not the small face


def test_blur_hides_every_real_face_in_hard_views(real_frames):
    """Each view: the saved frame is safe: the face is blurred, or the frame pixelated whole or not saved; and the
    detector (any turn, low threshold) finds no face left in what is saved."""
    det = get_detector()
    for i, (frame, box) in enumerate(real_frames):
        other, obox = real_frames[(i + 1) % len(real_frames)]
        for name, (img, truth) in _views(frame, box, other, obox).items():
            (safe,), report = anonymize_frames([img])
            verdict = report.verdicts[0]
            assert verdict.method in ("faces", "whole-frame", "dropped"), (name, verdict)
            if safe is None:
                continue
            for g in truth:
                x, y, w, h = g
                region = (slice(y, y + h), slice(x, x + w))
                assert np.abs(safe[region].astype(int) - img[region].astype(int)).mean() > 5, (name, i)
            for k in range(4):
                left = det.raw(np.ascontiguousarray(np.rot90(safe, k)), side=max(safe.shape[:2]), threshold=0.5)
                assert left == [], (name, i, k, left)


def test_unsure_or_missing_detector_fails_closed(astronaut, monkeypatch):
    from omni_mer.evidence import detector

    def unavailable():
        raise detector.DetectorUnavailable("test: no model")

    monkeypatch.setattr(detector, "get_detector", unavailable)
    (safe,), report = anonymize_frames([astronaut])
    assert report.detector == "none" and report.verdicts[0].method == "whole-frame"
    np.testing.assert_array_equal(safe, whole_frame_blur(astronaut))
    monkeypatch.undo()
    assert get_detector().raw(whole_frame_blur(astronaut), threshold=0.2) == []


def test_frames_blurred_tells_the_truth(tmp_path, astronaut):
    """write_supplements: frames_blurred true only with the fail-closed blur, and frames_privacy says what it did."""
    import json

    from omni_mer.core.clip import Clip
    from omni_mer.evidence.types import Evidence, ModalityEvidence
    from omni_mer.report.files import write_supplements
    from omni_mer.pipeline import Analysis

    frames = np.stack([astronaut, fv.turned(astronaut, (175, 64, 100, 100), 2)[0]])
    clip = Clip(path=Path("x.mp4"), id="x", frames=frames, frame_times=np.arange(2) / 2.0, fps=2.0,
                audio=np.zeros(0, np.float32), duration=1.0, has_video=True, has_audio=False)
    ev = Evidence(language="en", transcript="", segments=[], text=ModalityEvidence.absent("text", "t"),
                  audio=ModalityEvidence.absent("audio", "a"), visual=ModalityEvidence.absent("visual", "v"))
    expl = {"id": "x", "label": "NEUT", "probabilities": {}, "shapley": {}, "cues": [], "rationale": ""}
    a = Analysis(id="x", path=Path("x.mp4"), clip=clip, evidence=ev, explanation=expl, timings={})
    for blur in (True, False):
        out = write_supplements(a, tmp_path / str(blur), blur=blur)
        saved = json.loads((out / "explanation.json").read_text(encoding="utf-8"))
        assert saved["frames_blurred"] is blur
        if blur:
            p = saved["frames_privacy"]
            assert p["detector"] == "centerface" and p["frames"] == 2 and p["no_face"] == 0
            assert p["faces"] + p["whole_frame"] + p["dropped"] == 2
        else:
            assert "frames_privacy" not in saved


def _face_on_gray(astronaut) -> np.ndarray:
    """The astronaut's face (with a margin) on a flat gray 320x320 canvas: nothing else for the detector to see."""
    x, y, w, h = get_detector().raw(astronaut)[0].box
    crop = astronaut[y - 20:y + h + 20, x - 20:x + w + 20]
    canvas = np.full((320, 320, 3), 128, np.uint8)
    canvas[60:60 + crop.shape[0], 100:100 + crop.shape[1]] = crop
    return canvas


def test_blur_skips_the_turned_passes_only_when_the_upright_pass_is_sure(astronaut):
    from omni_mer.evidence.anonymize import _centerface_passes

    det = get_detector()
    sure = _face_on_gray(astronaut)
    boxes, unsure, turned = _centerface_passes(sure, det)
    assert not turned and unsure == 0 and len(boxes) == 1  # one face, no other trace: upright only
    safe_frames, report = anonymize_frames([sure, astronaut])
    safe = safe_frames[0]
    assert [v.turned for v in report.verdicts] == [False, True]  # the astronaut's background leaves weak hints
    assert report.to_dict()["turned_passes"] == 1
    for k in range(4):
        assert det.raw(np.ascontiguousarray(np.rot90(safe, k)), side=320, threshold=0.5) == []


def test_every_real_face_leaves_a_hint_upright(real_frames):
    """The premise of skipping the turned passes: a face, however turned or small, scores >= HINT_THRESHOLD (with a
    2x margin) in the upright pass, so its frame goes through the turned passes unless the face is found upright."""
    from omni_mer.evidence.anonymize import HINT_THRESHOLD, MIN_SIDE

    det = get_detector()
    for i, (frame, box) in enumerate(real_frames):
        other, obox = real_frames[(i + 1) % len(real_frames)]
        views = _views(frame, box, other, obox)
        for px in (40, 24):
            img, (sbox,) = fv.small(frame, box, px)
            views[f"lying{px}"], views[f"upside-down{px}"] = fv.turned(img, sbox, 1), fv.turned(img, sbox, 2)
        for name, (img, truth) in views.items():
            found = det.raw(img, side=max(MIN_SIDE, max(img.shape[:2])), threshold=HINT_THRESHOLD)
            for g in truth:
                best = max([f.score for f in found if fv.hit(f.box, g) or fv.hit(g, f.box)] or [0.0])
                assert best >= 2 * HINT_THRESHOLD, (name, i, best)
