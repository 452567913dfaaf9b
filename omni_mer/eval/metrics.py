"""Five-class sentiment metrics, pure numpy.

Definitions (labels are LABELS = SNEG WNEG NEUT WPOS SPOS, index 0..4):
- acc5 (= WAR, weighted average recall): fraction of exact matches.
- uar: mean recall over the classes present in y_true.
- macro_f1: mean F1 over the classes present in y_true or y_pred; weighted_f1: F1 weighted by true support.
- acc2: negative (SNEG, WNEG) vs positive (WPOS, SPOS) on the clips whose TRUE label is not NEUT; a NEUT
  prediction on such a clip counts as wrong. acc2_n is how many clips it was computed on.
- mae: mean ordinal distance |index(true) - index(pred)|.
Undefined values (no clips) are None.

Public API:
    confusion_matrix(y_true, y_pred) -> np.ndarray (5, 5), rows = true, columns = predicted
    classification_metrics(y_true, y_pred) -> dict
    evaluate_labels(y_true, y_pred, langs=None) -> {"overall": {...}, "per_language": {lang: {...}}}
    save_confusion(cm, csv_path, png_path=None, title="") -> None
    cross_lingual_table(acc: dict[(train_lang, test_lang), float]) -> dict
    cross_lingual_markdown(table) -> str
    markdown_summary(result, title="Evaluation", cross=None) -> str
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from omni_mer.core.labels import LABEL_INDEX, LABELS

NEGATIVE = ("SNEG", "WNEG")
POSITIVE = ("WPOS", "SPOS")
METRIC_NAMES = ("acc5", "uar", "macro_f1", "weighted_f1", "acc2", "mae")


def _indices(labels: Sequence[str], what: str) -> np.ndarray:
    out = np.empty(len(labels), dtype=np.int64)
    for i, lab in enumerate(labels):
        if lab not in LABEL_INDEX:
            raise ValueError(f"{what}[{i}] = {lab!r} is not one of {LABELS}")
        out[i] = LABEL_INDEX[lab]
    return out


def confusion_matrix(y_true: Sequence[str], y_pred: Sequence[str]) -> np.ndarray:
    """Counts (5, 5): rows are the true class, columns the predicted class, in LABELS order."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    t, p = _indices(y_true, "y_true"), _indices(y_pred, "y_pred")
    cm = np.zeros((len(LABELS), len(LABELS)), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def _none_if_nan(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def metrics_from_confusion(cm: np.ndarray) -> dict:
    """All metrics from a confusion matrix (rows true, columns predicted)."""
    cm = np.asarray(cm, dtype=np.float64)
    n = cm.sum()
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / np.where(support > 0, support, 1), np.nan)
        precision = np.where(predicted > 0, tp / np.where(predicted > 0, predicted, 1), 0.0)
        denom = precision + np.nan_to_num(recall)
        f1 = np.where(denom > 0, 2 * precision * np.nan_to_num(recall) / np.where(denom > 0, denom, 1), 0.0)
    present = (support > 0) | (predicted > 0)
    idx = np.arange(len(LABELS))
    dist = np.abs(idx[:, None] - idx[None, :])
    neg = [LABEL_INDEX[c] for c in NEGATIVE]
    pos = [LABEL_INDEX[c] for c in POSITIVE]
    acc2_n = cm[neg].sum() + cm[pos].sum()
    acc2_correct = cm[np.ix_(neg, neg)].sum() + cm[np.ix_(pos, pos)].sum()
    out = {
        "n": int(n),
        "acc5": tp.sum() / n if n else math.nan,
        "uar": float(np.nanmean(recall)) if (support > 0).any() else math.nan,
        "macro_f1": float(f1[present].mean()) if present.any() else math.nan,
        "weighted_f1": float((f1 * support).sum() / n) if n else math.nan,
        "acc2": acc2_correct / acc2_n if acc2_n else math.nan,
        "acc2_n": int(acc2_n),
        "mae": float((cm * dist).sum() / n) if n else math.nan,
        "per_class": {
            lab: {
                "support": int(support[i]),
                "predicted": int(predicted[i]),
                "recall": _none_if_nan(float(recall[i])),
                "precision": float(precision[i]) if predicted[i] > 0 else None,
                "f1": float(f1[i]) if present[i] else None,
            }
            for i, lab in enumerate(LABELS)
        },
    }
    for k in METRIC_NAMES:
        out[k] = _none_if_nan(float(out[k]))
    return out


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str]) -> dict:
    """acc5 (WAR), uar, macro_f1, weighted_f1, acc2 (+acc2_n), mae, n, per_class and the confusion matrix."""
    cm = confusion_matrix(y_true, y_pred)
    out = metrics_from_confusion(cm)
    out["confusion"] = cm.tolist()
    return out


def evaluate_labels(y_true: Sequence[str], y_pred: Sequence[str], langs: Sequence[str] | None = None) -> dict:
    """Metrics overall and, when ``langs`` is given, per language."""
    result = {"overall": classification_metrics(y_true, y_pred), "per_language": {}}
    if langs is not None:
        if len(langs) != len(y_true):
            raise ValueError(f"langs has {len(langs)} entries but y_true has {len(y_true)}")
        for lang in sorted(set(langs)):
            sel = [i for i, x in enumerate(langs) if x == lang]
            result["per_language"][lang] = classification_metrics([y_true[i] for i in sel], [y_pred[i] for i in sel])
    return result


def save_confusion(cm: np.ndarray, csv_path: str | Path, png_path: str | Path | None = None, title: str = "") -> None:
    """Confusion matrix as CSV (true\\pred header) and, optionally, a PNG heat map (row-normalised colours)."""
    cm = np.asarray(cm)
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["true\\pred", *LABELS])
        for lab, row in zip(LABELS, cm):
            w.writerow([lab, *[int(x) for x in row]])
    if png_path is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(4.8, 4.2), dpi=110)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(LABELS)), LABELS)
    ax.set_yticks(range(len(LABELS)), LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(LABELS)):
        for j in range(len(LABELS)):
            ax.text(j, i, str(int(cm[i, j])), ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=9)
    ax.set_title(title or f"confusion (n={int(cm.sum())})", fontsize=10)
    fig.tight_layout()
    Path(png_path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path)
    plt.close(fig)


def cross_lingual_table(acc: dict[tuple[str, str], float]) -> dict:
    """Train-language × test-language accuracy with retention = cross-lingual acc / in-language acc on the
    test language (acc[(test, test)]). Returns {"train_langs", "test_langs", "acc": {train: {test: a}},
    "retention": {train: {test: r or None}}}."""
    trains = sorted({tr for tr, _ in acc})
    tests = sorted({te for _, te in acc})
    table = {"train_langs": trains, "test_langs": tests, "acc": {}, "retention": {}}
    for tr in trains:
        table["acc"][tr] = {te: _none_if_nan(acc.get((tr, te), math.nan)) for te in tests}
        table["retention"][tr] = {}
        for te in tests:
            a, base = acc.get((tr, te)), acc.get((te, te))
            ok = a is not None and base is not None and not math.isnan(a) and base and not math.isnan(base)
            table["retention"][tr][te] = float(a / base) if ok else None
    return table


def _fmt(x: float | None, pct: bool = True) -> str:
    if x is None:
        return "–"
    return f"{100 * x:.2f}" if pct else f"{x:.3f}"


def cross_lingual_markdown(table: dict) -> str:
    """Markdown table: rows train language, columns test language, 'acc (retention)'."""
    tests = table["test_langs"]
    lines = ["| train \\ test | " + " | ".join(tests) + " |", "|---|" + "---|" * len(tests)]
    for tr in table["train_langs"]:
        cells = []
        for te in tests:
            a, r = table["acc"][tr][te], table["retention"][tr][te]
            cells.append(_fmt(a) + ("" if tr == te or r is None else f" ({100 * r:.1f}% of in-language)"))
        lines.append(f"| {tr} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _metric_row(name: str, m: dict) -> str:
    return (f"| {name} | {m['n']} | {_fmt(m['acc5'])} | {_fmt(m['uar'])} | {_fmt(m['macro_f1'])} | "
            f"{_fmt(m['weighted_f1'])} | {_fmt(m['acc2'])} | {_fmt(m['mae'], pct=False)} |")


def markdown_summary(result: dict, title: str = "Evaluation", cross: dict | None = None) -> str:
    """Markdown with the overall and per-language metrics (percent, MAE in classes) and the optional
    cross-lingual table."""
    lines = [f"## {title}", "", "| set | n | Acc-5 (WAR) | UAR | macro-F1 | weighted-F1 | Acc-2 | MAE |",
             "|---|---|---|---|---|---|---|---|", _metric_row("overall", result["overall"])]
    for lang, m in result.get("per_language", {}).items():
        lines.append(_metric_row(lang, m))
    lines += ["", "Acc-2: negative vs positive on clips whose true label is not NEUT; MAE: mean class-index distance."]
    if cross:
        lines += ["", "### Cross-lingual accuracy (Acc-5, %)", "", cross_lingual_markdown(cross)]
    return "\n".join(lines) + "\n"
