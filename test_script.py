"""Organizers' entry point: label every video in Test_Data/ -> Test_Results/label_prediction.csv.

    python test_script.py [--input Test_Data] [--output Test_Results] [--supplements Test_Supplements]
                          [--backend auto|lite|omni|llm] [--model PATH] [--adapter PATH] [--workers N] [--resume]
                          [--id-with-ext] [--text-head auto|e5|fused|DIR]

The text head: auto (default) reads the fused e5 + Qwen2.5-Coder-1.5B head when its weights are set up
(OMNI_MER_LLM=qwen2.5-coder-1.5b bash scripts/setup.sh --llm), else the e5 head (docs/text_head.md).
"""

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded at run time
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from omni_mer.cli import run_command  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_command("predict", sys.argv[1:], prog="test_script.py"))
