"""Visual evidence: face detection, fer's mini-Xception without TensorFlow, aggregation, cues, blurring."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from omni_mer.core.clip import Clip
from omni_mer.evidence.face import FaceAnalyzer, blur_faces, crop_face, detect_faces, _gray
from omni_mer.evidence.fer_net import EXPRESSIONS, MiniXception, default_model_path

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())  # 512x512 RGB, a real smiling face


@pytest.fixture(scope="module")
def net() -> MiniXception:
    return MiniXception()


@pytest.fixture(scope="module")
def analyzer(net) -> FaceAnalyzer:
    return FaceAnalyzer(model=net)


def make_clip(frames: np.ndarray, fps: float = 2.0) -> Clip:
    frames = np.asarray(frames, np.uint8)
    n = len(frames)
    return Clip(path=Path("synthetic.mp4"), id="synthetic", frames=frames, frame_times=np.arange(n) / fps, fps=fps,
                audio=np.zeros(0, np.float32), duration=n / fps, has_video=n > 0, has_audio=False)


def test_detects_the_astronaut(astronaut):
    boxes = detect_faces(astronaut)
    assert len(boxes) == 1, boxes
    x, y, w, h = boxes[0]
    # the face is around x 175-275, y 65-165 of the 512x512 image
    assert 150 < x < 200 and 40 < y < 90 and 80 < w < 130 and 80 < h < 130
    assert detect_faces(astronaut, "alt2")  # the fallback cascade loads and works too


def test_model_structure_read_from_hdf5(net):
    import h5py

    with h5py.File(default_model_path(), "r") as f:
        cfg = json.loads(f.attrs["model_config"])
    assert [layer["class_name"] for layer in cfg["config"]["layers"]].count("SeparableConv2D") == 8
    n_params = sum(a.size for name, w in net.weights.items() for k, a in w.items() if k not in ("scale", "shift"))
    assert 55_000 < n_params < 60_000  # "58k params"
    bad = json.loads(json.dumps(cfg))
    bad["config"]["layers"][3]["class_name"] = "Dropout"
    with pytest.raises(ValueError, match="unsupported"):
        MiniXception._parse(bad)


def test_astronaut_is_happy(net, astronaut):
    box = detect_faces(astronaut)[0]
    face = crop_face(_gray(astronaut), box)
    assert face.shape == (64, 64)
    p = net.predict(face[None])
    assert p.shape == (1, 7) and abs(float(p.sum()) - 1) < 1e-5
    # measured: happy 0.996 with this crop
    assert EXPRESSIONS[int(p.argmax())] == "happy" and p[0, EXPRESSIONS.index("happy")] > 0.9


def test_forward_is_deterministic_and_batch_independent(net):
    faces = np.random.default_rng(0).integers(0, 256, (5, 64, 64)).astype(np.uint8)
    a = net.predict(faces)
    b = net.predict(faces)
    c = np.concatenate([net.predict(f[None]) for f in faces])
    assert np.array_equal(a, b)
    np.testing.assert_allclose(a, c, atol=1e-5)
    np.testing.assert_allclose(a.sum(axis=1), 1, atol=1e-5)


def test_forward_matches_torch_reference(net, astronaut):
    """An independent torch implementation of the same Keras graph gives the same probabilities."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional

    def same_pad(x, k, s, value=0.0):
        pads = []
        for n in (x.shape[3], x.shape[2]):  # W then H, as F.pad wants
            out = -(-n // s)
            total = max((out - 1) * s + k - n, 0)
            pads += [total // 2, total - total // 2]
        return F.pad(x, pads, value=value)

    def kernel(w):  # keras (kh, kw, in, out) -> torch (out, in, kh, kw)
        return torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))

    face = crop_face(_gray(astronaut), detect_faces(astronaut)[0])
    faces = np.stack([face, np.random.default_rng(1).integers(0, 256, (64, 64)).astype(np.uint8)])
    x = torch.from_numpy(((faces.astype(np.float32) / 255 - 0.5) * 2)[:, None])
    acts = {}
    for layer in net.layers:
        name, cls, c = layer["name"], layer["cls"], layer["cfg"]
        ins = [acts[i] for i in layer["inputs"]]
        w = net.weights.get(name, {})
        if cls == "InputLayer":
            y = x
        elif cls == "Conv2D":
            k, s = c["kernel_size"][0], c["strides"][0]
            inp = same_pad(ins[0], k, s) if c["padding"] == "same" else ins[0]
            b = torch.from_numpy(w["bias"]) if "bias" in w else None
            y = F.conv2d(inp, kernel(w["kernel"]), b, stride=s)
        elif cls == "SeparableConv2D":
            ch = ins[0].shape[1]
            dw = torch.from_numpy(np.ascontiguousarray(w["depthwise_kernel"].transpose(2, 3, 0, 1)))
            y = F.conv2d(same_pad(ins[0], 3, 1), dw, groups=ch)
            y = F.conv2d(y, kernel(w["pointwise_kernel"]))
        elif cls == "BatchNormalization":
            y = F.batch_norm(ins[0], torch.from_numpy(w["moving_mean"]), torch.from_numpy(w["moving_variance"]),
                             torch.from_numpy(w["gamma"]), torch.from_numpy(w["beta"]), False, 0.0, c["epsilon"])
        elif cls == "Activation":
            y = torch.relu(ins[0]) if c["activation"] == "relu" else torch.softmax(ins[0], dim=1)
        elif cls == "MaxPooling2D":
            y = F.max_pool2d(same_pad(ins[0], 3, 2, value=-float("inf")), 3, 2)
        elif cls == "Add":
            y = ins[0] + ins[1]
        else:
            y = ins[0].mean(dim=(2, 3))
        acts[name] = y
    ref = acts[net.layers[-1]["name"]].numpy()
    np.testing.assert_allclose(net.predict(faces), ref, atol=1e-4)


def test_analyzer_on_astronaut_clip(analyzer, astronaut):
    ev = analyzer.analyze(make_clip(np.stack([astronaut] * 3)), "en")
    assert ev.present and ev.modality == "visual"
    probs = [ev.features[f"p_{e}"] for e in EXPRESSIONS]
    assert abs(sum(probs) - 1) < 1e-4
    assert max(probs) == ev.features["p_happy"] > 0.9
    assert ev.valence > 0.8 and 0.5 < ev.confidence <= 0.8
    assert len(ev.cues) == 1
    cue = ev.cues[0]
    assert cue.kind == "expression:happy" and cue.text == "smiles 0.0–1.5 s" and cue.effect > 0.8
    assert cue.value == pytest.approx(ev.features["p_happy"], abs=1e-6)
    json.dumps(asdict(ev))  # evidence is cached as JSON
    zh = analyzer.analyze(make_clip(np.stack([astronaut] * 3)), "zh")
    assert zh.cues[0].text == "0.0–1.5 秒微笑"


def test_tracks_a_moving_face(analyzer):
    from tests.media_makers import moving_face_frames

    frames = moving_face_frames(8, (252, 448))
    boxes = analyzer.track(frames)
    assert all(b is not None for b in boxes), boxes
    ev = analyzer.analyze(make_clip(frames), "en")
    assert ev.features["face_coverage"] == 1.0 and ev.features["p_happy"] > 0.5


def test_face_only_in_some_frames(analyzer, astronaut):
    blank = np.full_like(astronaut, 128)
    ev = analyzer.analyze(make_clip(np.stack([blank, blank, astronaut, astronaut])), "en")
    assert ev.present and ev.features["face_coverage"] == 0.5
    assert ev.cues[0].start == pytest.approx(1.0) and ev.cues[0].end == pytest.approx(2.0)
    full = analyzer.analyze(make_clip(np.stack([astronaut] * 4)), "en")
    assert ev.confidence < full.confidence


def test_no_face_is_absent(analyzer):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (4, 240, 320, 3)).astype(np.uint8)
    ev = analyzer.analyze(make_clip(frames), "en")
    assert not ev.present and ev.reason == "no face found" and ev.confidence == 0
    empty = analyzer.analyze(make_clip(np.zeros((0, 8, 8, 3))), "en")
    assert not empty.present


def test_blur_changes_inside_only_and_hides_the_face(astronaut):
    boxes = detect_faces(astronaut)
    out = blur_faces(astronaut, boxes, pad=0.2)
    assert out.shape == astronaut.shape and out.dtype == astronaut.dtype
    x, y, w, h = boxes[0]
    px, py = round(0.2 * w), round(0.2 * h)
    inside = (slice(y, y + h), slice(x, x + w))
    assert np.abs(out[inside].astype(int) - astronaut[inside].astype(int)).mean() > 10
    mask = np.ones(astronaut.shape[:2], bool)
    mask[max(0, y - py) : y + h + py, max(0, x - px) : x + w + px] = False
    assert np.array_equal(out[mask], astronaut[mask])
    assert detect_faces(out) == [] and detect_faces(out, "alt2") == []
    assert np.array_equal(blur_faces(astronaut, []), astronaut)


def test_blur_on_the_cell_grid_matches_a_full_size_blur(astronaut):
    import cv2

    big = cv2.resize(astronaut, (1024, 1024))
    (x, y, w, h), = detect_faces(big)
    px, py = round(0.2 * w), round(0.2 * h)
    box = (slice(y - py, y + h + py), slice(x - px, x + w + px))
    roi = big[box]
    pix = cv2.resize(cv2.resize(roi, (6, 6), interpolation=cv2.INTER_AREA), roi.shape[1::-1],
                     interpolation=cv2.INTER_NEAREST)
    sigma = 0.15 * max(roi.shape[:2])
    reference = cv2.GaussianBlur(pix, (0, 0), sigmaX=sigma, sigmaY=sigma)  # the direct, slow way
    diff = np.abs(blur_faces(big, [(x, y, w, h)])[box].astype(int) - reference)
    assert diff.mean() < 1.5 and diff.max() <= 12


@pytest.mark.skipif(not (ROOT / "samples" / "en_happy_review.mp4").is_file(), reason="samples not present")
def test_sample_video(analyzer):
    from omni_mer import media

    clip = media.decode(ROOT / "samples" / "en_happy_review.mp4")
    ev = analyzer.analyze(clip, "en")
    assert ev.present and ev.features["p_happy"] > 0.5
    assert all(0 <= c.start < c.end <= clip.duration + 1e-6 for c in ev.cues)
