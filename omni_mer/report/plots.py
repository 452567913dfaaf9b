"""explanation.png: modality contribution bars, label probabilities, cue timeline and thumbnails."""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path

import numpy as np

from omni_mer.core.clip import Clip
from omni_mer.core.config import MODALITIES
from omni_mer.core.labels import LABEL_NAMES, LABELS
from omni_mer.report.thumbnails import pick

log = logging.getLogger(__name__)

_CJK_RE = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]")
_CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
              "Source Han Sans SC", "Droid Sans Fallback", "AR PL UMing CN", "Noto Serif CJK SC")
_MOD_COLOUR = {"text": "#4C72B0", "audio": "#DD8452", "visual": "#55A868"}
_POS, _NEG, _ZERO = "#2E8B57", "#C0392B", "#9E9E9E"
_MAX_THUMBS = 6
_LABELLED_CUES_PER_LANE = 5


# File names of the fonts above (Debian fonts-noto-cjk, fonts-wqy-*, fonts-arphic-*, fonts-droid-fallback ...).
_CJK_FILE_HINTS = ("notosanscjk", "notoserifcjk", "wqy", "sourcehansans", "droidsansfallback", "uming")


def _known_cjk_font(font_manager) -> str | None:
    names = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in _CJK_FONTS if name in names), None)


@functools.lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """Name of an installed font with Chinese glyphs, or None.

    matplotlib's font list is cached (~/.cache/matplotlib) and misses a font installed after the cache was made;
    then the system's font files are looked up afresh and the CJK ones registered with ``addfont``.
    """
    from matplotlib import font_manager

    name = _known_cjk_font(font_manager)
    if name is None:
        for path in font_manager.findSystemFonts():
            if any(hint in Path(path).name.lower().replace("-", "").replace("_", "") for hint in _CJK_FILE_HINTS):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError) as exc:  # an unreadable font file: try the next
                    log.debug("cannot register font %s: %s", path, exc)
        name = _known_cjk_font(font_manager)
        if name is not None:
            log.info("registered CJK font %r (not in matplotlib's font cache)", name)
    if name is not None:
        return name
    if not hasattr(cjk_font, "_warned"):
        log.warning("no CJK font installed: Chinese text in explanation.png falls back to ASCII "
                    "(install the Debian package fonts-noto-cjk)")
        cjk_font._warned = True  # type: ignore[attr-defined]
    return None


def _safe(text: str, fallback: str) -> str:
    """``text`` when it can be drawn, else ``fallback`` (CJK strings without a CJK font)."""
    if _CJK_RE.search(text or "") and cjk_font() is None:
        return fallback
    return text


def _short(text: str, n: int = 26) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _label_name(label: str) -> str:
    en = LABEL_NAMES["en"].get(label, label)
    zh = _safe(LABEL_NAMES["zh"].get(label, ""), "")
    return f"{label} · {en}" + (f" · {zh}" if zh else "")


def _duration(explanation: dict, clip: Clip | None) -> float:
    if clip is not None and clip.duration > 0:
        return float(clip.duration)
    if explanation.get("duration"):
        return float(explanation["duration"])
    ends = [float(c.get("end", 0.0)) for c in explanation.get("cues", [])]
    return max(ends + [1.0])


def thumbnail_strip(images: list[np.ndarray], gap: float = 0.04) -> tuple[np.ndarray, list[float]]:
    """The RGB images side by side at their smallest height, separated by white gaps of ``gap`` x that height;
    returns the strip (uint8) and the x centre of each image in it."""
    from PIL import Image

    tiles = []
    for img in images:
        img = img if img.dtype == np.uint8 else (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
        tiles.append(np.stack([img] * 3, axis=-1) if img.ndim == 2 else img[..., :3])
    h = min(t.shape[0] for t in tiles)
    tiles = [t if t.shape[0] == h else
             np.asarray(Image.fromarray(t).resize((max(1, round(t.shape[1] * h / t.shape[0])), h))) for t in tiles]
    space = np.full((h, max(2, round(gap * h)), 3), 255, dtype=np.uint8)
    parts, centres, x = [], [], 0
    for k, t in enumerate(tiles):
        if k:
            parts.append(space)
            x += space.shape[1]
        parts.append(t)
        centres.append(x + t.shape[1] / 2.0)
        x += t.shape[1]
    return np.concatenate(parts, axis=1), centres


def render_explanation_png(explanation: dict, clip: Clip | None, out_path: Path,
                           thumbnails: list[np.ndarray] | None = None) -> Path:
    """Draw explanation.png for one clip and return its path.

    Top: signed Shapley bars per modality (predicted-label probability) and the five label probabilities;
    middle: a strip of (already face-blurred) thumbnails; bottom: the cue timeline, one lane per modality,
    spans coloured by the sign of their effect. ``explanation`` is Explanation.to_dict().
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    font = cjk_font()
    families = ["DejaVu Sans"] + ([font] if font else [])
    thumbs = list(thumbnails or [])
    thumb_idx = pick(len(thumbs), _MAX_THUMBS)
    thumb_times = explanation.get("thumbnail_times")
    label = explanation.get("label", "NEUT")
    probs = explanation.get("probs", {})
    shapley = explanation.get("shapley", {})
    present = set(explanation.get("players", explanation.get("present", MODALITIES)))
    duration = _duration(explanation, clip)

    with matplotlib.rc_context({"font.family": families, "font.size": 10, "axes.titlesize": 11,
                                "axes.unicode_minus": False}):
        fig = plt.figure(figsize=(12, 7.6 if thumb_idx else 6.0), dpi=110)
        heights = [3.0, 1.5, 2.3] if thumb_idx else [3.0, 2.3]
        gs = fig.add_gridspec(len(heights), 3, height_ratios=heights, width_ratios=[1.2, 1.0, 1.05],
                              hspace=0.55, wspace=0.35, left=0.08, right=0.98, top=0.9, bottom=0.08)
        p_label = float(probs.get(label, 0.0))
        title = f"{explanation.get('id', '')}   →   {_label_name(label)}   (p = {p_label:.2f})"
        fig.suptitle(_safe(title, f"{explanation.get('id', '')} -> {label} (p = {p_label:.2f})"),
                     fontsize=13, fontweight="bold")

        # Shapley bars (signed), absent modalities marked.
        ax = fig.add_subplot(gs[0, 0])
        vals = [float(shapley.get(m, 0.0)) for m in MODALITIES]
        colours = [_POS if v > 0 else _NEG if v < 0 else _ZERO for v in vals]
        y = np.arange(len(MODALITIES))[::-1]
        ax.barh(y, vals, color=colours, height=0.6)
        lim = max([abs(v) for v in vals] + [abs(explanation.get("value_all", 0) - explanation.get("value_none", 0)),
                                             0.05]) * 1.35
        ax.set_xlim(-lim, lim)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y, [m for m in MODALITIES])
        for yi, m, v in zip(y, MODALITIES, vals):
            txt = f"{v:+.3f}" if m in present else "absent"
            ax.text(v + (lim * 0.03 if v >= 0 else -lim * 0.03), yi, txt, va="center",
                    ha="left" if v >= 0 else "right", fontsize=9, color="black" if m in present else _ZERO)
        ax.set_title(f"Modality contribution to p({label}) — Shapley")
        ax.set_xlabel(f"sum = value(all) {explanation.get('value_all', 0):.2f} − value(none) "
                      f"{explanation.get('value_none', 0):.2f}")
        ax.grid(axis="x", alpha=0.3)

        # Label probabilities.
        ax = fig.add_subplot(gs[0, 1])
        pv = [float(probs.get(lab, 0.0)) for lab in LABELS]
        ax.bar(range(len(LABELS)), pv, color=["#1f4e79" if lab == label else "#A6BDD7" for lab in LABELS])
        zh = [_safe(LABEL_NAMES["zh"][lab], "") for lab in LABELS]
        ax.set_xticks(range(len(LABELS)), [f"{lab}\n{z}" if z else lab for lab, z in zip(LABELS, zh)], fontsize=8)
        ax.set_ylim(0, 1.05)
        for i, v in enumerate(pv):
            ax.text(i, v + 0.02, f"{v:.2f}", ha="center", fontsize=8)
        ax.set_title("Label probabilities")

        # Counterfactuals and summary.
        ax = fig.add_subplot(gs[0, 2])
        ax.axis("off")
        lines = ["Counterfactual: label without each modality"]
        cf, cfp = explanation.get("counterfactual", {}), explanation.get("counterfactual_probs", {})
        for m in MODALITIES:
            if m not in present:
                lines.append(f"  − {m}: absent")
                continue
            new = cf.get(m, "?")
            change = "same" if new == label else "changes"
            pm = f"; p={cfp[m]:.2f}" if m in cfp else ""
            lines.append(f"  − {m}: {new} ({change}{pm})")
        sv = explanation.get("shapley_valence", {})
        if sv:
            lines.append("")
            lines.append("Shapley on expected valence")
            lines.append("  " + ", ".join(f"{m} {float(sv.get(m, 0)):+.2f}" for m in MODALITIES))
        lines.append("")
        lines.append(f"language: {explanation.get('language', '?')}")
        lines.append(f"backend: {_short(str(explanation.get('backend', '?')), 30)}")
        check = explanation.get("rationale_check", {})
        if check:
            ok = check.get("answer_matches") and check.get("cited_cues_exist")
            lines.append(f"rationale ({explanation.get('rationale_source', '?')}): {'checked OK' if ok else 'CHECK FAILED'}")
        ax.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", fontsize=9, family=families,
                transform=ax.transAxes)

        # Thumbnails: one image strip in one axes (an axes per thumbnail cost 0.1-0.2 s of the 0.5 s drawing).
        if thumb_idx:
            tax = fig.add_subplot(gs[1, :])
            strip, centres = thumbnail_strip([np.asarray(thumbs[i]) for i in thumb_idx])
            tax.imshow(strip)
            tax.axis("off")
            for c, i in zip(centres, thumb_idx):
                if thumb_times and i < len(thumb_times):
                    tax.text(c, -3, f"{float(thumb_times[i]):.1f} s", ha="center", va="bottom", fontsize=8)

        # Cue timeline.
        ax = fig.add_subplot(gs[-1, :])
        lanes = {m: len(MODALITIES) - 1 - k for k, m in enumerate(MODALITIES)}
        cues = explanation.get("cues", [])
        min_w = duration * 0.006
        for m in MODALITIES:
            yl = lanes[m]
            ax.axhspan(yl - 0.45, yl + 0.45, color=_MOD_COLOUR[m], alpha=0.06)
            if m not in present:
                ax.text(duration / 2, yl, f"{m}: absent", ha="center", va="center", color=_ZERO, fontsize=9)
            mcues = [c for c in cues if c.get("modality") == m]
            labelled = sorted(range(len(mcues)), key=lambda i: -abs(float(mcues[i].get("effect", 0.0))))
            labelled = set(labelled[:_LABELLED_CUES_PER_LANE])
            # Labels of cues that start close together alternate above/below the lane so they do not overlap.
            below, last_start, flip = set(), None, False
            for i in sorted(labelled, key=lambda i: float(mcues[i].get("start", 0.0))):
                st = float(mcues[i].get("start", 0.0))
                flip = (not flip) if last_start is not None and st - last_start < duration * 0.12 else False
                if flip:
                    below.add(i)
                last_start = st
            for i, c in enumerate(mcues):
                s, e = float(c.get("start", 0.0)), float(c.get("end", 0.0))
                eff = float(c.get("effect", 0.0))
                col = _POS if eff > 0.02 else _NEG if eff < -0.02 else _ZERO
                ax.add_patch(Rectangle((s, yl - 0.3), max(e - s, min_w), 0.6, color=col,
                                       alpha=0.35 + 0.6 * min(abs(eff), 1.0), lw=0))
                if i in labelled:
                    fallback = c.get("kind") or m
                    ax.text(s, yl - 0.33 if i in below else yl + 0.33,
                            _safe(_short(c.get("text", "")), _short(fallback)), fontsize=7.5,
                            va="top" if i in below else "bottom", ha="left", clip_on=True)
        if thumb_times:
            for i in thumb_idx:
                if i < len(thumb_times):
                    ax.axvline(float(thumb_times[i]), color="black", lw=0.6, ls=":", alpha=0.6)
        ax.set_xlim(0, duration)
        ax.set_ylim(-0.6, len(MODALITIES) - 0.4)
        ax.set_yticks([lanes[m] for m in MODALITIES], list(MODALITIES))
        ax.set_xlabel("time (s)")
        ax.set_title("Cue timeline (green = pushes positive, red = pushes negative)")
        fig.savefig(out_path)
        plt.close(fig)
    return out_path
