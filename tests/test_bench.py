"""`omni-mer bench` on one shipped sample: every stage timed, the ASR-only floor measured, the report written."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from omni_mer.eval import bench

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "en_happy_review.mp4"


@pytest.fixture(scope="module")
def result() -> dict:
    if not SAMPLE.is_file():
        pytest.skip("sample not shipped")
    return bench.bench([SAMPLE], repeats=2)


def test_bench_numbers_are_consistent(result):
    assert result["clips"] == 2 and len(result["rows"]) == 2
    for r in result["rows"]:
        # The stages are parts of the whole; the floor (decode + ASR) is a real, positive measurement.
        assert sum(v for k, v in r.items() if k in result["stage_means_s"]) <= r["total"] + 1e-6
        assert r["asr_floor"] > 0 and r["asr"] > 0 and r["supplements"] > 0
    assert result["peak_rss_mb"] > 100
    assert result["ratio_to_asr_floor"] == pytest.approx(
        sum(r["total"] for r in result["rows"]) / sum(r["asr_floor"] for r in result["rows"]))
    assert result["asr"]["encoder_pad_s"] == 5.0


def test_bench_cli_writes_report(result, tmp_path, monkeypatch, capsys):
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(SAMPLE, clips / SAMPLE.name)
    (clips / "notes.txt").write_text("not media")  # only media files are benchmarked
    seen = {}

    def fake_bench(paths, backend, model, adapter, repeats):  # the measurement itself is tested above
        seen.update(paths=[p.name for p in paths], backend=backend, repeats=repeats)
        return result

    monkeypatch.setattr(bench, "bench", fake_bench)
    out = tmp_path / "docs" / "bench.md"
    assert bench.main(["--input", str(clips), "--out", str(out), "--repeats", "2"]) == 0
    assert seen == {"paths": [SAMPLE.name], "backend": "lite", "repeats": 2}
    md = out.read_text(encoding="utf-8")
    assert md.splitlines()[0] in capsys.readouterr().out
    for stage in ("asr", "audio", "decode", "fusion", "text", "visual"):
        assert f"| {stage} |" in md
    assert "encoder_pad_s=5.0" in md and "model=whisper-base" in md and "Command: `omni-mer bench --input" in md
    assert "with supplements (test_script.py's default)" in md
    assert "| en_happy_review.mp4 | 4.8 |" in md and "<= 1.6 x" in md and "clip of <= 10 s (2 clips)" in md


def test_bench_cli_rejects_folder_without_media(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(SystemExit):
        bench.main(["--input", str(tmp_path), "--out", str(tmp_path / "b.md")])


def test_linear_fit_and_scaling_clips(tmp_path):
    slope, r2 = bench.linear_fit(np.array([5.0, 10.0, 20.0]), np.array([1.0, 2.0, 4.0]))
    assert slope == pytest.approx(0.2) and r2 == pytest.approx(1.0)
    assert np.isnan(bench.linear_fit(np.array([5.0, 5.0]), np.array([1.0, 2.0]))[0])
    if not SAMPLE.is_file():
        pytest.skip("sample not shipped")
    from omni_mer.media import decode

    paths = bench.make_scaling_clips([SAMPLE], tmp_path, durations=(2.0, 12.0))
    durations = [decode(p).duration for p in paths]
    assert durations == pytest.approx([2.0, 12.0], abs=0.15)
    assert decode(paths[0]).frames.shape[1:3] == decode(SAMPLE).frames.shape[1:3]  # the input size is kept
    assert not decode(paths[1]).audio_is_silent
    with pytest.raises(ValueError, match="video frames and speech"):
        bench.make_scaling_clips([SAMPLE.parent / "en_schedule_audio.wav"], tmp_path / "x")


def test_scaling_clips_frame_size(tmp_path):
    if not SAMPLE.is_file():
        pytest.skip("sample not shipped")
    import av

    (path,) = bench.make_scaling_clips([SAMPLE], tmp_path, durations=(3.0,), fps=25.0, frame_size=(1280, 720))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
        assert float(stream.average_rate) == pytest.approx(25.0)


@pytest.mark.parametrize("bad", [["--durations", "5,x"], ["--durations", "0"], ["--frame-size", "1920"],
                                 ["--frame-size", "8x8"], ["--video-fps", "0"]])
def test_bench_cli_rejects_bad_scaling_options(bad, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--scaling", *bad])
    assert bad[0] in capsys.readouterr().err


def test_bench_cli_scaling_names_the_made_clips(result, tmp_path, monkeypatch):
    seen = {}

    def fake_make(paths, out_dir, durations, fps, frame_size):
        seen.update(durations=list(durations), fps=fps, frame_size=frame_size)
        return [SAMPLE]

    monkeypatch.setattr(bench, "_make_scaling_clips_in_child", fake_make)
    monkeypatch.setattr(bench, "bench", lambda *a, **k: result)
    out = tmp_path / "scaling.md"
    assert bench.main(["--input", str(SAMPLE.parent), "--scaling", "--durations", "5,10", "--frame-size", "1280x720",
                       "--video-fps", "25", "--out", str(out)]) == 0
    assert seen == {"durations": [5.0, 10.0], "fps": 25.0, "frame_size": (1280, 720)}
    assert out.read_text(encoding="utf-8").splitlines()[0] == (
        "# Benchmark (lite backend, clips made from the inputs: 1280x720 H.264 at 25 fps)")
