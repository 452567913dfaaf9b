"""Every `omni-mer` subcommand through its real entry point, `omni_mer.cli.main([...])`, on tiny inputs; `--help`
for each; every option has help text; user errors are one line naming the bad value, never a traceback; the thin
entry scripts (test_script.py, train_grpo.py) run the same code. In the style of TRL's tests/test_cli.py."""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from omni_mer import __version__, cli
from omni_mer.core.labels import LABELS

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
SHORT_CLIP = SAMPLES / "en_happy_review.mp4"


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """cli.main(argv) -> (exit status, stdout, stderr); argparse's SystemExit counts as an exit status."""
    try:
        rc = cli.main(list(argv))
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return rc, out, err


# ------------------------------------------------------------------------------------------ top level
def test_top_level_help_version_and_unknown(capsys):
    rc, out, _ = run_cli(capsys, "--help")
    assert rc == 0 and all(name in out for name in cli.COMMANDS)
    rc, out, _ = run_cli(capsys, "help")
    assert rc == 0 and "tiny-model" in out
    rc, out, _ = run_cli(capsys, "--version")
    assert rc == 0 and out.strip() == f"omni-mer {__version__}"
    rc, _, err = run_cli(capsys)
    assert rc == 2 and "usage: omni-mer" in err
    rc, _, err = run_cli(capsys, "trian")
    assert rc == 2 and err.count("\n") == 1 and "'trian'" in err and "train" in err


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_every_command_has_help(capsys, name):
    rc, out, _ = run_cli(capsys, name, "--help")
    assert rc == 0 and f"usage: omni-mer {name}" in out
    rc, out2, _ = run_cli(capsys, "help", name)
    assert rc == 0 and out2 == out


class _Captured(Exception):
    pass


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_every_option_has_help_and_is_kebab_case(monkeypatch, name):
    """Grab each command's real parser at parse time and look at every option it defines."""
    parsers: list[argparse.ArgumentParser] = []

    def grab(self, args=None, namespace=None):
        parsers.append(self)
        raise _Captured

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", grab)
    with pytest.raises(_Captured):
        cli.run_command(name, ["--config", str(ROOT / "recipes/tiny-cpu/grpo.yaml")] if name == "train" else [])
    actions = [a for a in parsers[0]._actions if not isinstance(a, argparse._HelpAction)]
    assert actions
    for action in actions:
        assert action.help and action.help.strip(), f"omni-mer {name} {action.option_strings}: no help text"
        assert "_" not in action.option_strings[0], f"omni-mer {name} {action.option_strings}: not kebab-case first"


# ------------------------------------------------------------------------------------------ the commands
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """`omni-mer tiny-model --out DIR` (it used to write the model, then die with a NameError)."""
    out = tmp_path_factory.mktemp("tiny") / "model"
    rc = cli.main(["tiny-model", "--out", str(out)])
    assert rc == 0
    return out


def test_tiny_model(tiny, capsys):
    assert (tiny / "config.json").is_file() and (tiny / "tokenizer.json").is_file()
    assert any(tiny.glob("*.safetensors"))


def test_predict_and_evaluate_and_bench(tmp_path, capsys):
    data = tmp_path / "in"
    data.mkdir()
    shutil.copy(SHORT_CLIP, data)
    res, sup = tmp_path / "res", tmp_path / "sup"
    rc, _, err = run_cli(capsys, "predict", "--input", str(data), "--output", str(res), "--supplements", str(sup),
                         "--backend", "lite", "--workers", "0")
    assert rc == 0, err[-2000:]
    rows = list(csv.reader(open(res / "label_prediction.csv")))
    assert rows[0] == ["ID", "Label"] and rows[1][0] == "en_happy_review" and rows[1][1] in LABELS
    assert (sup / "en_happy_review" / "explanation.json").is_file() and (sup / "index.html").is_file()

    rc, out, err = run_cli(capsys, "evaluate", "--pred", str(res / "label_prediction.csv"),
                           "--manifest", str(SAMPLES / "meta" / "manifest.jsonl"), "--out", str(tmp_path / "eval"))
    assert rc == 0, err[-2000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics and "omni-mer evaluation" in out

    rc, out, err = run_cli(capsys, "bench", "--input", str(data), "--out", str(tmp_path / "bench.md"))
    assert rc == 0, err[-2000:]
    assert (tmp_path / "bench.md").read_text(encoding="utf-8") in out + "\n"


def test_bench_writes_runs_by_default(tmp_path, capsys, monkeypatch):
    """Without --out the report goes to runs/ under the current folder, never into docs/."""
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(capsys, "bench", "--input", str(tmp_path / "missing"))
    assert rc == 2 and "missing" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()
    from omni_mer.eval import bench

    monkeypatch.setattr(bench, "bench", lambda *a, **k: {"fake": True})
    monkeypatch.setattr(bench, "to_markdown", lambda res, title: "# bench\n")
    assert cli.main(["bench", "--input", str(SAMPLES)]) == 0
    assert (tmp_path / "runs" / "benchmarks.md").read_text() == "# bench\n"


def test_predict_empty_folder_is_an_error_and_keeps_old_results(tmp_path, capsys):
    data, res = tmp_path / "Test_Data", tmp_path / "Test_Results"
    data.mkdir()
    (data / ".gitkeep").touch()
    res.mkdir()
    (res / "label_prediction.csv").write_text("ID,Label\nold,NEUT\n")
    rc, _, err = run_cli(capsys, "predict", "--input", str(data), "--output", str(res), "--no-supplements")
    assert rc == 2 and "has no files" in err and str(data) in err and "--allow-empty" in err
    assert (res / "label_prediction.csv").read_text() == "ID,Label\nold,NEUT\n"  # untouched
    rc, _, err = run_cli(capsys, "predict", "--input", str(data), "--output", str(res), "--no-supplements",
                         "--allow-empty")
    assert rc == 0, err[-2000:]
    assert (res / "label_prediction.csv").read_text().splitlines() == ["ID,Label"]


def test_prepare_and_calibrate(tmp_path, capsys):
    extra = tmp_path / "extra.jsonl"
    samples = [json.loads(line) for line in (SAMPLES / "meta" / "manifest.jsonl").read_text().splitlines()]
    extra.write_text("".join(json.dumps({"path": str((SAMPLES / "meta" / s["path"]).resolve()),
                                         "label": s["label5"], "language": s["lang"], "split": "train"}) + "\n"
                             for s in samples))
    manifest = tmp_path / "manifest.jsonl"
    rc, out, err = run_cli(capsys, "prepare", "--extra", str(extra), "--out", str(manifest))
    assert rc == 0, err[-2000:]
    assert f"{len(samples)} records" in out and len(manifest.read_text().splitlines()) == len(samples)

    rc, _, err = run_cli(capsys, "calibrate", "--manifest", str(manifest), "--out", str(tmp_path / "lite"),
                         "--cache", str(tmp_path / "cache"))
    assert rc == 0, err[-2000:]
    cal = json.loads((tmp_path / "lite" / "calibration.json").read_text())
    assert cal


def test_train_one_step_on_the_tiny_model(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    rc, stdout, err = run_cli(capsys, "train", "--config", str(ROOT / "recipes/tiny-cpu/grpo.yaml"),
                              "--model-name-or-path", str(tiny), "--output-dir", str(out),
                              "--manifest", str(SAMPLES / "meta" / "manifest.jsonl"), "--evidence", "transcript",
                              "--max-steps", "1", "--max-train-samples", "1", "--num-generations", "2",
                              "--max-completion-length", "8", "--save-steps", "0", "--report-to", "none")
    assert rc == 0, err[-3000:]
    assert "grpo done" in stdout and (out / "adapter_config.json").is_file()


def test_demo_builds_and_would_serve_locally(capsys, monkeypatch):
    from omni_mer.demo import app as demo

    served = {}
    monkeypatch.setattr(demo, "_launch", lambda app, args: served.update(host=args.host, port=args.port))
    rc, _, err = run_cli(capsys, "demo", "--backend", "lite", "--port", "7861")
    assert rc == 0, err[-2000:]
    assert served == {"host": "127.0.0.1", "port": 7861}
    rc, _, err = run_cli(capsys, "demo", "--port", "0")
    assert rc == 2 and "--port 0" in err


# ------------------------------------------------------------------------------------------ user errors
@pytest.mark.parametrize(("argv", "names"), [
    (["train"], "--config"),
    (["train", "--config", "nope.yaml"], "nope.yaml"),
    (["train", "--config", str(ROOT / "recipes/tiny-cpu/grpo.yaml"), "--lora-r", "0"], "lora_r=0"),
    (["train", "--stage", "ppo"], "'ppo'"),
    (["predict", "--input", "no/such/folder"], "no/such/folder"),
    (["predict", "--backend", "gpu"], "'gpu'"),
    (["tiny-model"], "--out"),
    (["bench", "--repeats", "0"], "--repeats 0"),
])
def test_user_errors_are_one_line_naming_the_value(capsys, argv, names):
    rc, _, err = run_cli(capsys, *argv)
    assert rc == 2
    assert "Traceback" not in err and names in err
    assert [line for line in err.splitlines() if "error:" in line and names in line]


# ------------------------------------------------------------------------------------------ entry scripts
def test_train_grpo_py_help_and_error():
    res = subprocess.run([sys.executable, str(ROOT / "train_grpo.py"), "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0 and "usage: train_grpo.py" in res.stdout
    assert "--config RECIPE.yaml" in res.stdout and "{sft,grpo}" in res.stdout
    res = subprocess.run([sys.executable, str(ROOT / "train_grpo.py"), "--config",
                          str(ROOT / "recipes/tiny-cpu/grpo.yaml"), "--num_generations", "1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "train_grpo.py: error:" in res.stderr and "at least 2 generations" in res.stderr  # TRL's check, one line
    assert "You provided 1" in res.stderr


def test_test_script_py_help():
    res = subprocess.run([sys.executable, str(ROOT / "test_script.py"), "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0 and "usage: test_script.py" in res.stdout and "--allow-empty" in res.stdout
