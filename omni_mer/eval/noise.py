"""Noise robustness (MER-NOISE style): accuracy and label-flip rate of the pipeline under each perturbation.

(Not the batch job's input robustness, i.e. surviving bad files: that is tests/test_bad_inputs.py and the first
part of scripts/robustness.py. The ``--perturb`` section keeps its names: ``robustness`` in metrics.json,
robustness.json / robustness.md.)

Every labelled clip is decoded once; the clean prediction and each perturbed prediction run the same pipeline
stages (evidence -> score -> explain, ``Pipeline.analyze_clip``) on the clean or perturbed Clip. A perturbation that
only touches the frames reuses the clean clip's text and audio evidence (the audio is bit-identical, so ASR and
prosody would give the same result) and recomputes the visual evidence; one that only edits evidence (drop_text)
reuses the clean evidence.

    omni-mer evaluate --manifest samples/meta/manifest.jsonl --perturb [snr20,snr10,blur,...|all] [--perturb-backend lite]

Public API:
    evaluate_perturbations(records, pipeline, perturbations, manifest_dir=None, progress=None) -> dict
    perturb_report(manifest_path, out_dir, backend="lite", perturbations=None, model=None, adapter=None,
                   split=None, calibration=None) -> dict      (writes robustness.json + robustness.md)
    format_markdown(result) -> str
    EVAL_SECTION   (the ``--perturb`` section of ``omni-mer evaluate``)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Callable

from omni_mer.core.errors import ConfigError, OmniMerError
from omni_mer.evidence.types import Evidence, ModalityEvidence
from omni_mer.eval.perturb import DEFAULT_PERTURBATIONS, Perturbation, get, parse_names

log = logging.getLogger(__name__)


def resolve_media_path(rec_path: str, manifest_dir: Path | None) -> Path:
    """A manifest's path as given when absolute or present from the working directory, else beside the manifest."""
    p = Path(rec_path)
    if p.is_absolute() or p.exists() or manifest_dir is None:
        return p
    return Path(manifest_dir) / p


def _evidence_for(pipeline, clip, clean_ev: Evidence, pert: Perturbation) -> Evidence:
    """Evidence of the perturbed clip, recomputing only what the perturbation can change."""
    if pert.clip_fn is None:
        return pert.apply_evidence(clean_ev)
    if pert.touches <= {"video"}:
        face = getattr(pipeline.extractor, "face", None)
        if face is not None and hasattr(face, "analyze"):
            if not clip.has_video or len(clip.frames) == 0:
                visual = ModalityEvidence.absent("visual", "no video frames")
            else:
                visual = face.analyze(clip, clean_ev.language)
            return pert.apply_evidence(dataclasses.replace(clean_ev, visual=visual))
    return pert.apply_evidence(pipeline.extractor.extract(clip))


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def evaluate_perturbations(records, pipeline, perturbations=None, manifest_dir: Path | None = None,
                           progress: Callable[[str], None] | None = None) -> dict:
    """Accuracy and label-flip rate (vs. the clean prediction) under each perturbation.

    ``records``: ManifestRecord-like objects (id, path, lang, label5). ``pipeline``: an omni_mer.pipeline.Pipeline.
    ``perturbations``: names or Perturbation objects (None = DEFAULT_PERTURBATIONS).
    Returns {"clean": {...}, "perturbations": {name: {n, accuracy, flip_rate, delta_accuracy, ...}},
    "clips": [{id, gold, clean, <name>: label...}], "failed": [{id, reason}], "seconds": float}.
    Clips that cannot be decoded are listed under "failed" and left out of every rate.
    """
    from omni_mer.media import decode

    t_start = time.perf_counter()
    if perturbations is None or isinstance(perturbations, str):
        perts = parse_names(perturbations)
    else:
        perts = [p if isinstance(p, Perturbation) else get(p) for p in perturbations]
    clips, failed = [], []
    seconds = {p.name: 0.0 for p in perts}
    seconds["clean"] = 0.0
    for rec in records:
        path = resolve_media_path(rec.path, manifest_dir)
        row = {"id": rec.id, "lang": getattr(rec, "lang", None), "gold": rec.label5}
        try:
            t = time.perf_counter()
            clip = decode(path, pipeline.media, clip_id=rec.id, language=getattr(rec, "lang", None))
            clean = pipeline.analyze_clip(clip)
            seconds["clean"] += time.perf_counter() - t
        except (OmniMerError, OSError) as exc:
            log.warning("robustness: skipping %s (%s)", path, exc)
            failed.append({"id": rec.id, "reason": str(exc)})
            continue
        row["clean"] = clean.label
        for p in perts:
            t = time.perf_counter()
            pclip = p.apply_clip(clip)
            ev = _evidence_for(pipeline, pclip, clean.evidence, p)
            row[p.name] = pipeline.analyze_clip(pclip, evidence=ev).label
            seconds[p.name] += time.perf_counter() - t
        clips.append(row)
        if progress is not None:
            progress(f"{rec.id}: gold {row['gold']} clean {row['clean']} " +
                     " ".join(f"{p.name}={row[p.name]}" for p in perts))

    n = len(clips)
    clean_correct = sum(r["clean"] == r["gold"] for r in clips)
    result = {
        "n": n,
        "clean": {"accuracy": _rate(clean_correct, n), "correct": clean_correct,
                  "seconds_per_clip": round(seconds["clean"] / n, 3) if n else None},
        "perturbations": {},
        "clips": clips,
        "failed": failed,
    }
    for p in perts:
        correct = sum(r[p.name] == r["gold"] for r in clips)
        flips = sum(r[p.name] != r["clean"] for r in clips)
        acc = _rate(correct, n)
        result["perturbations"][p.name] = {
            "description": p.description,
            "n": n,
            "accuracy": acc,
            "delta_accuracy": round(acc - result["clean"]["accuracy"], 4) if n else None,
            "flip_rate": _rate(flips, n),
            "flips": flips,
            "seconds_per_clip": round(seconds[p.name] / n, 3) if n else None,
        }
    result["seconds"] = round(time.perf_counter() - t_start, 2)
    return result


def format_markdown(result: dict, title: str | None = "Noise robustness") -> str:
    """A markdown table of one evaluate_perturbations result (plus the per-clip labels)."""
    lines = [f"## {title}\n"] if title else []
    backend = result.get("backend")
    lines.append(f"{result['n']} labelled clips" + (f", backend `{backend}`" if backend else "") +
                 (f"; {len(result['failed'])} could not be decoded" if result.get("failed") else "") + ".\n")

    def pct(v):
        return "–" if v is None else f"{100 * v:.1f}"

    lines.append("| condition | accuracy (%) | Δ vs clean (pts) | label flips vs clean (%) | s/clip |")
    lines.append("|---|---:|---:|---:|---:|")
    c = result["clean"]
    lines.append(f"| clean | {pct(c['accuracy'])} | – | – | {c['seconds_per_clip'] or '–'} |")
    for name, m in result["perturbations"].items():
        delta = "–" if m["delta_accuracy"] is None else f"{100 * m['delta_accuracy']:+.1f}"
        lines.append(f"| {name} ({m['description']}) | {pct(m['accuracy'])} | {delta} | {pct(m['flip_rate'])} "
                     f"| {m['seconds_per_clip'] or '–'} |")
    if result["clips"]:
        names = list(result["perturbations"])
        lines.append("\nPer clip (gold, clean prediction, prediction under each perturbation):\n")
        lines.append("| clip | gold | clean | " + " | ".join(names) + " |")
        lines.append("|---|---|---|" + "---|" * len(names))
        for r in result["clips"]:
            lines.append(f"| {r['id']} | {r['gold']} | {r['clean']} | " + " | ".join(r[n] for n in names) + " |")
    for f in result.get("failed", []):
        lines.append(f"\n- not evaluated: {f['id']}: {f['reason']}")
    return "\n".join(lines) + "\n"


def perturb_report(manifest_path: str | Path, out_dir: str | Path | None, backend: str = "lite",
                   perturbations=None, model: str | None = None, adapter: str | None = None,
                   split: str | None = None, calibration: Path | None = None, pipeline=None) -> dict:
    """Run evaluate_perturbations on a manifest; write ``out_dir``/robustness.json and robustness.md (when given)."""
    from omni_mer.data.manifest import read_manifest
    from omni_mer.pipeline import Pipeline

    manifest_path = Path(manifest_path)
    records = [r for r in read_manifest(manifest_path) if not r.text_only]
    if split:
        records = [r for r in records if r.split == split]
    if not records:
        raise ValueError(f"{manifest_path}: no labelled clips" + (f" in split {split!r}" if split else ""))
    if pipeline is None:
        pipeline = Pipeline.build(backend, model, adapter, calibration=calibration)
    result = evaluate_perturbations(records, pipeline, perturbations, manifest_dir=manifest_path.parent,
                                    progress=lambda s: log.info("robustness: %s", s))
    result["backend"] = getattr(pipeline.scorer, "name", backend)
    result["manifest"] = str(manifest_path)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        from omni_mer.report.files import atomic_write_text

        atomic_write_text(out / "robustness.json", json.dumps(result, indent=2, ensure_ascii=False))
        atomic_write_text(out / "robustness.md", format_markdown(result))
    return result


# ------------------------------------------------------------------------------------- omni-mer evaluate section


def _add_arguments(parser) -> None:
    from omni_mer.eval.perturb import PERTURBATIONS

    parser.add_argument("--perturb", nargs="?", const="default", default=None, metavar="NAMES",
                        help="noise robustness on --manifest: comma-separated perturbations, 'all', or nothing for "
                             f"the default set ({','.join(DEFAULT_PERTURBATIONS)}); valid: {', '.join(PERTURBATIONS)}")
    parser.add_argument("--perturb-backend", default="lite", choices=["auto", "lite", "omni"],
                        help="scorer used for --perturb (default: %(default)s)")
    if not any("--model" in a.option_strings for a in parser._actions):
        parser.add_argument("--model", default=None, help="local Qwen2.5-Omni folder (--perturb-backend omni)")
    if not any("--adapter" in a.option_strings for a in parser._actions):
        parser.add_argument("--adapter", default=None, help="LoRA adapter folder (--perturb-backend omni)")


def _run_section(args, ctx) -> dict | None:
    names = getattr(args, "perturb", None)
    if names is None:
        return None
    if getattr(args, "manifest", None) is None:
        raise SystemExit("--perturb needs --manifest (labelled clips)")
    try:
        perts = parse_names(names)
    except ConfigError as exc:
        raise SystemExit(f"--perturb: {exc}") from None
    result = perturb_report(args.manifest, ctx.out_dir, backend=args.perturb_backend,
                            perturbations=perts, model=getattr(args, "model", None),
                            adapter=getattr(args, "adapter", None), split=getattr(args, "split", None))
    ctx.markdown.append(format_markdown(result))
    return result


def _make_section():
    from omni_mer.eval.evaluate import Section  # evaluate loads sections lazily, so this import is not circular

    return Section("robustness", _add_arguments, _run_section)


# `omni-mer evaluate` picks this up when "omni_mer.eval.noise" is listed in evaluate.SECTION_MODULES.
EVAL_SECTION = _make_section()
