"""explanation.png, index.html (escaping, no network) and a headless-Chromium screenshot of the report."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from omni_mer.core.clip import Clip
from omni_mer.core.config import MODALITIES
from omni_mer.evidence.types import Cue, Evidence, ModalityEvidence, Segment
from omni_mer.explain import explain
from omni_mer.report import plots
from omni_mer.report.plots import render_explanation_png
from omni_mer.report.html import write_index_html
from omni_mer.core.labels import LABEL_VALENCE, LABELS
from omni_mer.scorers.base import Scorer

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
MALICIOUS = '<script>alert("x")</script>"><img src=x onerror=alert(1)>'


class ValenceScorer(Scorer):
    """Test double: a transparent function of the present, kept modalities' valences."""

    name = "test-valence"

    def score(self, clip, evidence, keep):
        w = {"text": 2.0, "audio": 1.0, "visual": 1.5}
        v = sum(w[m] * evidence.modality(m).valence for m in MODALITIES
                if m in keep and evidence.modality(m).present)
        logits = -np.array([(v - 1.2 * LABEL_VALENCE[lab]) ** 2 for lab in LABELS])
        p = np.exp(logits - logits.max())
        return p / p.sum()


def make_case(cid: str, lang: str, vals: dict[str, float | None]) -> tuple[Clip, Evidence]:
    cue_text = {"en": {"text": ["loved it", "boring"], "audio": ["pitch rises", "fast speech"],
                       "visual": ["smile (p=0.81)", "frown (p=0.30)"]},
                "zh": {"text": ["很喜欢", "无聊"], "audio": ["音调升高", "语速快"],
                       "visual": ["微笑（p=0.81）", "皱眉（p=0.30）"]}}[lang]
    mods = {}
    for m in MODALITIES:
        if vals[m] is None:
            mods[m] = ModalityEvidence.absent(m, "not detected")
            continue
        cues = [Cue(m, 0.3 + 1.7 * i, 1.2 + 1.9 * i, t, (1 - 2 * i) * vals[m], (1 - 1.6 * i) * vals[m], m)
                for i, t in enumerate(cue_text[m])]
        mods[m] = ModalityEvidence(m, True, vals[m], 0.8, cues=cues)
    tr = "I loved it, though the middle was boring." if lang == "en" else "我很喜欢，不过中间有点无聊。"
    ev = Evidence(lang, tr, [Segment(0, 4, tr)], mods["text"], mods["audio"], mods["visual"])
    yy, xx = np.mgrid[0:72, 0:96]
    frames = np.stack([np.stack([(xx * 2 + 40 * k) % 256, (yy * 3) % 256, np.full_like(xx, 90 + 30 * k)], -1)
                       for k in range(4)]).astype(np.uint8)
    clip = Clip(Path(f"{cid}.mp4"), cid, frames, np.array([0.0, 1.5, 3.0, 4.5]), 0.66,
                np.zeros(16000, np.float32), 5.0, True, True, language=lang)
    return clip, ev


def build_supplements(root: Path) -> list[dict]:
    """Supplements as predict writes them: rows {id, file, label, error, dir, explanation} (+ one flat entry)."""
    entries = []
    for cid, lang, vals in [("clip_en", "en", {"text": 0.7, "audio": -0.4, "visual": 0.5}),
                            ("clip_zh", "zh", {"text": -0.8, "audio": -0.3, "visual": None}),
                            (MALICIOUS, "en", {"text": 0.1, "audio": 0.0, "visual": -0.2})]:
        clip, ev = make_case(cid, lang, vals)
        d = explain(clip, ev, ValenceScorer()).to_dict()
        d["thumbnail_times"] = clip.frame_times.tolist()
        dname = re.sub(r"[^\w.\- ]", "_", cid).strip().lstrip(".-")
        render_explanation_png(d, clip, root / dname / "explanation.png", list(clip.frames))
        (root / dname / "transcript.txt").write_text(ev.transcript, encoding="utf-8")
        if cid == "clip_zh":  # the flat shape (an Explanation.to_dict() with id/file) is accepted too
            entries.append({**d, "file": cid + ".mp4"})
        else:
            entries.append({"id": cid, "file": cid + ".mp4", "label": d["label"], "error": None, "dir": dname,
                            "explanation": d})
    entries.append({"id": "broken&file", "file": "broken&file.mp4", "label": "NEUT", "dir": "broken_file",
                    "error": {"stage": "decode", "reason": "corrupt stream <b>boom</b>"}})
    return entries


def test_png_rendered(tmp_path):
    clip, ev = make_case("c", "zh", {"text": 0.7, "audio": -0.4, "visual": None})
    d = explain(clip, ev, ValenceScorer()).to_dict()
    out = render_explanation_png(d, clip, tmp_path / "a" / "explanation.png", list(clip.frames))
    import matplotlib.image as mpimg

    img = mpimg.imread(out)
    assert img.shape[0] > 500 and img.shape[1] > 1000
    assert img[..., :3].std() > 0.05  # not blank
    # Without thumbnails or clip, and without a CJK font (ASCII fallback), it still renders.
    out2 = render_explanation_png(d, None, tmp_path / "b.png")
    assert out2.stat().st_size > 10_000


def test_png_ascii_fallback_without_cjk_font(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    assert plots._safe("微笑", "smile") == "smile" and plots._safe("smile", "x") == "smile"
    clip, ev = make_case("c", "zh", {"text": 0.7, "audio": -0.4, "visual": 0.2})
    d = explain(clip, ev, ValenceScorer()).to_dict()
    assert render_explanation_png(d, clip, tmp_path / "e.png").stat().st_size > 10_000


def test_cjk_font_found_despite_a_stale_matplotlib_cache(monkeypatch):
    """A font installed after matplotlib built its cache is still found (registered with addfont)."""
    from matplotlib import font_manager

    if not any(h in Path(p).name.lower().replace("-", "") for p in font_manager.findSystemFonts()
               for h in plots._CJK_FILE_HINTS):
        pytest.skip("no CJK font installed (scripts/setup.sh installs fonts-noto-cjk)")
    stale = [f for f in font_manager.fontManager.ttflist if f.name not in plots._CJK_FONTS]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", stale)  # the cache as it was before the install
    plots.cjk_font.cache_clear()
    try:
        name = plots.cjk_font()
        assert name in plots._CJK_FONTS
        assert plots._safe("微笑", "smile") == "微笑"
    finally:
        plots.cjk_font.cache_clear()


@pytest.mark.parametrize(("shapley", "widths"), [
    ({"text": 0.2, "audio": 0.0, "visual": -0.1}, ["50.0", "0.0", "25.0"]),
    ({"text": 1e-17, "audio": 0.0, "visual": -2e-18}, ["0.0", "0.0", "0.0"]),  # float noise: no bars
    ({"text": 0.0, "audio": 0.0, "visual": 0.0}, ["0.0", "0.0", "0.0"]),
])
def test_shapley_bars_scale(shapley, widths):
    from omni_mer.report.html import _shapley_rows

    html = _shapley_rows({"shapley": shapley, "players": list(MODALITIES)})
    assert re.findall(r"width:([0-9.]+)%", html) == widths


def test_index_html_escapes_and_links(tmp_path):
    entries = build_supplements(tmp_path)
    page = write_index_html(tmp_path, entries)
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html.lower() and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;" in html and "&lt;b&gt;boom&lt;/b&gt;" in html and "broken&amp;file" in html
    assert 'src="clip_en/explanation.png"' in html and 'href="clip_zh/transcript.txt"' in html
    assert html.count("explanation.png") >= 6  # every card (incl. the malicious name's folder) has its picture
    assert "decode: corrupt stream" in html
    # No network: every src/href is relative (no scheme) or data:.
    for url in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert not re.match(r"^[a-z]+:", url) or url.startswith("data:"), url
    assert "<link" not in html and "@import" not in html
    for lab in LABELS:
        assert lab in html
    assert "weakly positive" in html or "strongly positive" in html
    assert "强烈消极" in html  # bilingual names
    assert html.count('class="card"') == 3 and "1 errors" in html


@pytest.mark.browser
def test_index_html_renders_in_chromium(tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian package `chromium`); cannot take the screenshot")
    entries = build_supplements(tmp_path)
    page = write_index_html(tmp_path, entries)
    shot = tmp_path / "screenshot.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,900",
           page.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert shot.is_file(), f"no screenshot; chromium said: {proc.stderr[-2000:]}"
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[:2] == (900, 1200)
    assert img[..., :3].std() > 0.05  # something was drawn


def test_thumbnail_strip_joins_frames_at_a_common_height():
    a = np.zeros((100, 160, 3), np.uint8)
    b = np.full((200, 200, 3), 0.5, np.float32)  # float in [0, 1], taller: scaled to 100 px high
    strip, centres = plots.thumbnail_strip([a, b], gap=0.04)
    assert strip.dtype == np.uint8 and strip.shape == (100, 160 + 4 + 100, 3)
    assert centres == [80.0, 164 + 50.0]
    assert (strip[:, 160:164] == 255).all() and abs(int(strip[50, 214, 0]) - 128) <= 1
