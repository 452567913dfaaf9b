"""Which frames of a clip are shown, and the one place they are face-blurred before anyone sees them.

frames/ of the supplements holds SAVED_FRAMES frames spread evenly over the clip; the picture strip (explanation.png
and the demo's chart) shows PICTURE_FRAMES of those, picked the same way, so the same clip shows the same frames
everywhere.
"""

from __future__ import annotations

import numpy as np

from omni_mer.core.clip import Clip

SAVED_FRAMES = 8  # Test_Supplements/<ID>/frames/
PICTURE_FRAMES = 4  # the thumbnail strip of explanation.png and of the demo's chart


def pick(count: int, n: int) -> list[int]:
    """The one picker: ``n`` positions spread evenly over ``range(count)``, first and last included (all when
    ``count <= n``)."""
    if count <= 0 or n <= 0:
        return []
    return sorted({int(i) for i in np.linspace(0, count - 1, num=min(n, count)).round()})


def saved_indices(clip: Clip, n: int = SAVED_FRAMES) -> list[int]:
    """Indices into ``clip.frames`` of the frames saved to frames/."""
    return pick(len(clip.frames), n)


def picture_indices(clip: Clip, saved: list[int] | None = None) -> list[int]:
    """Indices into ``clip.frames`` of the picture strip: PICTURE_FRAMES of the saved frames."""
    saved = saved_indices(clip) if saved is None else saved
    return [saved[k] for k in pick(len(saved), PICTURE_FRAMES)]


def blurred_frames(clip: Clip, indices: list[int], blur: bool = True, detector=None) -> list[np.ndarray]:
    """The frames ``clip.frames[indices]``, faces blurred unless ``blur`` is False; the only caller of the blur.

    Privacy first: a frame where the detector misses a face that it found in other frames of the clip is blurred
    with the boxes of the nearest frame that has detections (a detector flicker must not leak a face).
    """
    frames = [clip.frames[i] for i in indices]
    if not blur or not frames:
        return frames
    from omni_mer.evidence.face import blur_faces, detect_faces

    detect = detector or detect_faces
    boxes = [detect(f) for f in frames]
    found = [k for k, b in enumerate(boxes) if b]
    out = []
    for k, frame in enumerate(frames):
        use = boxes[k]
        if not use and found:
            use = boxes[min(found, key=lambda j: abs(j - k))]
        out.append(blur_faces(frame, use) if use else frame)
    return out
