#!/usr/bin/env bash
# Set up (idempotent) and run the default test suite (slow and GPU tests excluded; see pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg
exec .venv/bin/python -m pytest "$@"
