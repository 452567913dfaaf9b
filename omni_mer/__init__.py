"""omni-mer: cross-lingual explainable multimodal sentiment recognition from raw video.

Data path: decode (media/) -> evidence (evidence/) -> score (scorers/) -> explain (explain/) -> write (report/);
omni_mer.pipeline runs it on one file, omni_mer.batch on a folder. The map: docs/architecture.md.
"""

import os as _os
from pathlib import Path as _Path

__version__ = "0.1.0"


def cache_root() -> _Path:
    """The one documented cache (docs/privacy.md): ``$OMNI_MER_CACHE`` if set, else ``~/.cache/omni-mer``."""
    root = _os.environ.get("OMNI_MER_CACHE")
    return _Path(root).expanduser() if root else _Path.home() / ".cache" / "omni-mer"


# Nothing is written outside the output folders and cache_root() (tests/test_privacy.py runs the job in a fresh
# HOME and TMPDIR and lists what appeared). Set here, before any omni_mer module can import the libraries, and
# inherited by worker processes:
# - onnxruntime (the face detector, faster-whisper's VAD) writes a device id and a telemetry database to
#   ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ when it initialises unless ORT_DISABLE_TELEMETRY is set;
# - matplotlib keeps its font list in ~/.cache/matplotlib (and creates ~/.config/matplotlib) unless MPLCONFIGDIR
#   says where (a user's own MPLCONFIGDIR is kept).
_os.environ["ORT_DISABLE_TELEMETRY"] = "1"
_os.environ.setdefault("MPLCONFIGDIR", str(cache_root() / "matplotlib"))
