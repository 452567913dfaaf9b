"""omni_mer.report.thumbnails: one frame picker, one blur caller."""

from pathlib import Path

import numpy as np

from omni_mer.core.clip import Clip


def test_one_thumbnail_picker_for_the_picture_and_the_demo():
    """explanation.png and the demo's chart show the same frames of a clip: PICTURE_FRAMES of the saved frames."""
    from omni_mer.report.thumbnails import PICTURE_FRAMES, SAVED_FRAMES, pick, picture_indices, saved_indices

    assert pick(0, 4) == [] and pick(3, 8) == [0, 1, 2] and pick(100, 4) == [0, 33, 66, 99]
    for n in (1, 5, 8, 17, 64):
        clip = Clip(path=Path("c.mp4"), id="c", frames=np.zeros((n, 4, 4, 3), np.uint8), frame_times=np.arange(n) / 2.0,
                    fps=2.0, audio=np.zeros(0, np.float32), duration=n / 2.0, has_video=True, has_audio=False)
        saved = saved_indices(clip)
        shown = picture_indices(clip)
        assert len(saved) == min(n, SAVED_FRAMES) and len(shown) == min(n, PICTURE_FRAMES)
        assert set(shown) <= set(saved) and saved[0] == 0 and saved[-1] == n - 1



def test_blur_carries_boxes_over_frames_where_the_detector_misses():
    from omni_mer.report.thumbnails import blurred_frames, saved_indices

    def thumbnails(clip, n, blur, detector=None):
        return blurred_frames(clip, saved_indices(clip, n), blur=blur, detector=detector)

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)
    clip = Clip(path=None, id="x", frames=frames, frame_times=np.arange(4) / 2, fps=2.0,
                audio=np.zeros(0, np.float32), duration=2.0, has_video=True, has_audio=False)
    calls = []

    def flaky_detector(frame):  # finds the face only in the first frame
        calls.append(1)
        return [(16, 16, 32, 32)] if len(calls) == 1 else []

    out = thumbnails(clip, n=4, blur=True, detector=flaky_detector)
    for orig, blurred in zip(frames, out):
        assert not np.array_equal(orig[16:48, 16:48], blurred[16:48, 16:48])  # every face region changed
        np.testing.assert_array_equal(orig[:8, :8], blurred[:8, :8])  # far outside the box untouched
    np.testing.assert_array_equal(thumbnails(clip, n=4, blur=False)[1], frames[1])
