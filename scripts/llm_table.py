"""Markdown table of a run's eval-llm JSONs (zero-shot -> SFT -> GRPO, raw and label-calibrated) for docs/llm.md.

    python scripts/llm_table.py runs/llm05
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

STAGES = (("zero-shot", "eval_zero_shot.json"), ("after SFT", "eval_sft.json"), ("after SFT + GRPO", "eval_grpo.json"),
          ("zero-shot, calibrated", "eval_zero_shot_calibrated.json"), ("after SFT, calibrated", "eval_sft_calibrated.json"),
          ("after SFT + GRPO, calibrated", "eval_grpo_calibrated.json"))  # calibrated: label scoring only


def _f(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def main(run: str) -> int:
    rows = ["| stage | dataset | n | Acc-5 | UAR | format-valid (n gen.) | parse rate | mean reward "
            "| generated Acc-5 / UAR |", "|---|---|---|---|---|---|---|---|---|"]
    head = None
    for stage, name in STAGES:
        path = Path(run) / name
        if not path.is_file():
            rows.append(f"| {stage} | (not run: {path} missing) | | | | | | | |")
            continue
        res = json.loads(path.read_text())
        for ds, m in res["datasets"].items():
            g = m.get("generated") or {}
            rows.append(f"| {stage} | {ds} | {m['n']} | {_f(m['acc5'])} | {_f(m['uar'])} | "
                        f"{_f(m.get('format_valid'))} ({m.get('n_generated', 0)}) | {_f(m.get('parse_rate'))} | "
                        f"{_f(m.get('mean_reward'))} | {_f(g.get('acc5'))} / {_f(g.get('uar'))} |")
            if "text_head" in m:
                head = head or {}
                head[ds] = m["text_head"]
        rows.append(f"| {stage} | seconds per row | | label scoring {res['score_seconds_per_row']} | | "
                    f"generation {res.get('generate_seconds_per_row', '–')} | | | |")
    if head:
        rows += ["", "| text head (shipped) on the same rows | n | Acc-5 | UAR |", "|---|---|---|---|"]
        rows += [f"| {ds} | {m['n']} | {_f(m['acc5'])} | {_f(m['uar'])} |" for ds, m in head.items()]
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "runs/llm05"))
