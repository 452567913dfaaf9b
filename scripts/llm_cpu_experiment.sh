#!/usr/bin/env bash
# The measured CPU experiment of docs/llm.md: zero-shot -> SFT -> GRPO of Qwen2.5-Coder-0.5B on real transcripts,
# each stage evaluated on the same fixed held-out test subsets. Needs `bash scripts/setup.sh --llm` first.
# Usage: bash scripts/llm_cpu_experiment.sh [RUN_DIR] [STEP...]
#   RUN_DIR default runs/llm05; STEPs (default all, in this order): sft eval_zero_shot eval_sft grpo eval_grpo
#   calibrate plot. calibrate fits each stage's label calibration on 300 + 300 valid rows (MOSEI, SIMS v2) into
#   RUN_DIR/STAGE_label_calibration.json and label-scores the test rows through it. It is not put in the adapter
#   folder, where the scorer would read it by default: copy it there as label_calibration.json only when it helps
#   (docs/llm.md §4: it hurt the 2026-12-07 SFT adapter).
#   A step whose output exists is skipped (rerun to resume); each step's wall time goes to RUN_DIR/times.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/llm05}
shift || true
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(sft eval_zero_shot eval_sft grpo eval_grpo calibrate plot)
PER=${LLM_EVAL_PER_DATASET:-300}
GEN=${LLM_EVAL_GEN_PER_DATASET:-10}
OM=".venv/bin/omni-mer"
export PYTHONPATH=$PWD
mkdir -p "$RUN"
# the GRPO recipe's rewards and weights, so mean_reward measures what GRPO trains
REWARDS=(--reward-funcs format accuracy grounding language --reward-weights 0.5 1.0 0.25 0.25)
EVAL=(--per-dataset "$PER" --gen-per-dataset "$GEN" --max-new-tokens 96 --calibration none "${REWARDS[@]}")
VALID=(--split valid --datasets mosei sims2 --per-dataset "$PER" --gen-per-dataset 0)
calibrate() {  # STAGE (zero_shot, sft, grpo): fit on valid, then the calibrated test scores (generation is unchanged)
  local stage=$1 cal=$RUN/$1_label_calibration.json model=(--adapter "$RUN/$1")
  if [ "$stage" = zero_shot ]; then model=(); fi
  [ -f "$cal" ] || $OM eval-llm "${VALID[@]}" "${model[@]}" --fit-calibration "$cal" --out "$RUN/valid_$stage.json"
  [ -f "$RUN/eval_${stage}_calibrated.json" ] || $OM eval-llm --per-dataset "$PER" --gen-per-dataset 0 "${model[@]}" \
    --calibration "$cal" --out "$RUN/eval_${stage}_calibrated.json"
}
run_step() {
  local name=$1 t0
  t0=$(date +%s)
  case "$name" in
    sft) [ -f "$RUN/sft/adapter_model.safetensors" ] && return
         $OM train-llm --config recipes/llm/qwen2.5-0.5b-cpu/sft.yaml --output-dir "$RUN/sft" ;;
    eval_zero_shot) [ -f "$RUN/eval_zero_shot.json" ] && return
         $OM eval-llm "${EVAL[@]}" --text-head --out "$RUN/eval_zero_shot.json" ;;
    eval_sft) [ -f "$RUN/eval_sft.json" ] && return
         $OM eval-llm "${EVAL[@]}" --adapter "$RUN/sft" --out "$RUN/eval_sft.json" ;;
    grpo) [ -f "$RUN/grpo/adapter_model.safetensors" ] && return
         $OM train-llm --config recipes/llm/qwen2.5-0.5b-cpu/grpo.yaml --init-adapter "$RUN/sft" --output-dir "$RUN/grpo" ;;
    eval_grpo) [ -f "$RUN/eval_grpo.json" ] && return
         $OM eval-llm "${EVAL[@]}" --adapter "$RUN/grpo" --out "$RUN/eval_grpo.json" ;;
    calibrate) for st in zero_shot sft grpo; do calibrate "$st"; done ;;
    plot) .venv/bin/python scripts/plot_llm_curves.py --sft "$RUN/sft" --grpo "$RUN/grpo" --out "$RUN/curves.png" ;;
    *) echo "unknown step $name (valid: sft eval_zero_shot eval_sft grpo eval_grpo calibrate plot)" >&2; exit 2 ;;
  esac
  echo "$name $(( $(date +%s) - t0 )) s" | tee -a "$RUN/times.txt"
}
for s in "${STEPS[@]}"; do run_step "$s"; done
