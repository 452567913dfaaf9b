"""Explanations shared by both scorers: modality Shapley values, counterfactuals, cues and rationales."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from omni_mer.core.clip import Clip
from omni_mer.core.config import MODALITIES
from omni_mer.evidence.types import Evidence
from omni_mer.explain.rationale import check_rationale, render_rationale, top_cues
from omni_mer.explain.shapley import COALITIONS, coalition_key, modality_shapley
from omni_mer.core.answer import parse_answer
from omni_mer.core.labels import LABEL_VALENCE, LABELS
from omni_mer.scorers.base import Scorer

log = logging.getLogger(__name__)

__all__ = ["Explanation", "explain", "modality_shapley", "render_rationale", "check_rationale"]

_VALENCE = np.array([LABEL_VALENCE[lab] for lab in LABELS])
_TOP_K = 3


@dataclass
class Explanation:
    """Everything explanation.json holds (the contract in docs/architecture.md plus extras)."""

    id: str
    label: str
    probs: dict[str, float]
    shapley: dict[str, float]
    shapley_valence: dict[str, float]
    value_all: float
    value_none: float
    valence_all: float
    valence_none: float
    present: list[str]  # modalities the evidence found
    players: list[str]  # modalities attributed (present, or used by the scorer anyway)
    coalitions: dict[str, list[float]]
    counterfactual: dict[str, str]
    counterfactual_probs: dict[str, float]  # predicted-label probability without each modality
    cues: list[dict]
    top_cues: dict[str, list[dict]]
    rationale: str
    rationale_source: str
    rationale_check: dict
    language: str
    backend: str
    version: str
    duration: float
    timings: dict[str, float] = field(default_factory=dict)
    generated_rationale: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _probs_array(p: object) -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64).reshape(-1)
    if arr.shape != (len(LABELS),) or not np.all(np.isfinite(arr)):
        raise ValueError(f"scorer returned {arr!r}; expected {len(LABELS)} finite probabilities")
    return arr


def _matters(coal: dict[frozenset[str], np.ndarray], m: str, atol: float = 1e-9) -> bool:
    """Whether adding ``m`` to any coalition changes the scorer's distribution."""
    return any(not np.allclose(coal[s | {m}], coal[s], atol=atol, rtol=0.0) for s in coal if m not in s)


def explain(clip: Clip, evidence: Evidence, scorer: Scorer, generated: str | None = None) -> Explanation:
    """Explain the scorer's prediction for one clip.

    Scores each of the 8 modality coalitions exactly once (``Scorer.score_coalitions``: batched where the scorer
    can), then derives the label, exact Shapley values (predicted-label probability and expected valence),
    counterfactual labels, top cues and a checked rationale: ``generated`` (omni) is kept when its answer equals the label, else a rendered one is used.
    """
    t0 = time.perf_counter()
    scored = scorer.score_coalitions(clip, evidence, COALITIONS)
    coal: dict[frozenset[str], np.ndarray] = {keep: _probs_array(p) for keep, p in zip(COALITIONS, scored, strict=True)}
    t_score = time.perf_counter() - t0

    full = frozenset(MODALITIES)
    probs = coal[full]
    idx = int(np.argmax(probs))
    label = LABELS[idx]
    present = evidence.present
    warnings: list[str] = list(clip.warnings)
    # Players of the Shapley game: the present modalities, plus any the scorer demonstrably uses although the
    # evidence calls it absent (e.g. the omni model still sees frames in which no face was found). A modality
    # the scorer ignores has zero marginal contribution and gets exactly 0.
    used = {m for m in full - present if _matters(coal, m)}
    players = frozenset(present | used)
    if used:
        warnings.append(f"scorer output depends on modalities the evidence calls absent: {sorted(used)}; "
                        "they are attributed like present ones")
    shapley = modality_shapley(lambda s: float(coal[s][idx]), players)
    shapley_val = modality_shapley(lambda s: float(coal[s] @ _VALENCE), players)

    counterfactual, counterfactual_probs = {}, {}
    for m in MODALITIES:
        p = coal[full - {m}]
        counterfactual[m] = LABELS[int(np.argmax(p))]
        counterfactual_probs[m] = float(p[idx])

    t1 = time.perf_counter()
    language = evidence.language or clip.language or "en"
    rendered = render_rationale(evidence, shapley, label, language)
    source, rationale = "rendered", rendered
    check = check_rationale(rendered, evidence, label)
    if generated is not None:
        gen_check = check_rationale(generated, evidence, label)
        if parse_answer(generated) == label:
            source, rationale, check = "generated", generated, gen_check
        else:
            check = dict(check)
            check["details"] = {**check["details"],
                                "fallback_reason": f"generated answer {parse_answer(generated)!r} != label {label!r}",
                                "generated_check": gen_check}
            log.info("%s: generated rationale answers %r, label is %r; using the rendered one",
                     clip.id, parse_answer(generated), label)
    t_rat = time.perf_counter() - t1

    return Explanation(
        id=clip.id,
        label=label,
        probs={lab: float(p) for lab, p in zip(LABELS, probs)},
        shapley={m: float(v) for m, v in shapley.items()},
        shapley_valence={m: float(v) for m, v in shapley_val.items()},
        value_all=float(probs[idx]),
        value_none=float(coal[frozenset()][idx]),
        valence_all=float(probs @ _VALENCE),
        valence_none=float(coal[frozenset()] @ _VALENCE),
        present=[m for m in MODALITIES if m in present],
        players=[m for m in MODALITIES if m in players],
        coalitions={coalition_key(k): [float(x) for x in v] for k, v in coal.items()},
        counterfactual=counterfactual,
        counterfactual_probs=counterfactual_probs,
        cues=[asdict(c) for c in evidence.cues],
        top_cues={m: [asdict(c) for c in top_cues(evidence, m, _TOP_K)] for m in MODALITIES},
        rationale=rationale,
        rationale_source=source,
        rationale_check=check,
        language=language,
        backend=scorer.name,
        version=scorer.version(),
        duration=float(clip.duration),
        timings={"explain_score_s": t_score, "rationale_s": t_rat},
        generated_rationale=generated,
        warnings=warnings,
    )
