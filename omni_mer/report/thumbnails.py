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


def safe_frames(clip: Clip, indices: list[int], blur: bool = True, detector=None):
    """(indices kept, frames safe to save, PrivacyReport or None) for ``clip.frames[indices]``: the one caller of
    the blur.

    With ``blur`` every frame goes through omni_mer.evidence.anonymize, which fails closed: CenterFace upright and
    turned, boxes found in other frames of the clip blurred too (a detector flicker must not leak a face), the whole
    frame pixelated when the detector is unsure, and a frame that still cannot be made safe left out (its index
    too). ``detector``: a frame -> boxes callable used instead of CenterFace (tests).
    """
    indices = list(indices)
    frames = [clip.frames[i] for i in indices]
    if not blur or not frames:
        return indices, frames, None
    from omni_mer.evidence.anonymize import anonymize_frames

    safe, report = anonymize_frames(frames, detector=detector)
    kept = [k for k, f in enumerate(safe) if f is not None]
    return [indices[k] for k in kept], [safe[k] for k in kept], report


def blurred_frames(clip: Clip, indices: list[int], blur: bool = True, detector=None) -> list[np.ndarray]:
    """The frames ``clip.frames[indices]`` made safe to show (``safe_frames``; frames that cannot be made safe are
    left out), unchanged when ``blur`` is False."""
    return safe_frames(clip, indices, blur, detector)[1]
