"""Late fusion of text heads that read different encoders (e5 and a Qwen2.5 LLM's hidden states).

Each member head gives its own calibrated class log-probabilities for a transcript; the fused logits are their
weighted sum, with weights per language, and a calibration (class biases + temperature, texthead/calibrate.py) per
language on top. Weights and calibration are fitted on the validation rows of each language's calibration pool
(train.CALIBRATION_DATASETS), the weights on a grid by the validation objective (Acc-5 + UAR) / 2. Why late fusion
and not one head on the concatenated vectors: the fine-tuned e5 vectors were tuned on the same train rows, so a head
on the concatenation leans on them and loses the LLM's gain on Mandarin (measured in docs/text_head.md).

A fused head has the TextHead interface the pipeline uses (logits / probs / calibration_for / prior_logits /
predict, digest, encoder_id, meta) and reads the members' vectors side by side (encoder.encoder_for builds that
encoder). Saved as ``fused.json`` naming its members by a path relative to its own folder and their digests: a member
changed after the fusion is refused at load.

Public API:
    FusedTextHead(members, member_paths, weights, calibration, meta)  .save(dir)  FusedTextHead.load(dir)
    fit_fusion(members, examples, embeds, langs, step=0.1) -> (weights, calibration, valid objectives)
    load_text_head(folder) -> TextHead | FusedTextHead
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from omni_mer.core.i18n import LANGUAGES
from omni_mer.core.labels import LABELS
from omni_mer.texthead.head import CalibratedHead, LanguageCalibration, TextHead, row_languages

FUSED_FILE = "fused.json"
FUSED_FORMAT = 1


def member_width(head: TextHead) -> int:
    """The width of the encoder vectors ``head`` reads (its input without the language one-hot)."""
    return head.dim - (len(LANGUAGES) if head.language_feature else 0)


def member_logprobs(head: TextHead, emb: np.ndarray, langs: list[str]) -> np.ndarray:
    """(n, 5) log-probabilities of ``head`` under each row's own language calibration."""
    return np.log(np.clip(head.probs(head.logits(emb, langs), langs), 1e-12, 1.0))


@dataclass
class FusedTextHead(CalibratedHead):
    members: list[TextHead]
    member_paths: list[str]  # where each member lives, relative to the fused head's folder
    weights: dict[str, list[float]]  # language -> one weight per member
    calibration: dict[str, LanguageCalibration]
    meta: dict = field(default_factory=dict)
    digest: str = "unsaved"
    encoder = None  # no e5 adapter of its own: encoder.encoder_for builds the members' encoders
    language_feature = False

    def __post_init__(self) -> None:
        if len(self.members) < 2 or len(self.member_paths) != len(self.members):
            raise ValueError(f"a fused text head needs 2+ members with a path each (got {len(self.members)} members,"
                             f" {len(self.member_paths)} paths)")
        for lang in LANGUAGES:
            if lang not in self.calibration or len(self.weights.get(lang, ())) != len(self.members):
                raise ValueError(f"fused text head: language {lang!r} needs a calibration and {len(self.members)} "
                                 f"weights (got {self.weights.get(lang)})")

    @property
    def encoder_id(self) -> str:
        return " + ".join(m.encoder_id for m in self.members)

    @property
    def dim(self) -> int:
        return sum(member_width(m) for m in self.members)

    def _split(self, emb: np.ndarray) -> list[np.ndarray]:
        x = np.atleast_2d(np.asarray(emb, dtype=np.float32))
        if x.shape[1] != self.dim:
            raise ValueError(f"fused text head reads {self.dim}-wide vectors ({self.encoder_id}); got {x.shape[1]}")
        cuts = np.cumsum([member_width(m) for m in self.members])[:-1]
        return np.split(x, cuts, axis=1)

    def logits(self, emb: np.ndarray, lang: str | list[str] | None = None) -> np.ndarray:
        """The weighted sum of the members' calibrated log-probabilities, weights of each row's language, (n, 5)."""
        parts = self._split(emb)
        langs = row_languages(lang, len(parts[0]))
        w = np.asarray([self.weights[la] for la in langs])  # (n, members)
        lps = [member_logprobs(m, x, langs) for m, x in zip(self.members, parts)]
        return sum(w[:, [k]] * lp for k, lp in enumerate(lps))

    def prior_logits(self, lang: str | None = None) -> np.ndarray:
        """The fused reading of an empty transcript in ``lang`` (None: the mean over the languages)."""
        if lang is None:
            return np.mean([self.prior_logits(la) for la in LANGUAGES], axis=0)
        return sum(w * np.log(np.clip(m.probs(m.prior_logits(lang), lang)[0], 1e-12, 1.0))
                   for w, m in zip(self.weights[lang], self.members))

    def save(self, folder: str | Path) -> Path:
        """``fused.json`` in ``folder``; the members stay where ``member_paths`` (relative to ``folder``) say."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        info = {"format": FUSED_FORMAT, "labels": list(LABELS),
                "members": [{"path": p, "digest": m.digest, "encoder": m.encoder_id}
                            for p, m in zip(self.member_paths, self.members)],
                "weights": self.weights, "calibration": {k: asdict(v) for k, v in self.calibration.items()},
                "meta": self.meta}
        tmp = folder / (FUSED_FILE + ".tmp")
        tmp.write_text(json.dumps(info, indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(folder / FUSED_FILE)
        for name in ("head.json", "head.npz", "encoder.npz", "encoder.json"):  # a plain head left here is stale
            (folder / name).unlink(missing_ok=True)
        self.digest = fused_digest(folder)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "FusedTextHead":
        folder = Path(folder)
        try:
            info = json.loads((folder / FUSED_FILE).read_text(encoding="utf-8"))
            if info.get("format") != FUSED_FORMAT:
                raise ValueError(f"format {info.get('format')!r}, this code reads {FUSED_FORMAT}")
            if tuple(info.get("labels", ())) != LABELS:
                raise ValueError(f"labels {info.get('labels')} differ from {list(LABELS)}")
            members = []
            for spec in info["members"]:
                head = TextHead.load(folder / spec["path"])
                if head.digest != spec["digest"]:  # fused weights fitted on another member would be wrong
                    raise ValueError(f"member {spec['path']} changed since the fusion (digest {head.digest}, "
                                     f"fused with {spec['digest']}): refit with `omni-mer train-text --fuse-with` (its "
                                     "recipe; add --keep-member to keep the member it trained)")
                members.append(head)
            return cls(members=members, member_paths=[s["path"] for s in info["members"]],
                       weights={k: [float(x) for x in v] for k, v in info["weights"].items()},
                       calibration={k: LanguageCalibration(**v) for k, v in info["calibration"].items()},
                       meta=info.get("meta", {}), digest=fused_digest(folder))
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{folder}: not a valid fused text head ({type(exc).__name__}: {exc})") from exc


def fused_digest(folder: str | Path) -> str:
    """Short hash of fused.json (which holds its members' digests)."""
    import hashlib

    return hashlib.sha1((Path(folder) / FUSED_FILE).read_bytes()).hexdigest()[:12]


def relative_member_path(member: str | Path, folder: str | Path) -> str:
    """``member``'s folder as a path relative to the fused head's ``folder`` (POSIX separators)."""
    return Path(os.path.relpath(Path(member).resolve(), Path(folder).resolve())).as_posix()


def weight_grid(n_members: int, step: float) -> list[tuple[float, ...]]:
    """All weight vectors on the simplex with the given step (each weight a multiple of it, summing to 1)."""
    k = int(round(1.0 / step))
    return [tuple(c / k for c in combo) for combo in itertools.product(range(k + 1), repeat=n_members)
            if sum(combo) == k]


def fit_fusion(members: list[TextHead], examples, embeds, langs: tuple[str, ...] = LANGUAGES, step: float = 0.1):
    """Per language: the member weights (grid of ``step``) and calibration that maximise the validation objective on
    its calibration pool. ``embeds[k](texts)`` gives member k's vectors. Returns (weights, calibration,
    {lang: objective}); a language not in ``langs`` copies the first one's (never sees its labels)."""
    from omni_mer.texthead.calibrate import fit_calibration, objective
    from omni_mer.texthead.train import _labels, calibration_pool

    weights, calibration, objectives = {}, {}, {}
    for lang in langs:
        pool = calibration_pool(examples, lang)
        if not pool:
            raise ValueError(f"no validation rows to fit the fusion for {lang!r}")
        y = _labels(pool)
        texts, row_langs = [e.text for e in pool], [e.lang for e in pool]
        lps = [member_logprobs(m, emb(texts), row_langs) for m, emb in zip(members, embeds)]
        best = None
        for w in weight_grid(len(members), step):
            z = sum(wk * lp for wk, lp in zip(w, lps))
            cal = fit_calibration(z, y)
            score = objective(y, cal.apply(z).argmax(1))
            if best is None or score > best[0] + 1e-12:
                best = (score, w, cal)
        objectives[lang], weights[lang], calibration[lang] = float(best[0]), [float(x) for x in best[1]], best[2]
    for lang in LANGUAGES:
        weights.setdefault(lang, weights[langs[0]])
        calibration.setdefault(lang, calibration[langs[0]])
    return weights, calibration, objectives


def saved_head_in(folder: str | Path) -> bool:
    """Whether ``folder`` holds a saved head (a TextHead's head.json or a fused head's fused.json)."""
    return (Path(folder) / "head.json").is_file() or (Path(folder) / FUSED_FILE).is_file()


def load_text_head(folder: str | Path) -> "TextHead | FusedTextHead":
    """The head in ``folder``: a fused head when it holds fused.json, else a TextHead."""
    if (Path(folder) / FUSED_FILE).is_file():
        return FusedTextHead.load(folder)
    return TextHead.load(folder)
