"""Which video frames a Clip keeps: sampling targets and the choice of a decoded frame for each (pure functions,
no decoding; omni_mer.media.decoder feeds them decoded frame times)."""

from __future__ import annotations

import math

import numpy as np

# A sampled frame farther than this from its target (beyond the sampling step) means the stream ended early.
MAX_TARGET_DISTANCE_S = 1.0


def plan_targets(duration: float, fps: float, max_frames: int) -> tuple[np.ndarray, float]:
    """Uniform sampling targets over [0, duration]: step 1/fps, widened so that at most max_frames fit; the targets
    are centred in the duration. Returns (targets, step)."""
    step = max(1.0 / fps, duration / max_frames)
    n = max(1, min(max_frames, int(math.floor(duration / step + 1e-6))))
    offset = max(0.0, (duration - (n - 1) * step) / 2)
    return offset + step * np.arange(n), step


class TargetPlan:
    """The sampling targets of one video, handed out one at a time.

    Known duration: plan_targets' fixed grid. Unknown duration (a streamed file): an open-ended grid at ``fps``
    whose step doubles (every other kept frame dropped) whenever more than ``max_frames`` are kept, so memory stays
    bounded whatever the length.
    """

    def __init__(self, duration: float | None, fps: float, max_frames: int) -> None:
        self.max_frames = max_frames
        if duration is not None:
            targets, self.step = plan_targets(duration, fps, max_frames)
            self.targets: list[float] | None = [float(t) for t in targets]
        else:
            self.targets, self.step = None, 1.0 / fps
        self._k = 0
        self._cursor = self.step / 2

    @property
    def planned(self) -> int | None:
        """How many frames the plan asks for (None when open-ended)."""
        return None if self.targets is None else len(self.targets)

    def next(self) -> float | None:
        """The next target time (seconds), or None when the fixed plan is done."""
        if self.targets is not None:
            if self._k >= len(self.targets):
                return None
            self._k += 1
            return self.targets[self._k - 1]
        target, self._cursor = self._cursor, self._cursor + self.step
        return target

    def thin(self, frames: list, times: list[float]) -> tuple[list, list[float]]:
        """Open-ended plan over its cap: keep every other frame and double the step; else unchanged."""
        if self.targets is not None or len(frames) <= self.max_frames:
            return frames, times
        frames, times = frames[::2], times[::2]
        self.step *= 2
        self._cursor = times[-1] + self.step
        return frames, times


def nearest(before: tuple | None, after: tuple, target: float) -> tuple:
    """Of the last decoded frame before ``target`` and the first at/after it (``(time, frame)`` pairs), the nearer;
    a tie goes to the later one."""
    if before is None or (after[0] - target) <= (target - before[0]):
        return after
    return before


def verdict(chosen_time: float, target: float, step: float, frame_duration: float, ended: bool,
            have_frames: bool) -> str:
    """What to do with the frame chosen for ``target``: "take" it, "skip" the target, or "stop" sampling.

    Once the stream has ended, a target past the last frame's span is not shown (stop). A frame farther from its
    target than a step (and than MAX_TARGET_DISTANCE_S) shows another moment: skip that target, or stop when the
    stream is over. The first frame is always taken.
    """
    if not have_frames:
        return "take"
    if ended and target > chosen_time + frame_duration:
        return "stop"
    if abs(chosen_time - target) > max(step, MAX_TARGET_DISTANCE_S):
        return "stop" if ended else "skip"
    return "take"


def video_extent(last_seen: float, source_fps: float | None) -> float:
    """Seconds of video the stream really holds: the last decoded frame's time plus its duration."""
    return max(last_seen, 0.0) + (1.0 / source_fps if source_fps else 0.0)
