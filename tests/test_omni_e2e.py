"""test_script.py --backend omni --model <tiny> --adapter <LoRA> end to end, with explanations."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from omni_mer.core.answer import parse_answer
from omni_mer.core.labels import LABELS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_and_adapter(tmp_path_factory):
    from peft import LoraConfig, get_peft_model

    from omni_mer.omni.model import load_thinker
    from omni_mer.omni.tiny import build_tiny_model

    d = tmp_path_factory.mktemp("omni")
    tiny = build_tiny_model(d / "tiny")
    model, _ = load_thinker(str(tiny))
    cfg = LoraConfig(r=4, lora_alpha=16, init_lora_weights=False,
                     target_modules=r".*language_model.*\.(q_proj|v_proj)")
    torch.manual_seed(0)
    get_peft_model(model, cfg).save_pretrained(str(d / "adapter"))
    return tiny, d / "adapter"


def test_test_script_omni_with_adapter_end_to_end(tiny_and_adapter, tmp_path):
    tiny, adapter = tiny_and_adapter
    data = tmp_path / "Test_Data"
    data.mkdir()
    shutil.copy(ROOT / "samples" / "en_happy_review.mp4", data)
    (data / "broken.mp4").write_text("not a video")
    res = subprocess.run(
        [sys.executable, str(ROOT / "test_script.py"), "--input", str(data), "--output", str(tmp_path / "res"),
         "--supplements", str(tmp_path / "sup"), "--backend", "omni", "--model", str(tiny), "--adapter",
         str(adapter), "--workers", "0", "--max-new-tokens", "12"],
        cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rows = list(csv.reader(open(tmp_path / "res" / "label_prediction.csv")))
    assert rows[0] == ["ID", "Label"] and [r[0] for r in rows[1:]] == ["broken", "en_happy_review"]
    assert all(r[1] in LABELS for r in rows[1:])
    expl = json.loads((tmp_path / "sup" / "en_happy_review" / "explanation.json").read_text())
    assert expl["backend"] == "omni" and "adapter" in expl["version"]
    assert parse_answer(expl["rationale"]) == expl["label"] == rows[2][1]
    total = expl["value_all"] - expl["value_none"]
    assert sum(expl["shapley"].values()) == pytest.approx(total, abs=1e-6)
    assert (tmp_path / "sup" / "en_happy_review" / "explanation.png").stat().st_size > 10_000
    assert "auto" not in res.stderr or "backend" in res.stderr
