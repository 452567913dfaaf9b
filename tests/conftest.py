import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# The default suite reads the e5 text head on every machine: where the Qwen2.5-1.5B weights are set up, "auto" would
# pick the fused head (texthead/shipped.py) and the numbers would depend on the machine. Tests of the choice set it.
os.environ["OMNI_MER_TEXT_HEAD"] = "e5"
