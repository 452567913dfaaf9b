"""The labelled transcripts the text head learns from, read through the dataset adapters (omni_mer/data).

Each table row gives one native example (its own language) and, where a machine translation exists, one
translated example (the other language, same label, ``translated=True``). Splits are the datasets' own.

Public API:
    DATASETS                                  the evaluated datasets (--train-datasets)
    AUX_DATASETS                              extra train-only sentiment text (--aux-datasets)
    load_aux(data, names) -> list[TextExample]
    TextExample(id, dataset, lang, text, label5, score, valence, split, translated)
    load_corpus(data, datasets=DEFAULT_DATASETS) -> list[TextExample]
    select(examples, split=None, datasets=None, langs=None, translated=None) -> list[TextExample]
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from omni_mer.data.manifest import build_manifest, text_table_roots
from omni_mer.core.labels import LABELS, MER2023_RANGE, MOSEI_RANGE, SIMS_RANGE

log = logging.getLogger(__name__)

# manifest source -> (display name, half-range of its score scale: valence = score / half-range in [-1, 1])
DATASETS: dict[str, tuple[str, float]] = {
    "mosei": ("MOSEI", MOSEI_RANGE[1]),
    "mosi": ("MOSI", MOSEI_RANGE[1]),
    "sims": ("SIMS", SIMS_RANGE[1]),
    "sims2": ("SIMSv2", SIMS_RANGE[1]),
    "mer2023": ("MER2023", MER2023_RANGE[1]),
}
# Loaded unless asked otherwise. SIMS (v1) is left out: every one of its 2,275 clips is a CH-SIMS v2 clip with the
# same id, split and label, so it would count those rows twice in training and in the zh test pool.
DEFAULT_DATASETS = ("mosei", "mosi", "sims2", "mer2023")

# Other labelled sentiment text (train splits only, as extra training signal; never used for selection or the
# reported numbers): file, text column, label column -> (label5, valence), language.
_MELD = {"negative": ("WNEG", -0.5), "neutral": ("NEUT", 0.0), "positive": ("WPOS", 0.5)}
_SST5 = {str(k): (lab, (k - 2) / 2) for k, lab in enumerate(LABELS)}  # SST-5's 0..4 are our five classes in order
_BINARY = {"0": ("WNEG", -0.5), "1": ("WPOS", 0.5)}
AUX_DATASETS: dict[str, tuple[str, str, str, dict, str]] = {
    "meld": ("MELD/train.csv", "text", "sentiment", _MELD, "en"),  # TV dialogue (Friends), 3-way sentiment
    "sst5": ("SST5/train.csv", "text", "label", _SST5, "en"),  # movie-review sentences, 5 classes
    "waimai": ("zh_reviews/waimai_10k.csv", "review", "label", _BINARY, "zh"),  # food-delivery reviews, binary
    "chnsenticorp": ("zh_reviews/ChnSentiCorp_htl_all.csv", "review", "label", _BINARY, "zh"),  # hotel reviews
}


@dataclass(frozen=True)
class TextExample:
    id: str
    dataset: str  # manifest source, a key of DATASETS
    lang: str  # language of ``text`` ("en" | "zh")
    text: str
    label5: str
    score: float  # on the dataset's own scale
    valence: float  # score / half-range, in [-1, 1]
    split: str  # "train" | "valid" | "test"
    translated: bool = False  # ``text`` is a machine translation of the transcript


def _other(lang: str) -> str:
    return "zh" if lang == "en" else "en"


def load_corpus(data: str | Path, datasets: Iterable[str] = DEFAULT_DATASETS) -> list[TextExample]:
    """Native and translated examples of the given datasets under ``data`` (../shared/data/text layout)."""
    data = Path(data)
    datasets = list(datasets)
    bad = [d for d in datasets if d not in DATASETS]
    if bad:
        raise ValueError(f"unknown dataset(s) {bad}; valid: {', '.join(DATASETS)}")
    if not data.is_dir():
        raise FileNotFoundError(f"{data}: not a folder (expected MOSEI/ SIMSv2/ ... tables, e.g. ../shared/data/text)")
    roots = text_table_roots(data)
    wanted = {k: v for k, v in roots.items() if k in datasets or k == "translations"}
    if not any(k in datasets for k in wanted):
        raise FileNotFoundError(f"{data}: none of the tables of {', '.join(DATASETS[d][0] for d in datasets)} there "
                                "(expected the ../shared/data/text layout: MOSEI/label.csv, SIMSv2/meta.csv, ...)")
    records, problems = build_manifest(check_files=False, **wanted)
    for p in problems[:20]:
        log.warning("%s", p)
    if len(problems) > 20:
        log.warning("... %d more problems", len(problems) - 20)
    out: list[TextExample] = []
    for r in records:
        if not r.text or r.split is None or r.score is None:
            continue
        half = DATASETS[r.source][1]
        common = dict(id=r.id, dataset=r.source, label5=r.label5, score=float(r.score),
                      valence=max(-1.0, min(1.0, float(r.score) / half)), split=r.split)
        out.append(TextExample(lang=r.lang, text=r.text, **common))
        if r.translation:
            out.append(TextExample(lang=_other(r.lang), text=r.translation, translated=True, **common))
    counts = Counter((e.dataset, e.split, e.translated) for e in out)
    log.info("text corpus: %d examples (%s)", len(out),
             ", ".join(f"{d}/{s}{'/tr' if t else ''}={n}" for (d, s, t), n in sorted(counts.items())))
    return out


def load_aux(data: str | Path, names: Iterable[str]) -> list[TextExample]:
    """Train examples of the AUX_DATASETS ``names`` under ``data`` (all rows of their train files)."""
    import csv

    out: list[TextExample] = []
    for name in names:
        if name not in AUX_DATASETS:
            raise ValueError(f"unknown auxiliary dataset {name!r}; valid: {', '.join(AUX_DATASETS)}")
        rel, text_col, label_col, mapping, lang = AUX_DATASETS[name]
        path = Path(data) / rel
        if not path.is_file():
            raise FileNotFoundError(f"{path}: auxiliary dataset {name} not found")
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                text, raw = (row.get(text_col) or "").strip(), (row.get(label_col) or "").strip().lower()
                if text and raw in mapping:
                    label5, valence = mapping[raw]
                    out.append(TextExample(id=f"{name}_{i}", dataset=name, lang=lang, text=text, label5=label5,
                                           score=valence, valence=valence, split="train"))
    return out


def select(examples: Iterable[TextExample], split: str | None = None, datasets: Iterable[str] | None = None,
           langs: Iterable[str] | None = None, translated: bool | None = None) -> list[TextExample]:
    """The examples matching every given filter."""
    ds = set(datasets) if datasets is not None else None
    ls = set(langs) if langs is not None else None
    return [e for e in examples
            if (split is None or e.split == split) and (ds is None or e.dataset in ds)
            and (ls is None or e.lang in ls) and (translated is None or e.translated == translated)]
