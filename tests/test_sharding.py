"""Sharded batch runs (accelerate launch sets RANK/WORLD_SIZE): rank 0 merges into the same CSV as one process."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.media_makers import moving_face_frames, write_empty, write_video

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("in")
    for i in range(4):  # no audio track: the face path only, so the test stays fast
        write_video(d / f"clip{i}.mp4", moving_face_frames(4, size=(96, 128), seed=i), fps=2)
    write_empty(d / "empty.mp4")
    return d


def _run(args, env_extra=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.Popen([sys.executable, str(ROOT / "test_script.py"), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_ranks_give_the_same_csv_as_one_process(inputs, tmp_path):
    common = ["--input", str(inputs), "--backend", "lite", "--workers", "0", "--no-supplements"]
    single = _run([*common, "--output", str(tmp_path / "one")])
    out, _ = single.communicate(timeout=300)
    assert single.returncode == 0, out

    shard = tmp_path / "two"
    procs = [_run([*common, "--output", str(shard)], {"RANK": str(r), "WORLD_SIZE": "2", "LOCAL_RANK": str(r)})
             for r in range(2)]
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out
    one = (tmp_path / "one" / "label_prediction.csv").read_text()
    two = (shard / "label_prediction.csv").read_text()
    assert one == two
    assert len(one.strip().splitlines()) == 1 + 5
    assert "empty" in (shard / "errors.csv").read_text()
    # each rank did its own share
    journals = sorted((shard / ".progress").glob("rank*.jsonl"))
    assert [len(j.read_text().splitlines()) for j in journals] == [3, 2]


@pytest.mark.slow
def test_accelerate_launch_two_processes(inputs, tmp_path):
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    cmd = [accelerate, "launch", "--config_file", str(ROOT / "recipes/accelerate/cpu.yaml"), "--num_processes", "2",
           str(ROOT / "test_script.py"), "--input", str(inputs), "--output", str(tmp_path / "acc"),
           "--backend", "lite", "--workers", "0", "--no-supplements"]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert len((tmp_path / "acc" / "label_prediction.csv").read_text().strip().splitlines()) == 6
