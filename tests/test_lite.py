import json

import numpy as np
import pytest

from omni_mer.core.clip import Clip
from omni_mer.evidence.types import Evidence, ModalityEvidence
from omni_mer.core.labels import LABELS
from omni_mer.scorers.calibrate import calibrate, fit_fusion
from omni_mer.scorers.lite import Calibration, FusionParams, LiteScorer

ALL = frozenset({"text", "audio", "visual"})


def make_evidence(text=None, audio=None, visual=None, language="en") -> Evidence:
    def mod(name, vc):
        if vc is None:
            return ModalityEvidence.absent(name, "absent in test")
        return ModalityEvidence(name, True, valence=vc[0], confidence=vc[1])

    return Evidence(language, "", [], mod("text", text), mod("audio", audio), mod("visual", visual))


CLIP = Clip(path=None, id="x", frames=np.zeros((0, 2, 2, 3), np.uint8), frame_times=np.zeros(0), fps=2.0,
            audio=np.zeros(0, np.float32), duration=1.0, has_video=False, has_audio=False)


def test_probabilities_are_a_distribution_for_every_coalition():
    scorer = LiteScorer()
    ev = make_evidence((0.8, 0.9), (-0.3, 0.4), (0.5, 0.7))
    for keep in [frozenset(), frozenset({"text"}), frozenset({"audio", "visual"}), ALL]:
        p = scorer.score(CLIP, ev, keep)
        assert p.shape == (len(LABELS),)
        assert p.sum() == pytest.approx(1.0) and (p > 0).all()


def test_empty_coalition_is_the_prior_and_centred_on_neutral():
    scorer = LiteScorer()
    p = scorer.score(CLIP, make_evidence((0.9, 1.0)), frozenset())
    np.testing.assert_allclose(p, scorer.prior())
    assert LABELS[int(p.argmax())] == "NEUT" and scorer.prior_label() == "NEUT"


@pytest.mark.parametrize("valence,label", [(-1.0, "SNEG"), (-0.4, "WNEG"), (0.0, "NEUT"), (0.4, "WPOS"), (1.0, "SPOS")])
def test_confident_text_drives_the_ordinal_label(valence, label):
    p = LiteScorer().score(CLIP, make_evidence((valence, 1.0)), ALL)
    assert LABELS[int(p.argmax())] == label


def test_absent_or_unkept_modalities_change_nothing():
    scorer = LiteScorer()
    a = scorer.score(CLIP, make_evidence((0.6, 0.8), None, None), ALL)
    b = scorer.score(CLIP, make_evidence((0.6, 0.8), None, None), frozenset({"text"}))
    c = scorer.score(CLIP, make_evidence((0.6, 0.8), (-1.0, 1.0), None), frozenset({"text", "visual"}))
    np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(a, c)


def test_low_confidence_shrinks_toward_neutral():
    scorer = LiteScorer()
    strong = scorer.score(CLIP, make_evidence((0.9, 1.0)), ALL)
    weak = scorer.score(CLIP, make_evidence((0.9, 0.1)), ALL)
    valence = np.array([-2, -1, 0, 1, 2])
    assert strong @ valence > weak @ valence > 0


def test_unknown_modality_is_rejected():
    with pytest.raises(ValueError, match="unknown modalities"):
        LiteScorer().score(CLIP, make_evidence((0.1, 0.1)), frozenset({"smell"}))


def test_bad_fusion_params_name_the_value():
    with pytest.raises(ValueError, match="strictly increasing"):
        FusionParams(thresholds=(0.5, 0.1, 0.2, 0.3))


def test_calibration_fit_improves_likelihood_and_roundtrips(tmp_path):
    rng = np.random.default_rng(0)
    evs, labels, langs = [], [], []
    # Ground truth: the face carries the signal and the text is noise - the fit must learn to trust the face.
    for i in range(60):
        y = rng.integers(0, 5)
        v = (y - 2) / 2.0
        evs.append(make_evidence((rng.uniform(-1, 1), 0.9), None, (v, 0.9)))
        labels.append(LABELS[y])
        langs.append("en" if i % 2 else "zh")
    params = fit_fusion(evs, labels)
    assert params.weights["visual"] > params.weights["text"]
    cal = calibrate(evs, labels, langs)
    assert cal.metrics["acc5_train"] > cal.metrics["acc5_train_defaults"]
    path = tmp_path / "calibration.json"
    cal.save(path)
    loaded = LiteScorer.from_path(path)
    ev = evs[0]
    np.testing.assert_allclose(loaded.score(CLIP, ev, ALL), LiteScorer(cal, text_head=loaded.text_head).score(CLIP, ev, ALL))
    no_text = frozenset({"audio", "visual"})  # coalitions without words use the fitted fusion, head or not
    np.testing.assert_allclose(loaded.score(CLIP, ev, no_text), LiteScorer(cal).score(CLIP, ev, no_text))
    assert json.loads(path.read_text())["metrics"]["n"] == 60


def test_broken_calibration_file_is_a_clear_error(tmp_path):
    path = tmp_path / "calibration.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a valid lite calibration"):
        Calibration.load(path)


def _arousal_evidence(text, audio_arousal, visual, language="en"):
    ev = make_evidence(text, None, visual, language)
    ev.audio = ModalityEvidence("audio", True, valence=0.3, confidence=0.3, arousal=audio_arousal,
                                features={"arousal_confidence": 0.8})
    return ev


def test_audio_moves_intensity_not_polarity():
    scorer = LiteScorer()
    calm = scorer.score(CLIP, _arousal_evidence(None, -0.9, (-0.7, 0.8)), ALL)
    aroused = scorer.score(CLIP, _arousal_evidence(None, 0.9, (-0.7, 0.8)), ALL)
    neg, pos = [0, 1], [3, 4]
    assert aroused[0] / aroused[1] > calm[0] / calm[1]  # SNEG gains on WNEG with arousal
    assert calm[neg].sum() == pytest.approx(aroused[neg].sum(), abs=0.05)  # the polarity split barely moves
    no_audio = scorer.score(CLIP, _arousal_evidence(None, 0.9, (-0.7, 0.8)), frozenset({"visual"}))
    assert no_audio[pos].sum() == pytest.approx(aroused[pos].sum(), abs=0.05)  # prosody valence is not polarity


def test_guard_pins_a_modality_that_does_not_help_held_out():
    from omni_mer.scorers.calibrate import guard_weights

    rng = np.random.default_rng(1)
    evs, labels = [], []
    for _ in range(80):  # the face gives the polarity, the voice the strength; the words are noise
        y = int(rng.integers(0, 5))
        side = np.sign(y - 2)
        strength = 1.0 if y in (0, 4) else -1.0
        evs.append(_arousal_evidence((rng.uniform(-1, 1), 0.9), strength * 0.8 + rng.normal(0, 0.1),
                                     (0.6 * side + rng.normal(0, 0.05), 0.9)))
        labels.append(LABELS[y])
    params, report = guard_weights(evs, labels)
    assert report["without_text"]["dropped"] and params.weights["text"] == 0.0
    assert not report["without_visual"]["dropped"] and params.weights["visual"] > 0
    assert not report["without_intensity"]["dropped"] and params.intensity > 0
    assert report["with"]["uar"] >= report["without_intensity"]["uar"]
