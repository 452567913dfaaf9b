"""Measure input robustness (every bad file gets a row and a reason) and noise robustness (accuracy under
perturbations), and write docs/robustness.md.

1. Builds the whole bad-input suite (tests/bad_inputs.py, 10-minute video included unless --quick) in a temp folder.
2. Runs the real batch job (``python test_script.py --backend lite``) once per input, each in its own folder, and
   records the outcome (label / errors.csv reason), the file's analysis time, the job's wall time (model loading
   included) and the job's peak RSS (parent and worker, from wait4).
3. Runs the whole suite as one batch (the organizers' situation) and checks one row per input.
4. Runs the perturbation evaluation (omni_mer.eval.noise) on samples/meta/manifest.jsonl (gold labels).
5. Writes docs/robustness.md (and the raw numbers to docs/robustness.json).

    .venv/bin/python scripts/robustness.py [--quick] [--backend lite] [--perturb all] [--out docs/robustness.md]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from omni_mer.eval.perturb import PERTURBATIONS  # noqa: E402
from omni_mer.eval.noise import format_markdown, perturb_report  # noqa: E402
from tests.bad_inputs import CASES, build_suite  # noqa: E402


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg")
    for k in ("RANK", "WORLD_SIZE"):
        env.pop(k, None)
    return env


def run_job(input_dir: Path, out: Path, backend: str, timeout_s: float = 300) -> dict:
    """One real batch job; returns wall seconds, peak RSS (MB, job + reaped workers) and the CSV rows."""
    cmd = [sys.executable, str(ROOT / "test_script.py"), "--input", str(input_dir), "--output", str(out / "res"),
           "--supplements", str(out / "sup"), "--backend", backend, "--timeout", str(timeout_s)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # wait4 reports this child's peak RSS including the worker processes it reaped.
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""

    def rows(name):
        p = out / "res" / name
        return list(csv.DictReader(open(p, encoding="utf-8"))) if p.exists() else []

    journal = {}
    for p in (out / "res" / ".progress").glob("rank*.jsonl"):
        for line in p.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                journal[rec["id"]] = rec
            except ValueError:
                pass
    return {"rc": proc.returncode, "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024,
            "preds": rows("label_prediction.csv"), "errors": rows("errors.csv"), "journal": journal,
            "stderr_tail": stderr[-2000:]}


def bad_input_table(results: list[dict]) -> str:
    lines = ["| input | expected | outcome | label | errors.csv reason | file time (s) | job wall (s) | peak RSS (MB) |",
             "|---|---|---|---|---|---:|---:|---:|"]
    for r in results:
        # Temp-folder paths say nothing: keep the file name only.
        reason = re.sub(r"/\S*/(?:in|outside)/", "", r["reason"] or "").replace("|", "\\|")
        if len(reason) > 110:
            reason = reason[:107] + "..."
        lines.append(f"| {r['note']} | {r['expect']} | {r['outcome']} | {r['label'] or '–'} | {reason or '–'} | "
                     f"{r['file_s'] if r['file_s'] is not None else '–'} | {r['wall_s']:.1f} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the 10-minute video")
    ap.add_argument("--backend", default="lite")
    ap.add_argument("--perturb", default="default", help="perturbations for the samples: default, all or a comma list")
    ap.add_argument("--manifest", type=Path, default=ROOT / "samples" / "meta" / "manifest.jsonl")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "robustness.md")
    ap.add_argument("--skip-bad-inputs", action="store_true")
    ap.add_argument("--skip-perturb", action="store_true")
    ap.add_argument("--load", type=Path, action="append", default=[],
                    help="reuse sections measured by an earlier run (its .json); lets the two halves run in parallel")
    args = ap.parse_args(argv)
    loaded: dict = {}
    for path in args.load:
        loaded.update({k: v for k, v in json.loads(path.read_text(encoding="utf-8")).items() if v})

    raw: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs visible", "backend": args.backend,
                 "load_avg_1min_at_start": round(os.getloadavg()[0], 2)}
    results = []
    batch = None
    with tempfile.TemporaryDirectory(prefix="omni-mer-robustness-") as tmp:
        tmp = Path(tmp)
        if not args.skip_bad_inputs:
            cases = [c for c in CASES if args.quick is False or not c.slow]
            for c in cases:
                d = tmp / "one" / c.name
                build_suite(d / "in", d / "outside", names=[c.name])
                r = run_job(d / "in", d, args.backend)
                pred = {row["ID"]: row["Label"] for row in r["preds"]}
                err = {row["ID"]: row for row in r["errors"]}.get(c.id)
                rec = r["journal"].get(c.id, {})
                outcome = "no row!" if c.id not in pred else (f"error ({err['stage']})" if err else "analysed")
                ok = c.id in pred and (c.expect == "any" or (c.expect == "error") == (err is not None)) and r["rc"] == 0
                results.append({
                    "name": c.name, "note": c.note, "expect": c.expect, "outcome": outcome, "pass": ok,
                    "label": pred.get(c.id), "reason": err["reason"] if err else "",
                    "file_s": (rec.get("timings") or {}).get("total"), "wall_s": r["wall_s"],
                    "peak_rss_mb": r["peak_rss_mb"], "rc": r["rc"],
                })
                print(f"{c.name:24s} {outcome:18s} {pred.get(c.id)!s:5s} file {results[-1]['file_s']} s  "
                      f"job {r['wall_s']:.1f} s  {r['peak_rss_mb']:.0f} MB", flush=True)
                if r["rc"] != 0:
                    print(r["stderr_tail"], file=sys.stderr)
            # The whole suite as one batch, as the organizers would run it.
            build_suite(tmp / "all" / "in", tmp / "all" / "outside", include_slow=not args.quick)
            b = run_job(tmp / "all" / "in", tmp / "all", args.backend)
            ids = [row["ID"] for row in b["preds"]]
            batch = {"rc": b["rc"], "inputs": len(cases), "rows": len(ids), "unique_rows": len(set(ids)),
                     "errors": len(b["errors"]), "wall_s": round(b["wall_s"], 1), "peak_rss_mb": round(b["peak_rss_mb"])}
            print("whole suite in one batch:", batch, flush=True)
        if args.skip_bad_inputs and loaded.get("bad_inputs"):
            results, batch = loaded["bad_inputs"], loaded.get("batch")
        raw["bad_inputs"] = results
        raw["batch"] = batch

    perturb = loaded.get("perturbations") if args.skip_perturb else None
    raw["perturbations"] = perturb
    if not args.skip_perturb:
        perturb = perturb_report(args.manifest, None, backend=args.backend,
                                 perturbations=None if args.perturb == "default" else args.perturb)
        raw["perturbations"] = perturb
        print(format_markdown(perturb), flush=True)

    md = ["# Robustness, measured", "",
          f"Generated by `scripts/robustness.py` ({raw['machine']}, backend `{args.backend}`; 1-minute load average "
          f"{raw['load_avg_1min_at_start']} at the start: times are from one run and grow when the machine is "
          "shared). Reproduce: `.venv/bin/python scripts/robustness.py`.", ""]
    if results:
        n_pass = sum(r["pass"] for r in results)
        md += ["## Bad inputs", "",
               "Each input alone in an input folder, through the real batch job (`python test_script.py "
               f"--backend {args.backend}`, one worker process, per-file limit 300 s). *file time* is the file's "
               "analysis in the worker (decode → evidence → score → explain → supplements); *job wall* adds "
               "interpreter start and model loading; *peak RSS* is the job's largest process (parent or worker).",
               "", f"**{n_pass}/{len(results)} behave as expected** (a CSV row each; an errors.csv reason exactly "
               "when the file is unusable; exit code 0).", "", bad_input_table(results), ""]
        if batch:
            md += [f"All {batch['inputs']} inputs in one folder, one batch: exit code {batch['rc']}, "
                   f"{batch['rows']} rows ({batch['unique_rows']} unique), {batch['errors']} in errors.csv, "
                   f"{batch['wall_s']} s, peak RSS {batch['peak_rss_mb']} MB.", ""]
        md += ["The same inputs are test cases in `tests/test_bad_inputs.py` (the 10-minute video is marked "
               "`slow`; a 60 s video stands in for it in the default run), together with: the per-file time limit "
               "(a worker stuck past `--timeout` is killed, the file gets a `timeout` row and a fresh worker takes "
               "the next file) and a check that nothing is written outside `--output`/`--supplements` whatever "
               "the file names. `tests/test_resume.py` kills `python test_script.py` with SIGKILL at seeded "
               "random points four times and resumes: no duplicated or dropped row, the CSV parseable after every "
               "kill.", ""]
    if perturb:
        md += ["## Noise robustness (MER-NOISE style) on the samples", "",
               f"`omni-mer evaluate --manifest samples/meta/manifest.jsonl --perturb{'' if args.perturb == 'default' else ' ' + args.perturb} "
               f"--perturb-backend {args.backend}`."
               " Accuracy is against the gold labels; a *label flip* is a prediction that differs from the clean "
               "one. Only six project-made clips (espeak speech, scikit-image face photos), so every percentage is a step of "
               "16.7 points: these figures show the harness works and which modality the "
               f"`{args.backend}` scorer leans on, not a benchmark.", "",
               format_markdown(perturb, title=None), ""]
        pm = perturb["perturbations"]
        if pm:
            worst = min(pm, key=lambda k: pm[k]["accuracy"] if pm[k]["accuracy"] is not None else 1.0)
            most = max(pm, key=lambda k: pm[k]["flip_rate"] or 0.0)
            md += [f"Largest accuracy drop: `{worst}` ({100 * pm[worst]['delta_accuracy']:+.1f} points); most label "
                   f"flips: `{most}` ({100 * pm[most]['flip_rate']:.1f} % of clips). The clean run uses the manifest's "
                   "language as the ASR hint; noise is seeded per clip and perturbation, so the table is "
                   "reproducible.", ""]
        md += ["Perturbations: " + "; ".join(f"`{k}` {p.description}" for k, p in PERTURBATIONS.items()) + ".", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # Committed docs must not carry this machine's temp or checkout paths.
    scrub = lambda text: text.replace(str(ROOT) + "/", "").replace(tempfile.gettempdir() + "/", "<tmpdir>/")  # noqa: E731
    args.out.write_text(scrub("\n".join(md)), encoding="utf-8")
    args.out.with_suffix(".json").write_text(scrub(json.dumps(raw, indent=2, ensure_ascii=False, default=str)),
                                             encoding="utf-8")
    print(f"wrote {args.out}")
    return 0 if all(r["pass"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
