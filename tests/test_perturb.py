"""omni_mer.eval.perturb: each MER-NOISE perturbation does what its name says, deterministically."""

from pathlib import Path

import numpy as np
import pytest

from omni_mer.eval import perturb
from tests import media_makers as syn
from omni_mer.core.clip import Clip
from omni_mer.core.config import SAMPLE_RATE
from omni_mer.core.errors import ConfigError
from omni_mer.evidence.types import Evidence, ModalityEvidence, Segment

ROOT = Path(__file__).resolve().parents[1]


def _clip(n_frames: int = 4, seconds: float = 2.0, size=(120, 160)) -> Clip:
    frames = syn.moving_face_frames(n_frames, size=size)
    audio = syn.tone(seconds, SAMPLE_RATE, freq=220.0, amplitude=0.3)
    return Clip(path=Path("x.mp4"), id="x", frames=frames, frame_times=np.arange(n_frames) / 2.0, fps=2.0,
                audio=audio, duration=seconds, has_video=True, has_audio=True)


def _snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    n = noisy.astype(np.float64) - clean
    return 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(n ** 2))


@pytest.mark.parametrize("kind", ["white", "babble"])
@pytest.mark.parametrize("snr", [20, 10, 0])
def test_add_noise_hits_the_requested_snr(kind, snr):
    clean = syn.tone(2.0, amplitude=0.2)
    noisy = perturb.add_noise(clean, snr, kind=kind, seed=1)
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    assert abs(_snr_db(clean, noisy) - snr) < 0.3  # clipping at +-1 never kicks in at these levels


def test_noise_leaves_silence_and_empty_audio_alone():
    assert np.array_equal(perturb.add_noise(np.zeros(100, np.float32), 0), np.zeros(100, np.float32))
    assert perturb.add_noise(np.zeros(0, np.float32), 0).size == 0
    with pytest.raises(ConfigError, match="white, babble"):
        perturb.add_noise(syn.tone(0.1), 5, kind="pink")


def test_registry_names_and_unknown_name_lists_valid_ones():
    for name in ("snr20", "snr10", "snr5", "snr0", "babble5", "blur", "occlude", "drop_audio", "drop_video",
                 "drop_text"):
        assert perturb.get(name).name == name
    with pytest.raises(ConfigError) as exc:
        perturb.get("snr99")
    assert "snr99" in str(exc.value) and "drop_text" in str(exc.value) and "blur" in str(exc.value)
    assert [p.name for p in perturb.parse_names("snr10, blur,snr10")] == ["snr10", "blur"]
    assert [p.name for p in perturb.parse_names(None)] == list(perturb.DEFAULT_PERTURBATIONS)
    assert len(perturb.parse_names("all")) == len(perturb.PERTURBATIONS)


def test_audio_perturbations_are_deterministic_and_do_not_touch_the_input():
    clip = _clip()
    before = clip.audio.copy()
    a = perturb.get("snr0").apply_clip(clip)
    b = perturb.get("snr0").apply_clip(clip)
    assert np.array_equal(a.audio, b.audio)
    assert np.array_equal(clip.audio, before)  # the clean clip is reused for every perturbation
    assert not np.array_equal(a.audio, clip.audio)
    assert np.array_equal(a.frames, clip.frames)
    assert "perturbed: snr0" in a.warnings and "perturbed: snr0" not in clip.warnings
    # A different clip gets different (but again reproducible) noise.
    other = perturb.get("snr0").apply_clip(Clip(**{**clip.__dict__, "id": "y", "warnings": []}))
    assert not np.array_equal(other.audio, a.audio)


def _high_freq_energy(frames: np.ndarray) -> float:
    g = frames.astype(np.float64).mean(axis=-1)
    return float(np.mean(np.abs(np.diff(g, axis=1))) + np.mean(np.abs(np.diff(g, axis=2))))


def test_blur_removes_detail_and_keeps_shape():
    clip = _clip()
    out = perturb.get("blur").apply_clip(clip)
    assert out.frames.shape == clip.frames.shape and out.frames.dtype == np.uint8
    assert _high_freq_energy(out.frames) < 0.5 * _high_freq_energy(clip.frames)
    assert np.array_equal(out.audio, clip.audio)


def test_occlusion_blacks_out_the_boxes_the_detector_returns():
    frames = np.full((2, 100, 200, 3), 200, np.uint8)
    out, found = perturb.occlude_faces(frames, detector=lambda f: [(50, 20, 30, 40)], pad=0.0)  # x, y, w, h
    assert found == 2
    assert (out[:, 20:60, 50:80] == 0).all()
    assert (out[:, :20] == 200).all() and (out[:, :, 80:] == 200).all()
    assert (frames == 200).all()  # input untouched


def test_occlusion_falls_back_to_the_centre_box_without_faces():
    frames = np.full((1, 100, 200, 3), 200, np.uint8)
    out, found = perturb.occlude_faces(frames, detector=lambda f: [])
    assert found == 0
    assert (out[0, 50, 100] == 0).all() and (out[0, 0, 0] == 200).all()
    black = (out[0] == 0).all(axis=-1).mean()
    assert abs(black - perturb.CENTRE_BOX[0] * perturb.CENTRE_BOX[1]) < 0.02


def test_occlude_with_the_real_detector_covers_the_face():
    """The registered 'occlude' uses omni_mer.evidence.face.detect_faces; the face must be blacked out."""
    face = pytest.importorskip("omni_mer.evidence.face")
    clip = _clip(n_frames=2, size=(240, 320))
    boxes = face.detect_faces(clip.frames[0])
    if not boxes:
        pytest.skip("the detector finds no face in the synthetic frame")
    out = perturb.get("occlude").apply_clip(clip)
    x0, y0, x1, y1 = perturb._box_xyxy(boxes[0], 240, 320)
    assert (out.frames[0, y0:y1, x0:x1] == 0).all()
    assert face.detect_faces(out.frames[0]) == [] or len(face.detect_faces(out.frames[0])) < len(boxes)


def test_drop_audio_and_video_match_what_decode_gives_for_missing_streams():
    clip = _clip()
    na = perturb.get("drop_audio").apply_clip(clip)
    assert not na.has_audio and na.audio.size == 0 and na.audio_is_silent and na.has_video
    nv = perturb.get("drop_video").apply_clip(clip)
    assert not nv.has_video and nv.frames.shape[0] == 0 and len(nv.frame_times) == 0 and nv.has_audio
    assert clip.has_audio and clip.has_video and len(clip.frames) == 4


def test_drop_text_removes_the_transcript_from_evidence_only():
    clip = _clip()
    ev = Evidence(language="en", transcript="I love it", segments=[Segment(0, 1, "I love it")],
                  text=ModalityEvidence("text", True, valence=0.8, confidence=0.9),
                  audio=ModalityEvidence.absent("audio", "x"), visual=ModalityEvidence.absent("visual", "y"))
    p = perturb.get("drop_text")
    assert p.apply_clip(clip) is clip
    out = p.apply_evidence(ev)
    assert out.transcript == "" and out.segments == [] and not out.text.present
    assert ev.text.present and ev.transcript == "I love it"
    assert "text" not in out.present


@pytest.mark.skipif(not (ROOT / "samples" / "meta" / "manifest.jsonl").is_file(), reason="samples not generated")
def test_evaluate_cli_perturb_section(tmp_path):
    """`omni-mer evaluate --manifest M --perturb drop_video` writes the robustness section; bad names are refused."""
    pytest.importorskip("omni_mer.evidence.face")
    pytest.importorskip("omni_mer.evidence.prosody")
    import json

    from omni_mer.eval.evaluate import main

    line = next(l for l in (ROOT / "samples" / "meta" / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
                if '"zh_good_news"' in l)
    rec = json.loads(line)
    rec["path"] = str((ROOT / "samples" / "meta" / rec["path"]).resolve())
    (tmp_path / "m.jsonl").write_text(json.dumps(rec, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="valid:"):
        main(["--manifest", str(tmp_path / "m.jsonl"), "--perturb", "nope", "--out", str(tmp_path / "e")])
    assert main(["--manifest", str(tmp_path / "m.jsonl"), "--perturb", "drop_text,blur,drop_audio",
                 "--out", str(tmp_path / "e")]) == 0
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text(encoding="utf-8"))
    rob = metrics["robustness"]
    assert rob["n"] == 1 and not rob["failed"]
    assert list(rob["perturbations"]) == ["drop_text", "blur", "drop_audio"]
    row = rob["clips"][0]
    from omni_mer.data.manifest import read_manifest

    assert row["id"] == "zh_good_news" and row["gold"] == read_manifest(tmp_path / "m.jsonl")[0].label5
    assert rob["clean"]["accuracy"] == float(row["clean"] == row["gold"])
    for name, m in rob["perturbations"].items():
        assert m["flips"] == int(row[name] != row["clean"]) and m["flip_rate"] == m["flips"]
        assert m["accuracy"] == float(row[name] == row["gold"])
        assert m["delta_accuracy"] == m["accuracy"] - rob["clean"]["accuracy"]
    assert (tmp_path / "e" / "robustness.md").is_file()
    summary = (tmp_path / "e" / "summary.md").read_text(encoding="utf-8")
    assert "drop_audio" in summary and "| clean |" in summary


def test_occlusion_pads_the_face_box():
    frames = np.full((1, 100, 200, 3), 200, np.uint8)
    out, _ = perturb.occlude_faces(frames, detector=lambda f: [(50, 20, 30, 40)], pad=0.1)
    assert (out[0, 16:64, 47:83] == 0).all() and (out[0, 15, 60] == 200).all() and (out[0, 30, 84] == 200).all()
