"""Test_Supplements/index.html: one self-contained page (no network, no scripts) listing every video."""

from __future__ import annotations

import html
import logging
from pathlib import Path
from urllib.parse import quote

from omni_mer.core.answer import rationale_text
from omni_mer.core.config import MODALITIES
from omni_mer.core.labels import LABEL_NAMES, LABELS

log = logging.getLogger(__name__)

_LABEL_COLOUR = {"SNEG": "#b2182b", "WNEG": "#ef8a62", "NEUT": "#8c8c8c", "WPOS": "#67a9cf", "SPOS": "#2166ac"}

_CSS = """
body{font-family:"DejaVu Sans","Noto Sans CJK SC","WenQuanYi Micro Hei",Arial,sans-serif;margin:18px;color:#222;
background:#f6f7f9}
h1{font-size:22px;margin:0 0 6px}
.summary{margin:6px 0 16px;font-size:14px}
.summary span.badge{margin-right:6px}
.card{background:#fff;border:1px solid #d9dde3;border-radius:8px;padding:12px 14px;margin:0 0 14px;
box-shadow:0 1px 2px rgba(0,0,0,.05)}
.head{display:flex;align-items:baseline;gap:12px;flex-wrap:wrap}
.id{font-weight:bold;font-size:16px;word-break:break-all}
.file{color:#666;font-size:12px;word-break:break-all}
.badge{display:inline-block;color:#fff;border-radius:4px;padding:2px 8px;font-size:13px;font-weight:bold}
.names{color:#444;font-size:13px}
.cols{display:flex;gap:16px;flex-wrap:wrap;margin-top:8px}
.left{flex:1 1 380px;min-width:320px}
.right{flex:1 1 480px;min-width:320px}
.right img{max-width:100%;border:1px solid #e2e2e2;border-radius:4px}
table.bars{border-collapse:collapse;font-size:12px;width:100%}
table.bars td{padding:1px 4px;vertical-align:middle}
td.lab{width:120px;white-space:nowrap}
td.num{width:58px;text-align:right;font-variant-numeric:tabular-nums}
.track{background:#eef0f3;height:12px;position:relative;border-radius:2px}
.fill{height:12px;position:absolute;top:0;border-radius:2px}
.mid{position:absolute;left:50%;top:-2px;width:1px;height:16px;background:#333}
h3{font-size:13px;margin:10px 0 4px;color:#333}
.rationale{white-space:pre-wrap;font-size:13px;background:#fafbfc;border-left:3px solid #9db4d3;padding:6px 8px;
margin:6px 0}
.meta{font-size:12px;color:#555}
.ok{color:#1b7f3b}.bad{color:#b2182b;font-weight:bold}
table.err{border-collapse:collapse;background:#fff;font-size:13px}
table.err td,table.err th{border:1px solid #d9dde3;padding:4px 8px;text-align:left}
a{color:#1f5fa8}
"""


def _e(x: object) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _href(*parts: str) -> str:
    return "/".join(quote(p, safe="") for p in parts)


def _badge(label: str) -> str:
    return f'<span class="badge" style="background:{_LABEL_COLOUR.get(label, "#555")}">{_e(label)}</span>'


def _names(label: str) -> str:
    en, zh = LABEL_NAMES["en"].get(label, ""), LABEL_NAMES["zh"].get(label, "")
    return f'<span class="names">{_e(en)} · <span lang="zh">{_e(zh)}</span></span>'


def _prob_rows(probs: dict, label: str) -> str:
    rows = []
    for lab in LABELS:
        p = float(probs.get(lab, 0.0))
        colour = _LABEL_COLOUR[lab] if lab == label else "#a9b8cc"
        rows.append(
            f'<tr><td class="lab">{_e(lab)} <span lang="zh">{_e(LABEL_NAMES["zh"][lab])}</span></td>'
            f'<td><div class="track"><div class="fill" style="left:0;width:{100 * max(0.0, min(p, 1.0)):.1f}%;'
            f'background:{colour}"></div></div></td><td class="num">{p:.3f}</td></tr>')
    return '<table class="bars">' + "".join(rows) + "</table>"


# Bars are scaled by the largest |Shapley value|, but never by less than this (probability units): values that
# print as +0.000 are float noise and must draw no bar, not a half-width one.
SHAPLEY_BAR_FLOOR = 1e-3


def _shapley_rows(expl: dict) -> str:
    shap = expl.get("shapley", {})
    present = set(expl.get("players", expl.get("present", MODALITIES)))
    scale = max([abs(float(shap.get(m, 0.0))) for m in MODALITIES] + [SHAPLEY_BAR_FLOOR])
    rows = []
    for m in MODALITIES:
        v = float(shap.get(m, 0.0))
        half = 50.0 * abs(v) / scale
        left = 50.0 if v >= 0 else 50.0 - half
        colour = "#2e8b57" if v > 0 else "#c0392b"
        num = f"{v:+.3f}" if m in present else "absent"
        rows.append(
            f'<tr><td class="lab">{_e(m)}</td><td><div class="track"><div class="fill" style="left:{left:.1f}%;'
            f'width:{half:.1f}%;background:{colour}"></div><div class="mid"></div></div></td>'
            f'<td class="num">{_e(num)}</td></tr>')
    return '<table class="bars">' + "".join(rows) + "</table>"


def _rationale_html(rationale: str) -> str:
    body = rationale_text(rationale)
    return f'<div class="rationale">{_e(body)}</div>'


def _normalise(entry: dict) -> dict:
    """Accept both a flat explanation dict and predict's {id, file, label, error, dir, explanation} rows."""
    if isinstance(entry.get("explanation"), dict):
        merged = {**entry["explanation"], **{k: v for k, v in entry.items() if k != "explanation" and v is not None}}
    else:
        merged = dict(entry)
    err = merged.get("error")
    if isinstance(err, dict):
        merged["error"] = ": ".join(str(err[k]) for k in ("stage", "reason") if err.get(k)) or str(err)
    return merged


def _folder(entry: dict, supplements_dir: Path) -> tuple[str, Path] | None:
    """The entry's folder name (``dir`` when given, else the id) if it is a plain child of supplements_dir."""
    name = str(entry.get("dir") or entry.get("id") or "")
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        return None
    return name, supplements_dir / name


def _card(entry: dict, supplements_dir: Path) -> str:
    cid = str(entry.get("id", ""))
    label = str(entry.get("label", ""))
    found = _folder(entry, supplements_dir)
    dname, folder = found if found else ("", None)
    parts = [f'<div class="card" id="{_e("clip-" + cid)}"><div class="head"><span class="id">{_e(cid)}</span>'
             f'{_badge(label)} {_names(label)}']
    p = float(entry.get("probs", {}).get(label, 0.0))
    parts.append(f'<span class="meta">p = {p:.3f}</span>')
    if entry.get("file") and entry.get("file") != cid:
        parts.append(f'<span class="file">{_e(entry["file"])}</span>')
    parts.append("</div>")
    parts.append('<div class="cols"><div class="left"><h3>Label probabilities</h3>')
    parts.append(_prob_rows(entry.get("probs", {}), label))
    parts.append(f'<h3>Modality contribution to p({_e(label)}) — Shapley (sum = '
                 f'{float(entry.get("value_all", 0)) - float(entry.get("value_none", 0)):+.3f})</h3>')
    parts.append(_shapley_rows(entry))
    cf = entry.get("counterfactual", {})
    present = set(entry.get("players", entry.get("present", MODALITIES)))
    if cf:
        items = [f"without {_e(m)}: {_e(cf.get(m, '?'))}" for m in MODALITIES if m in present]
        parts.append(f'<div class="meta">Counterfactual — {"; ".join(items) or "no modality present"}</div>')
    check = entry.get("rationale_check", {})
    ok = bool(check.get("answer_matches")) and bool(check.get("cited_cues_exist"))
    parts.append(f'<h3>Rationale ({_e(entry.get("rationale_source", "?"))}, {_e(entry.get("language", "?"))}) '
                 f'<span class="{"ok" if ok else "bad"}">{"✓ checked" if ok else "✗ check failed"}</span></h3>')
    parts.append(_rationale_html(entry.get("rationale", "")))
    links = []
    if folder is not None:
        for name, text in (("transcript.txt", "transcript"), ("transcript.srt", "subtitles"),
                           ("explanation.json", "explanation.json")):
            if (folder / name).is_file():
                links.append(f'<a href="{_href(dname, name)}">{text}</a>')
    meta = [f"backend: {_e(entry.get('backend', '?'))}", f"version: {_e(entry.get('version', '?'))}"]
    parts.append(f'<div class="meta">{" · ".join(links + meta)}</div></div>')
    parts.append('<div class="right">')
    if folder is not None and (folder / "explanation.png").is_file():
        png = _href(dname, "explanation.png")
        parts.append(f'<a href="{png}"><img src="{png}" alt="{_e("explanation of " + cid)}" loading="lazy"></a>')
    else:
        parts.append('<div class="meta">no picture</div>')
    parts.append("</div></div></div>")
    return "".join(parts)


def write_index_html(supplements_dir: Path, entries: list[dict], title: str = "omni-mer results") -> Path:
    """Write ``supplements_dir/index.html`` and return its path.

    Each entry is an explanation dict (Explanation.to_dict(), with ``id`` and optionally ``file``/``dir``), or
    predict's row ``{"id", "file", "label", "error", "dir", "explanation"}``; rows with a truthy ``error``
    (a string or {"stage", "reason"}) are listed as errors. ``dir`` is the folder name under supplements_dir. Pictures and transcripts are relative links into ``<ID>/``; all text is
    HTML-escaped (file names are untrusted) and the page loads nothing from the network.
    """
    supplements_dir = Path(supplements_dir)
    supplements_dir.mkdir(parents=True, exist_ok=True)
    entries = [_normalise(e) for e in entries]
    ok = [e for e in entries if not e.get("error")]
    errors = [e for e in entries if e.get("error")]
    counts = {lab: sum(e.get("label") == lab for e in ok) for lab in LABELS}
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src \'self\' data: file:; '
           'style-src \'unsafe-inline\'">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{_e(title)}</h1>",
           f'<div class="summary">{len(ok)} videos labelled, {len(errors)} errors. ']
    out.append(" ".join(f'{_badge(lab)}{counts[lab]}' for lab in LABELS))
    out.append("</div>")
    if errors:
        out.append('<h3>Errors</h3><table class="err"><tr><th>ID</th><th>file</th><th>label written</th>'
                   "<th>error</th></tr>")
        for e in errors:
            out.append(f"<tr><td>{_e(e.get('id'))}</td><td>{_e(e.get('file', ''))}</td>"
                       f"<td>{_e(e.get('label', ''))}</td><td>{_e(e.get('error'))}</td></tr>")
        out.append("</table><br>")
    for e in ok:
        try:
            out.append(_card(e, supplements_dir))
        except (TypeError, ValueError, AttributeError) as exc:  # a malformed entry must not sink the page
            log.warning("index.html: cannot render entry %r: %s", e.get("id"), exc)
            out.append(f'<div class="card"><span class="id">{_e(e.get("id"))}</span> '
                       f'<span class="bad">cannot render: {_e(exc)}</span></div>')
    out.append("</body></html>")
    path = supplements_dir / "index.html"
    path.write_text("\n".join(out), encoding="utf-8", errors="backslashreplace")
    return path
