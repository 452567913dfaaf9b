"""The pure frame planning of omni_mer.media.frames and the decode warning kinds (no decoding)."""

import numpy as np
import pytest

from omni_mer.media.frames import MAX_TARGET_DISTANCE_S, TargetPlan, nearest, plan_targets, verdict, video_extent
from omni_mer.media.warnings import TRUNCATION, DecodeWarning, DecodeWarnings


def test_plan_targets_respects_fps_and_the_cap():
    t, step = plan_targets(10.0, fps=2.0, max_frames=16)
    assert step == pytest.approx(10.0 / 16) and len(t) == 16  # the cap widens the step
    assert t[0] > 0 and t[-1] < 10.0 and np.allclose(np.diff(t), step)  # centred in the clip
    t, step = plan_targets(3.0, fps=2.0, max_frames=16)
    assert step == 0.5 and len(t) == 6
    assert len(plan_targets(0.1, 2.0, 16)[0]) == 1  # a very short clip still gets a frame


def test_fixed_plan_hands_out_its_targets_once():
    plan = TargetPlan(3.0, fps=2.0, max_frames=16)
    got = []
    while (t := plan.next()) is not None:
        got.append(t)
    assert got == pytest.approx(list(plan_targets(3.0, 2.0, 16)[0])) and plan.planned == 6
    assert plan.thin(list(range(20)), [float(i) for i in range(20)])[0] == list(range(20))  # fixed: never thinned


def test_open_ended_plan_halves_its_rate_over_the_cap():
    plan = TargetPlan(None, fps=2.0, max_frames=4)
    assert plan.planned is None and [plan.next() for _ in range(3)] == [0.25, 0.75, 1.25]
    frames, times = plan.thin(list("abcde"), [0.25, 0.75, 1.25, 1.75, 2.25])
    assert frames == ["a", "c", "e"] and times == [0.25, 1.25, 2.25] and plan.step == 1.0
    assert plan.next() == 3.25  # continues after the last kept frame at the new step


def test_nearest_and_verdict():
    before, after = (0.9, "b"), (1.2, "a")
    assert nearest(before, after, 1.0) == before and nearest(before, after, 1.1) == after
    assert nearest(None, after, 1.0) == after and nearest((0.75, "b"), (1.25, "a"), 1.0) == (1.25, "a")  # tie: later
    assert verdict(5.0, 9.0, 0.5, 0.04, ended=False, have_frames=False) == "take"  # the first frame always
    assert verdict(1.0, 1.1, 0.5, 0.04, ended=False, have_frames=True) == "take"
    assert verdict(1.0, 1.0 + MAX_TARGET_DISTANCE_S + 0.1, 0.5, 0.04, ended=False, have_frames=True) == "skip"
    assert verdict(1.0, 1.5, 0.5, 0.04, ended=True, have_frames=True) == "stop"  # past the stream's last frame
    assert video_extent(2.0, 25.0) == pytest.approx(2.04) and video_extent(-np.inf, None) == 0.0


def test_truncation_is_read_from_kinds_not_text():
    w = DecodeWarnings()
    w.add(DecodeWarning.AUDIO_CUT, "audio truncated to max_audio_seconds=300 s")  # a whole file, cut on purpose
    w.add(DecodeWarning.PACKETS_SKIPPED, "video packet(s) failed ... ends at ... stopped early")  # text means nothing
    assert not w.truncated and w.messages[0].startswith("audio truncated")
    for kind in TRUNCATION:
        one = DecodeWarnings()
        one.add(kind, "x")
        assert one.truncated and one.has(kind)
