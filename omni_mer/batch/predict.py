"""The organizers' batch job: a folder of videos -> label_prediction.csv + supplements.

Each file runs in a worker process that loads the models once; the parent hands out one file at a time, enforces a
per-file time limit (a stuck decoder cannot stall the run: the worker is killed and replaced), and records every
finished file in an fsynced journal. The CSVs are rewritten atomically from the journal, so a kill -9 at any point
loses at most the file in flight and ``--resume`` never duplicates or drops rows. Under ``accelerate launch`` (or
any launcher that sets RANK/WORLD_SIZE) each rank takes every WORLD_SIZE-th file and rank 0 merges.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import queue
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from omni_mer.core.console import LOG_FORMAT
from omni_mer.core.config import MEDIA_EXTENSIONS, MediaConfig
from omni_mer.batch.journal import Journal
from omni_mer.batch.stop import StopSignals, die_with_parent
from omni_mer.core.errors import EmptyInputError, JobInterrupted, MediaError, OutputError
from omni_mer.llm.model import INFERENCE_DTYPES
from omni_mer.report.files import write_folder_manifest, write_predictions, write_transcriptions

log = logging.getLogger("omni_mer.batch.predict")

PROGRESS_DIR = ".progress"
LANGUAGE_CHOICES = ("auto", "en", "zh")


@dataclass
class PredictConfig:
    input: Path = Path("Test_Data")
    output: Path = Path("Test_Results")
    supplements: Path | None = Path("Test_Supplements")
    backend: str = "auto"
    model: str | None = None
    adapter: str | None = None
    calibration: Path | None = None  # default: checkpoints/lite/calibration.json when present
    workers: int = 1  # worker processes; 0 runs in-process (no time limit; for debugging)
    resume: bool = False
    id_with_ext: bool = False
    blur: bool = True
    save_audio: bool = False
    timeout_s: float = 300.0  # per file, model loading excluded
    language: str = "auto"  # spoken-language hint for every file: auto | en | zh
    max_new_tokens: int = 256  # omni backend: length budget of the generated rationale
    llm_dtype: str = "auto"  # llm backend: compute dtype (omni_mer.llm.model.INFERENCE_DTYPES)
    text_head: str = ""  # auto | e5 | fused | a head folder; empty: $OMNI_MER_TEXT_HEAD, else auto (texthead/shipped.py)
    allow_empty: bool = False  # an input folder with no files: error (default) or write an empty result
    media: MediaConfig = field(default_factory=MediaConfig)

    def __post_init__(self) -> None:
        from omni_mer.pipeline import BACKENDS

        if self.backend not in BACKENDS:
            raise ValueError(f"--backend {self.backend!r} is not one of {', '.join(BACKENDS)}")
        if self.workers < 0:
            raise ValueError(f"--workers {self.workers} must be >= 0")
        if self.timeout_s <= 0:
            raise ValueError(f"--timeout {self.timeout_s} must be > 0")
        if self.language not in LANGUAGE_CHOICES:
            raise ValueError(f"--language {self.language!r} is not one of {', '.join(LANGUAGE_CHOICES)}")
        if self.llm_dtype not in INFERENCE_DTYPES:
            raise ValueError(f"--llm-dtype {self.llm_dtype!r} is not one of {', '.join(INFERENCE_DTYPES)}")
        if self.text_head:
            from omni_mer.texthead.shipped import text_head_dir

            text_head_dir(self.text_head)  # ValueError / ModelNotFoundError naming the choices or the setup step
        if self.adapter and self.backend == "lite":
            raise ValueError("--adapter is a LoRA adapter for --backend omni or llm; it means nothing to --backend lite")


@dataclass
class InputItem:
    id: str
    path: Path
    problem: str | None = None  # set when the entry must not be opened (reported as an error row)
    content: dict | None = None  # content_fingerprint(path), set by run(); --resume compares it with the journal's


def display_name(name: str) -> str:
    """``name`` as UTF-8-safe text: unchanged when it decodes, otherwise (a name with bytes that are not UTF-8,
    which os.scandir hands over surrogate-escaped) each undecodable byte becomes ``\\xNN`` and each backslash
    ``\\\\``, so the escape is reversible (``unescape_name``) and stable across runs."""
    if not any("\udc80" <= c <= "\udcff" for c in name):
        return name
    out = []
    for c in name:
        if "\udc80" <= c <= "\udcff":
            out.append(f"\\x{ord(c) - 0xDC00:02x}")
        elif c == "\\":
            out.append("\\\\")
        else:
            out.append(c)
    return "".join(out)


def unescape_name(text: str) -> str:
    """The inverse of ``display_name`` for an escaped name (the surrogate-escaped str os.fsencode accepts)."""
    def one(m: re.Match) -> str:
        return "\\" if m.group(1) == "\\" else chr(0xDC00 + int(m.group(1)[1:], 16))

    return re.sub(r"\\(\\|x[0-9a-f]{2})", one, text)


def assign_ids(names: list[str], id_with_ext: bool = False) -> list[str]:
    """IDs for the entries ``names`` of one folder: injective and deterministic (independent of the order given).

    The ID is the file stem (the file name with ``id_with_ext``). A file keeps its stem only if no other file has
    the same stem and no other file's name equals it; otherwise it is identified by its file name (``a.mp4``,
    ``a.mkv`` and ``a.mp4.mkv`` -> ``a.mp4``, ``a.mkv``, ``a.mp4.mkv``). Names are shown via ``display_name``; in
    the one case where an escaped name equals another file's literal name, the later one (by raw name) gets
    ``~2``, ``~3``, ... appended."""
    full = [display_name(n) for n in names]
    base = full if id_with_ext else [display_name(Path(n).stem) for n in names]
    stem_count: dict[str, int] = {}
    for b in base:
        stem_count[b] = stem_count.get(b, 0) + 1
    full_count: dict[str, int] = {}
    for f in full:
        full_count[f] = full_count.get(f, 0) + 1
    ids = []
    for b, f in zip(base, full):
        clash = stem_count[b] > 1 or (b != f and full_count.get(b, 0) > 0)
        ids.append(f if clash else b)
    taken: set[str] = set()
    out = [""] * len(names)
    for i in sorted(range(len(names)), key=lambda i: (ids[i], os.fsencode(names[i]))):
        rid, k = ids[i], 1
        while rid in taken or (k > 1 and rid in ids):
            k += 1
            rid = f"{ids[i]}~{k}"
        taken.add(rid)
        out[i] = rid
    return out


FINGERPRINT_BYTES = 256 * 1024  # hashed at each end of a file


def content_fingerprint(path: Path) -> dict | None:
    """What --resume compares to decide that a journaled file is the same file: size, mtime (ns) and a SHA-256
    of the first and last FINGERPRINT_BYTES. A full hash would read every byte of every video at each start
    (minutes for a folder of hour-long files); this reads 512 KiB per file and still catches a replaced file, any
    edit that changes the size or the time stamp, and in-place edits of the container's index (at one end of
    every mp4/mkv). None when the file cannot be read (its analysis then reports why)."""
    import hashlib

    try:
        st = os.stat(path)
        h = hashlib.sha256()
        with open(path, "rb") as f:
            h.update(f.read(FINGERPRINT_BYTES))
            if st.st_size > FINGERPRINT_BYTES:
                f.seek(max(FINGERPRINT_BYTES, st.st_size - FINGERPRINT_BYTES))
                h.update(f.read(FINGERPRINT_BYTES))
    except OSError:
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256_ends": h.hexdigest()}


def _stale(item: InputItem, rec: dict) -> str | None:
    """Why the journal record ``rec`` no longer stands for ``item`` (the file is then redone), or None."""
    if "content" not in rec:
        return "its journal line has no content hash (written by an older version)"
    if rec["content"] != item.content:
        return "changed since it was labelled (size, time stamp or bytes differ)"
    return None


def _current(items: dict[str, InputItem], recs: dict[str, dict]) -> dict[str, dict]:
    """The journal records that still stand for this input folder's files (same ID, same content)."""
    return {k: v for k, v in recs.items() if k in items and _stale(items[k], v) is None}


def _todo(mine: list[InputItem], finished: dict[str, dict], supplements: bool) -> list[InputItem]:
    """The files --resume must (re)do, each redone one with a log line saying why."""
    todo = []
    for it in mine:
        rec = finished.get(it.id)
        why = "not finished" if rec is None else _stale(it, rec)
        if why is None and supplements and (rec.get("error") or {}).get("stage") == "write":
            why = "its supplements could not be written last time"
        if why is None:
            continue
        if rec is not None:
            log.info("%s: %s; redoing it", display_name(it.path.name), why)
        todo.append(it)
    return todo


def list_inputs(input_dir: Path, id_with_ext: bool = False) -> list[InputItem]:
    """Every visible entry of ``input_dir`` that should get a CSV row, sorted by ID (``assign_ids``: one distinct
    ID per entry, valid UTF-8 even for names that are not).

    Symlinks pointing outside the folder are not followed; directories named like media files are reported.
    """
    if not input_dir.is_dir():
        raise FileNotFoundError(f"input folder {input_dir} does not exist")
    root = input_dir.resolve()
    items: list[InputItem] = []
    for entry in sorted(os.scandir(input_dir), key=lambda e: e.name):
        if entry.name.startswith("."):  # .DS_Store, ._x.mp4 (macOS resource forks), .nfs*: not videos, no row
            log.info("skipping hidden file %s (hidden files are not labelled)", display_name(entry.name))
            continue
        path = Path(entry.path)
        problem = None
        if entry.is_symlink():
            target = path.resolve()
            if root not in target.parents:
                shown = os.path.relpath(target, root)  # relative to the input folder: no absolute paths in CSVs
                problem = f"symlink to {display_name(shown)} points outside the input folder (not followed)"
            elif not target.exists():
                problem = "broken symlink"
        if problem is None and entry.is_dir():
            if path.suffix.lower() in MEDIA_EXTENSIONS:
                problem = "is a directory, not a media file"
            else:
                log.info("skipping sub-folder %s", display_name(str(path)))
                continue
        items.append(InputItem("", path, problem))
    ids = assign_ids([it.path.name for it in items], id_with_ext)
    for it, rid in zip(items, ids):
        it.id = rid
        plain = display_name(it.path.name if id_with_ext else it.path.stem)
        if rid != plain:  # a.mp4 and a.wav: keep both rows, distinguishable
            log.warning("ID %r would be shared by several files; using %r for %r", plain, rid,
                        display_name(it.path.name))
    return sorted(items, key=lambda it: it.id)


def _relative(reason: str, folder: Path, shown: str = "") -> str:
    """``reason`` with ``folder``'s path (as given, absolute or resolved) and its separator replaced by ``shown``:
    errors.csv names files relative to the input folder, not by where the machine keeps them."""
    for form in sorted({str(folder), os.path.abspath(folder), str(Path(folder).resolve())}, key=len, reverse=True):
        if form not in (".", ""):
            reason = reason.replace(form.rstrip(os.sep) + os.sep, shown)
    return reason


def _error_record(item: InputItem, stage: str, reason: str, label: str) -> dict:
    reason = _relative(reason, item.path.parent)
    return {"id": item.id, "file": display_name(item.path.name), "label": label, "content": item.content,
            "error": {"stage": stage, "reason": display_name(reason)}}  # reasons quote the (maybe non-UTF-8) name


def process_one(pipeline, item: InputItem, cfg: PredictConfig, fallback_label: str) -> dict:
    """Analyze one file and write its supplements; failures become an error record, never an exception."""
    from omni_mer.report.files import write_supplements

    if item.problem:
        return _error_record(item, "input", item.problem, fallback_label)
    t0 = time.perf_counter()
    try:
        hint = None if cfg.language == "auto" else cfg.language
        analysis = pipeline.analyze(item.path, clip_id=item.id, language=hint)
    except MediaError as exc:
        return _error_record(item, "decode", str(exc), fallback_label)
    except Exception as exc:  # recorded with its traceback in the log; the batch carries on
        log.exception("%s: analysis failed", item.path)
        return _error_record(item, "analyze", f"{type(exc).__name__}: {exc}", fallback_label)
    rec = {
        "id": item.id, "file": display_name(item.path.name), "label": analysis.label, "content": item.content,
        "probs": analysis.explanation["probs"],
        "language": analysis.evidence.language, "transcript": analysis.evidence.transcript,
        "warnings": analysis.clip.warnings, "error": None,
    }
    if cfg.supplements is not None:
        try:
            write_supplements(analysis, cfg.supplements, blur=cfg.blur, save_audio=cfg.save_audio)
        except Exception as exc:
            log.exception("%s: writing supplements failed", item.path)
            reason = _relative(f"{type(exc).__name__}: {exc}", cfg.supplements, f"{cfg.supplements.name}/")
            rec["error"] = {"stage": "write", "reason": _relative(reason, item.path.parent)}
    rec["timings"] = {**{k: round(v, 3) for k, v in analysis.timings.items()},
                      "total": round(time.perf_counter() - t0, 3)}
    return rec


def _build_pipeline(cfg: PredictConfig):
    from omni_mer.pipeline import Pipeline
    from omni_mer.texthead.shipped import use_text_head

    use_text_head(cfg.text_head)
    pipeline = Pipeline.build(cfg.backend, cfg.model, cfg.adapter, cfg.media, cfg.calibration, cfg.max_new_tokens,
                              cfg.llm_dtype)
    pipeline.warm_up()
    return pipeline


def _worker_main(cfg: PredictConfig, fallback: str, tasks, results, wid: int, parent_pid: int) -> None:
    import signal

    from omni_mer.core.console import setup_logging

    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides, and stops us
    setup_logging("WARNING")
    try:
        pipeline = _build_pipeline(cfg)
    except Exception as exc:
        results.put(("fatal", wid, f"{type(exc).__name__}: {exc}"))
        return
    results.put(("ready", wid, None))
    while True:
        item = tasks.get()
        if item is None:
            return
        results.put(("done", wid, process_one(pipeline, item, cfg, fallback)))


class _Worker:
    def __init__(self, ctx, cfg: PredictConfig, fallback: str, results, wid: int) -> None:
        self.tasks = ctx.Queue()
        self.proc = ctx.Process(target=_worker_main, args=(cfg, fallback, self.tasks, results, wid, os.getpid()),
                                daemon=True)
        self.proc.start()
        self.ready = False
        self.item: InputItem | None = None
        self.started = 0.0

    def give(self, item: InputItem) -> None:
        self.item, self.started = item, time.monotonic()
        self.tasks.put(item)

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.tasks.cancel_join_thread()  # never block exit on a queue nobody reads any more
            self.proc.kill()
        else:
            self.tasks.put(None)
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


def _run_workers(cfg: PredictConfig, todo: list[InputItem], fallback: str, on_done) -> None:
    ctx = mp.get_context("spawn")  # no fork after torch/threads: workers import the package fresh
    results = ctx.Queue()
    n = max(1, min(cfg.workers, len(todo)))
    workers = {i: _Worker(ctx, cfg, fallback, results, i) for i in range(n)}
    try:
        pending = list(reversed(todo))
        next_id = n
        load_crashes = 0
        while pending or any(w.item for w in workers.values()):
            for w in workers.values():
                if w.ready and w.item is None and pending:
                    w.give(pending.pop())
            try:
                kind, wid, payload = results.get(timeout=0.5)
            except queue.Empty:
                kind = None
            if kind == "fatal":
                raise RuntimeError(f"could not load the models: {payload}")
            if kind == "ready" and wid in workers:  # a worker may have died right after saying ready
                workers[wid].ready = True
            elif kind == "done" and wid in workers:
                workers[wid].item = None
                on_done(payload)
            now = time.monotonic()
            for wid_, w in list(workers.items()):
                timed_out = w.item is not None and now - w.started > cfg.timeout_s
                died = not w.proc.is_alive()
                if timed_out or died:
                    if died and not w.ready:  # crashed while loading the models: would crash again, forever
                        load_crashes += 1
                        if load_crashes >= 3:
                            raise RuntimeError(f"worker process died while loading the models {load_crashes} "
                                               f"times (exit code {w.proc.exitcode})")
                    if w.item is not None:
                        stage, why = ("timeout", f"took longer than {cfg.timeout_s:g} s") if timed_out else (
                            "crash", f"worker process died (exit code {w.proc.exitcode})")
                        log.error("%s: %s", w.item.path, why)
                        on_done(_error_record(w.item, stage, why, fallback))
                    w.stop(kill=True)
                    del workers[wid_]
                    if pending:
                        workers[next_id] = _Worker(ctx, cfg, fallback, results, next_id)
                        next_id += 1
    except BaseException as exc:  # a stop signal, a fatal error: no worker outlives the loop
        if isinstance(exc, JobInterrupted):  # results already sent but not yet read are computed work: keep them
            _drain_results(results, workers, on_done)
        for w in workers.values():
            w.stop(kill=True)
        raise
    for w in workers.values():
        w.stop()


def _drain_results(results, workers: dict, on_done) -> None:
    """Journal the files the workers finished and sent before a stop signal (the parent had not read them yet)."""
    while True:
        try:
            kind, wid, payload = results.get(timeout=0.2)
        except (queue.Empty, OSError, EOFError, ValueError):
            return
        if kind == "done" and wid in workers and workers[wid].item is not None:
            workers[wid].item = None
            on_done(payload)


def _rank() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _merge_journals(progress: Path) -> dict[str, dict]:
    done: dict[str, dict] = {}
    for path in sorted(progress.glob("rank*.jsonl")):
        done.update(Journal(path).load())
    return done


def run(cfg: PredictConfig) -> dict[str, dict]:
    """Run the batch job; returns {id: record} of this run's input folder (on rank 0: all ranks)."""
    from tqdm import tqdm

    from omni_mer.report.html import write_index_html
    from omni_mer.scorers.lite import LiteScorer

    from omni_mer.texthead.shipped import use_text_head

    use_text_head(cfg.text_head)  # before anything reads the shipped head (the fallback label below, the workers)
    rank, world = _rank()
    items = list_inputs(cfg.input, cfg.id_with_ext)  # before anything is written: a wrong folder changes nothing
    if not items and not cfg.allow_empty:
        raise EmptyInputError(f"input folder {cfg.input} has no files to label; nothing was written (existing "
                              f"results in {cfg.output} are untouched). Copy the videos into it, or pass "
                              "--allow-empty to write an empty result")
    if not items:
        log.warning("input folder %s is empty (--allow-empty): writing a result with no rows", cfg.input)
    progress = cfg.output / PROGRESS_DIR
    journal = Journal(progress / f"rank{rank}.jsonl")
    with _writing_output(cfg):  # a read-only, missing or full --output (or a file there): one line, exit 2
        cfg.output.mkdir(parents=True, exist_ok=True)
        _add_run_log(cfg.output / ("run.log" if world == 1 else f"run.rank{rank}.log"))
        if rank == 0:  # temp files of an atomic write interrupted by a kill: never read, just litter
            for stale in cfg.output.glob(".*.tmp*"):
                stale.unlink(missing_ok=True)
        if not cfg.resume:
            journal.reset()
            if rank == 0:
                for stale in progress.glob("done.rank*"):
                    stale.unlink()
    if cfg.supplements is not None:  # may fail (read-only, full): each file's supplements then fail and are recorded
        _supplements_step("create the supplements folder", cfg.supplements.mkdir, parents=True, exist_ok=True)
        if rank == 0:
            _supplements_step("remove stale temp files", lambda: [p.unlink(missing_ok=True)
                                                                   for p in cfg.supplements.glob(".*.tmp*")])
            _supplements_step("write folders.json", write_folder_manifest, cfg.supplements, [it.id for it in items])
    for it in items:  # what --resume compares, and what the journal records for each file
        if it.problem is None:
            it.content = content_fingerprint(it.path)
    by_id = {it.id: it for it in items}
    finished = _merge_journals(progress) if cfg.resume else {}
    mine = [it for i, it in enumerate(items) if i % world == rank]
    todo = _todo(mine, finished, cfg.supplements is not None)
    # The lite prior is the fallback label for files that fail, whatever the backend (a calibrated lite prior is
    # the training set's prior; an untrained omni model has none).
    fallback = LiteScorer.from_path(cfg.calibration).prior_label()
    log.info("%d inputs in %s; rank %d/%d has %d, %d already done; fallback label %s",
             len(items), cfg.input, rank, world, len(mine), len(mine) - len(todo), fallback)

    records = _current(by_id, finished)
    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc="videos", unit="file", disable=None)

    def on_done(rec: dict) -> None:
        # a stop signal waits until the journal line and the CSV rewrite are done
        with stop.critical(), _writing_output(cfg, resumable=True):
            journal.append(rec)
            records[rec["id"]] = rec
            bar.update(1)
            if rec.get("error"):
                log.warning("%s -> %s (failed at %s: %s)", rec["file"], rec["label"], rec["error"]["stage"],
                            rec["error"]["reason"])
            else:
                log.info("%s -> %s  timings %s", rec["file"], rec["label"], rec.get("timings"))
            if world == 1:  # keep the CSV current: a kill leaves every finished row in place
                _write_csvs(cfg, records)

    with StopSignals() as stop:
        try:
            if todo:
                if cfg.workers == 0:
                    pipeline = _build_pipeline(cfg)
                    for it in todo:
                        on_done(process_one(pipeline, it, cfg, fallback))
                else:
                    _run_workers(cfg, todo, fallback, on_done)
            bar.close()
            with _writing_output(cfg, resumable=True):
                (progress / f"done.rank{rank}").parent.mkdir(parents=True, exist_ok=True)
                (progress / f"done.rank{rank}").write_text("ok")
            if rank != 0:
                return records
            if world > 1:
                _wait_for_ranks(progress, world, cfg.timeout_s * max(1, len(items)))
                records = _current(by_id, _merge_journals(progress))
            with stop.critical(), _writing_output(cfg, resumable=True):
                _write_csvs(cfg, records)
        except JobInterrupted as exc:
            bar.close()
            _write_after_stop(cfg, progress, by_id, len(mine), exc, rank)
            raise
    if cfg.supplements is not None:
        _supplements_step("write index.html", lambda: write_index_html(cfg.supplements,
                                                                        _report_entries(cfg.supplements, records)))
    n_err = sum(1 for r in records.values() if r.get("error"))
    n_write = sum(1 for r in records.values() if (r.get("error") or {}).get("stage") == "write")
    log.info("wrote %s (%d rows, %d errors)", cfg.output / "label_prediction.csv", len(records), n_err)
    if n_write:
        log.error("the supplements of %d files could not be written (errors.csv stage 'write'); every row of %s "
                  "is complete. Free the space and rerun with --resume to write them", n_write,
                  cfg.output / "label_prediction.csv")
    return records


def _write_after_stop(cfg: PredictConfig, progress: Path, by_id: dict[str, InputItem], n_mine: int, exc: JobInterrupted,
                      rank: int) -> None:
    """After a stop signal (the workers are already gone): the CSVs again, from the journal on disk, so every
    file that finished before the signal has its row whatever instant the signal came."""
    if rank != 0:
        log.warning("rank %d %s; rerun with --resume to finish", rank, exc)
        return
    records = _current(by_id, _merge_journals(progress))
    _write_csvs(cfg, records)
    log.warning("%s: %s has the %d finished rows (of %d); rerun with --resume to finish the rest", exc,
                cfg.output / "label_prediction.csv", len(records), n_mine)


@contextmanager
def _writing_output(cfg: PredictConfig, resumable: bool = False):
    """Turn an OSError while writing into --output into one OutputError line naming the folder and the reason."""
    try:
        yield
    except OSError as exc:
        if cfg.output.exists() and not cfg.output.is_dir():
            why = "it is a file, not a folder"
        else:
            why = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
        hint = ("; the files finished so far are in its journal: fix this and rerun with --resume to finish"
                if resumable else "")
        raise OutputError(f"cannot write the results to --output {cfg.output}: {why}{hint}") from exc


def _supplements_step(what: str, fn, *args, **kwargs) -> bool:
    """Run one write into the supplements folder; a failure (a full or read-only disk, anything) is logged with
    its traceback and the job carries on: supplements are optional, label_prediction.csv is not."""
    try:
        fn(*args, **kwargs)
        return True
    except Exception:
        log.exception("supplements: could not %s (the required CSVs are not affected)", what)
        return False


def _write_csvs(cfg: PredictConfig, records: dict[str, dict]) -> None:
    """The required CSVs first and on their own; then the supplements' transcription CSV, whose failure is logged."""
    write_predictions(cfg.output, records)
    if cfg.supplements is not None:
        _supplements_step("write transcription_results.csv", write_transcriptions, cfg.supplements, records)


def _wait_for_ranks(progress: Path, world: int, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while any(not (progress / f"done.rank{r}").exists() for r in range(world)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"ranks did not finish within {limit_s:.0f} s; rerun with --resume to complete")
        time.sleep(0.5)


def _report_entries(supplements: Path, records: dict[str, dict]) -> list[dict]:
    import json

    from omni_mer.report.files import supplement_dirname

    entries = []
    for rid in sorted(records):
        rec = records[rid]
        entry = {"id": rid, "file": rec.get("file", rid), "label": rec["label"], "error": rec.get("error"),
                 "dir": supplement_dirname(rid)}
        expl = supplements / entry["dir"] / "explanation.json"
        if not rec.get("error") and expl.is_file():
            entry["explanation"] = json.loads(expl.read_text(encoding="utf-8"))
        entries.append(entry)
    return entries


def _add_run_log(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8", errors="backslashreplace")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.getLogger().addHandler(handler)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)


def build_parser(prog: str = "omni-mer predict") -> argparse.ArgumentParser:
    d = PredictConfig()
    ap = argparse.ArgumentParser(prog=prog, description="Label every video in a folder (5 polarity classes) and "
                                 "explain each decision.")
    ap.add_argument("--input", type=Path, default=d.input, help="folder of videos (default: %(default)s)")
    ap.add_argument("--output", type=Path, default=d.output, help="results folder (default: %(default)s)")
    ap.add_argument("--supplements", type=Path, default=d.supplements,
                    help="transcripts, frames, explanations, report (default: %(default)s)")
    ap.add_argument("--no-supplements", action="store_true", help="write only the CSVs")
    ap.add_argument("--backend", default=d.backend, choices=["auto", "lite", "omni", "llm"],
                    help="auto = omni when a model is configured (--model or $OMNI_MER_MODEL), else lite; "
                         "llm = a text-only Qwen2.5 reading the transcript and the voice/face cues (docs/llm.md)")
    ap.add_argument("--model", default=None, help="local Qwen2.5-Omni folder (omni backend) or Qwen2 folder / "
                                                  "registered name such as qwen2.5-coder-0.5b (llm backend)")
    ap.add_argument("--adapter", default=None, help="LoRA adapter folder, e.g. checkpoints/<run>/")
    ap.add_argument("--calibration", type=Path, default=None,
                    help="lite fusion calibration (default: checkpoints/lite/calibration.json when present)")
    ap.add_argument("--workers", type=int, default=d.workers, help="worker processes (0 = in-process)")
    ap.add_argument("--resume", action="store_true", help="skip files finished by an earlier (interrupted) run")
    ap.add_argument("--id-with-ext", action="store_true", help="IDs keep the file extension")
    ap.add_argument("--no-blur", action="store_true", help="save frames without blurring faces")
    ap.add_argument("--save-audio", action="store_true", help="keep each clip's 16 kHz audio in the supplements")
    ap.add_argument("--timeout", type=float, default=d.timeout_s, help="per-file time limit, seconds")
    ap.add_argument("--language", default=d.language, choices=LANGUAGE_CHOICES,
                    help="spoken language of every file, when known (default: detect per file, English or Mandarin)")
    ap.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens,
                    help="omni backend: tokens generated for the rationale")
    ap.add_argument("--llm-dtype", default=d.llm_dtype, choices=INFERENCE_DTYPES,
                    help="llm backend: compute dtype; auto = bfloat16 on a GPU or a CPU with native bf16 "
                         "(about 2x faster there), else float32 (docs/llm.md)")
    ap.add_argument("--text-head", default=d.text_head,
                    help="text head: auto (the fused e5 + Qwen2.5-1.5B head when its LLM is set up, else the e5 "
                         "head), e5, fused, or a trained head folder (docs/text_head.md); default "
                         "$OMNI_MER_TEXT_HEAD or auto")
    ap.add_argument("--allow-empty", action="store_true",
                    help="an input folder with no files writes an empty result instead of failing")
    ap.add_argument("--fps", type=float, default=d.media.fps, help="frames sampled per second")
    ap.add_argument("--max-frames", type=int, default=d.media.max_frames, help="cap on sampled frames")
    return ap


def config_from_args(args: argparse.Namespace) -> PredictConfig:
    return PredictConfig(
        input=args.input, output=args.output, supplements=None if args.no_supplements else args.supplements,
        backend=args.backend, model=args.model, adapter=args.adapter, calibration=args.calibration,
        workers=args.workers, resume=args.resume, id_with_ext=args.id_with_ext, blur=not args.no_blur,
        save_audio=args.save_audio, timeout_s=args.timeout, language=args.language,
        max_new_tokens=args.max_new_tokens, llm_dtype=args.llm_dtype, text_head=args.text_head,
        allow_empty=args.allow_empty,
        media=MediaConfig(fps=args.fps, max_frames=args.max_frames),
    )


def main(argv: list[str] | None = None, prog: str = "omni-mer predict") -> int:
    from omni_mer.core.errors import ModelNotFoundError

    ap = build_parser(prog)
    args = ap.parse_args(argv)
    try:
        cfg = config_from_args(args)
    except (ValueError, ModelNotFoundError) as exc:
        ap.error(str(exc))
    try:
        run(cfg)  # a missing or empty input folder raises a user error: one line and exit 2 (omni_mer.cli)
    except JobInterrupted as exc:
        return 128 + exc.signum  # the shell's convention for "ended by signal N"
    return 0


if __name__ == "__main__":
    sys.exit(main())
