#!/usr/bin/env bash
# Set up (idempotent) and run the organizers' main job on the shipped sample clips.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg
exec .venv/bin/python test_script.py --input samples --output Test_Results --supplements Test_Supplements "$@"
