"""Deletion test: does removing the top-attributed modality move the prediction more than the bottom one?"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from omni_mer.core.config import MODALITIES
from omni_mer.explain.shapley import coalition_key
from omni_mer.core.labels import LABEL_INDEX

log = logging.getLogger(__name__)


def _present(expl: dict) -> list[str]:
    for key in ("players", "present"):  # players: the modalities the attribution is over
        if key in expl:
            return [m for m in MODALITIES if m in set(expl[key])]
    # Older files: a modality whose removal changes nothing and has zero attribution is treated as absent.
    return [m for m in MODALITIES if abs(float(expl.get("shapley", {}).get(m, 0.0))) > 0]


def clip_deletion(expl: dict) -> dict:
    """Deletion result for one explanation dict (explanation.json).

    drop[m] = p(label | all) - p(label | all minus m), read from the stored coalition distributions.
    success: the top-Shapley present modality has a larger drop than the bottom-Shapley one.
    """
    label = expl["label"]
    idx = LABEL_INDEX[label]
    coal = expl["coalitions"]
    present = _present(expl)
    out: dict = {"id": expl.get("id"), "label": label, "present": present}
    if len(present) < 2:
        out["status"] = "excluded: fewer than 2 present modalities"
        return out
    full = coalition_key(MODALITIES)
    v_all = float(coal[full][idx])
    drop = {m: v_all - float(coal[coalition_key(set(MODALITIES) - {m})][idx]) for m in present}
    return judge(out, drop, {m: float(expl["shapley"][m]) for m in present})


def judge(out: dict, drop: dict[str, float], shapley: dict[str, float]) -> dict:
    """``out`` completed with the verdict: top/bottom-Shapley modality, and success when removing the top one lowers
    the predicted-label probability more (``drop``) than removing the bottom one; ties are excluded."""
    top = max(shapley, key=lambda m: shapley[m])
    bottom = min(shapley, key=lambda m: shapley[m])
    out.update(drop=drop, top=top, bottom=bottom)
    if shapley[top] == shapley[bottom]:
        out["status"] = "excluded: tied attributions"
        return out
    out["status"] = "evaluated"
    out["success"] = bool(drop[top] > drop[bottom])
    return out


def summarize(per_clip: list[dict]) -> dict:
    """Deletion rate, counts and mean drops over per-clip verdicts (``judge``)."""
    evaluated = [c for c in per_clip if c["status"] == "evaluated"]
    n_success = sum(c["success"] for c in evaluated)
    return {
        "n_clips": len(per_clip),
        "n_evaluated": len(evaluated),
        "n_excluded_lt2_modalities": sum(c["status"].startswith("excluded: fewer") for c in per_clip),
        "n_excluded_ties": sum(c["status"] == "excluded: tied attributions" for c in per_clip),
        "n_success": n_success,
        "deletion_rate": (n_success / len(evaluated)) if evaluated else None,
        "mean_drop_top": (sum(c["drop"][c["top"]] for c in evaluated) / len(evaluated)) if evaluated else None,
        "mean_drop_bottom": (sum(c["drop"][c["bottom"]] for c in evaluated) / len(evaluated)) if evaluated else None,
    }


def deletion_test(explanations: list[dict]) -> dict:
    """Deletion rate over a set of explanation dicts.

    For each clip, drop the top- and the bottom-attributed present modality (using the stored coalitions)
    and count whether the top one lowers the predicted-label probability more. Clips with fewer than 2
    present modalities (or tied attributions) are excluded and counted.
    """
    per_clip = [clip_deletion(e) for e in explanations]
    return {**summarize(per_clip), "per_clip": per_clip}


def load_explanations(supplements_dir: Path) -> tuple[list[dict], list[str]]:
    """Every <ID>/explanation.json under ``supplements_dir`` (sorted), plus the files that could not be read."""
    out, bad = [], []
    for path in sorted(Path(supplements_dir).glob("*/explanation.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if "coalitions" not in data or "label" not in data:
                raise KeyError("coalitions/label missing")
            out.append(data)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("skipping %s: %s", path, exc)
            bad.append(f"{path.parent.name}: {exc}")
    return out, bad


def faithfulness_report(supplements_dir: Path) -> dict:
    """The deletion test over every <ID>/explanation.json in a supplements folder (for `omni-mer evaluate`)."""
    explanations, bad = load_explanations(Path(supplements_dir))
    result = deletion_test(explanations)
    result["unreadable"] = bad
    result["supplements_dir"] = str(supplements_dir)
    checks = [e.get("rationale_check", {}) for e in explanations]
    result["rationale_answer_match_rate"] = (
        sum(bool(c.get("answer_matches")) for c in checks) / len(checks) if checks else None)
    result["rationale_citations_ok_rate"] = (
        sum(bool(c.get("cited_cues_exist")) for c in checks) / len(checks) if checks else None)
    return result


def format_faithfulness(result: dict) -> str:
    """A few human-readable lines for the evaluate CLI."""
    rate = result.get("deletion_rate")
    rate_s = "n/a" if rate is None else f"{100 * rate:.1f}%"
    lines = [
        f"faithfulness (deletion test): {rate_s} of {result['n_evaluated']} clips "
        f"({result['n_success']} successes; excluded: {result['n_excluded_lt2_modalities']} with <2 modalities, "
        f"{result['n_excluded_ties']} ties)",
    ]
    if result.get("mean_drop_top") is not None:
        lines.append(f"  mean drop in p(label): top modality {result['mean_drop_top']:+.3f}, "
                     f"bottom modality {result['mean_drop_bottom']:+.3f}")
    if result.get("rationale_answer_match_rate") is not None:
        lines.append(f"  rationales: answer == label {100 * result['rationale_answer_match_rate']:.1f}%, "
                     f"citations verified {100 * result['rationale_citations_ok_rate']:.1f}%")
    return "\n".join(lines)


def _add_arguments(parser) -> None:
    if not any("--supplements" in a.option_strings for a in parser._actions):
        parser.add_argument("--supplements", type=Path, default=None,
                            help="Test_Supplements folder: run the deletion (faithfulness) test on its "
                                 "<ID>/explanation.json files")


def _run_section(args, ctx) -> dict | None:
    supplements = getattr(args, "supplements", None)
    if supplements is None:
        return None
    result = faithfulness_report(Path(supplements))
    text = format_faithfulness(result)
    log.info("%s", text)
    ctx.markdown.append("## Faithfulness\n\n" + "\n".join(f"- {line.strip()}" for line in text.splitlines()))
    return result


def _make_section():
    from omni_mer.eval.evaluate import Section  # evaluate loads sections lazily, so this import is not circular

    return Section("faithfulness", _add_arguments, _run_section)


# `omni-mer evaluate` picks this up when "omni_mer.explain.faithfulness" is listed in SECTION_MODULES.
EVAL_SECTION = _make_section()
