#!/usr/bin/env bash
# Set up (idempotent), lint (ruff, configured in pyproject.toml), then run the default test suite (slow and GPU
# tests excluded; see pyproject.toml). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check .
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg
exec .venv/bin/python -m pytest "$@"
