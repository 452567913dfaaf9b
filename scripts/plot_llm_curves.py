"""Plot the SFT loss and the GRPO reward and KL curves of a train-llm run pair (TRL log_history.json) to a PNG.

    python scripts/plot_llm_curves.py --sft runs/llm05/sft --grpo runs/llm05/grpo --out docs/llm_curves.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _series(history: list[dict], key: str) -> tuple[list[int], list[float]]:
    pts = [(h["step"], float(h[key])) for h in history if key in h and "step" in h]
    return [p[0] for p in pts], [p[1] for p in pts]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sft", type=Path, required=True, help="SFT output folder (log_history.json)")
    ap.add_argument("--grpo", type=Path, required=True, help="GRPO output folder (log_history.json)")
    ap.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sft = json.loads((args.sft / "log_history.json").read_text())
    grpo = json.loads((args.grpo / "log_history.json").read_text())
    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    ax[0].plot(*_series(sft, "loss"), label="SFT loss (assistant tokens)")
    ax[0].set_xlabel("SFT step")
    ax[0].legend()
    ax[1].plot(*_series(grpo, "reward"), label="total reward", linewidth=2)
    for key in sorted({k for h in grpo for k in h if k.startswith("rewards/") and k.endswith("/mean")}):
        ax[1].plot(*_series(grpo, key), label=key.split("/")[1], alpha=0.7)
    ax[1].set_xlabel("GRPO step")
    ax[1].legend(fontsize=8)
    ax[2].plot(*_series(grpo, "kl"), label="KL to the SFT policy", color="tab:red")
    ax[2].set_xlabel("GRPO step")
    ax[2].legend()
    fig.suptitle("Qwen2.5-Coder-0.5B LoRA: SFT then GRPO on real transcripts (CPU)")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
