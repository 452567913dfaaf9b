#!/usr/bin/env bash
# Idempotent fresh-machine setup: a CJK font (Chinese text in explanation.png), venv + pinned Python deps
# (+ the Debian packages only tests need when --test).
# Usage: bash scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${OMNI_MER_VENV:-.venv}
PY=${PYTHON:-python3}

need=()
# The main job draws Chinese cues and rationales in explanation.png: it needs a CJK font (found at run time even
# when matplotlib's font cache predates it; omni_mer.report.plots.cjk_font).
fc-list :lang=zh 2>/dev/null | grep -q . || need+=(fonts-noto-cjk)
if [ "${1:-}" = "--test" ]; then
  # Used only by tests: headless Chromium (report/demo screenshots).
  [ -x /usr/bin/chromium ] || need+=(chromium)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

stamp="$VENV/.omni-mer-installed"
want=$(cat requirements.txt requirements-nodeps.txt pyproject.toml | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "setup: $VENV is up to date"
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch/torchvision resolve to the local 2.14.1/0.29.1 build under the machine's pip cap.
"$VENV/bin/python" -m pip install -q -r requirements.txt
"$VENV/bin/python" -m pip install -q --no-deps -r requirements-nodeps.txt
"$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
"$VENV/bin/python" - <<'PY'
import torch, torchvision
assert torch.__version__.startswith("2.14.1"), torch.__version__
assert torchvision.__version__.startswith("0.29.1"), torchvision.__version__
PY
echo "$want" > "$stamp"
echo "setup: done ($VENV)"
