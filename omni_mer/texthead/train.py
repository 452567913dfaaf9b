"""`omni-mer train-text`: fit the text head on the train splits, select on valid, report on test.

    omni-mer train-text --data ../shared/data/text --out omni_mer/texthead/model

Model: multilingual-e5-small embedding (its top ``finetune_layers`` layers fine-tuned first, texthead/finetune.py;
the embeddings cached) -> Linear(384, hidden) -> GELU -> Dropout -> Linear(hidden, 5) = class logits shared by both
languages (or the same MLP on a frozen Qwen2.5 LLM's hidden state, ``encoder``). Loss per example:
  - cross-entropy of the gold class with a per-dataset training bias on the logits (each dataset's annotators use
    the classes with their own frequencies), the target smoothed onto the ordinal neighbours
    (``neighbour_smoothing``);
  - + ``aux_weight`` x squared error of the expected class valence against the continuous score scaled to [-1, 1]
    (off by default: it did not raise the validation objective);
  - weighted so each class counts (``class_balance`` power of inverse frequency, per dataset) and both languages
    weigh the same in total (``language_balance``; ``language_weights`` tilts that, e.g. ``zh=2``).
Machine translations of the train rows are added as examples of the other language (``use_translations``), and a
copy of some train rows with ASR-like noise (``noise_fraction``) teaches robustness to Whisper's slips. The epoch
with the best validation objective (Acc-5 + UAR) / 2, averaged over the languages, is kept; the per-language
calibration (class biases + temperature) is then fitted on the validation rows (texthead/calibrate.py).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from omni_mer.core.config import PROJECT_ROOT
from omni_mer.core.i18n import LANGUAGES
from omni_mer.core.labels import LABEL_INDEX
from omni_mer.texthead.corpus import DATASETS, DEFAULT_DATASETS, TextExample, load_corpus, select
from omni_mer.texthead.head import DEFAULT_HEAD_DIR, N_CLASSES, LanguageCalibration, TextHead

log = logging.getLogger(__name__)

DEFAULT_CACHE = PROJECT_ROOT / ".cache" / "text-embeddings" / "embeddings.sqlite"
# validation pools for the calibration and for selection: the datasets each language's targets are measured on
CALIBRATION_DATASETS = {"en": ("mosei",), "zh": ("sims2",)}
E5_LAYERS = 12  # multilingual-e5-small
FUSION_STEP = 0.1  # --fuse-with: the grid of the members' weights


@dataclass
class TrainTextConfig:
    """Everything `omni-mer train-text` needs; every field is a flag (``--hidden-size 256``)."""

    data: str = field(default="../shared/data/text", metadata={"help": "folder of the labelled tables"})
    out: str = field(default="runs/text_head", metadata={
        "help": f"where head.npz/head.json/metrics/model card go (the shipped head: {DEFAULT_HEAD_DIR})"})
    cache: str = field(default=str(DEFAULT_CACHE), metadata={"help": "SQLite embedding cache (text, encoder) -> vector"})
    train_datasets: str = field(default="mosei,mosi,sims2,mer2023",
                                metadata={"help": f"comma-separated train sets, of {','.join(DATASETS)} (sims: CH-SIMS "
                                                        "v1, whose clips are all in SIMS v2 too, not in the default)"})
    train_languages: str = field(default="en,zh", metadata={"help": "keep train examples in these languages "
                                                                     "(after translation): en, zh or en,zh"})
    aux_datasets: str = field(default="", metadata={
        "help": "comma-separated extra train-only sets (meld, sst5, waimai, chnsenticorp); empty for none"})
    aux_scale: float = field(default=0.3, metadata={"help": "loss weight of an auxiliary example vs a dataset one"})
    use_translations: bool = field(default=True, metadata={"help": "add the machine translations as examples"})
    noise_fraction: float = field(default=0.0, metadata={"help": "share of train rows added again with ASR-like noise"})
    encoder: str = field(default="e5", metadata={
        "help": "sentence encoder: e5 (multilingual-e5-small, fine-tuned by --finetune-layers) or a Qwen2.5 LLM "
                "(a name of `bash scripts/setup.sh --llm`, e.g. qwen2.5-coder-1.5b, or a model folder) read at "
                "--encoder-layer (texthead/llm_encoder.py; frozen)"})
    encoder_layer: int = field(default=12, metadata={"help": "with an LLM --encoder: the decoder layer whose last "
                                                               "token state is the feature"})
    max_train_per_dataset: int = field(default=0, metadata={
        "help": "at most this many train rows per dataset (a seeded sample, its translations kept with it); 0: all. "
                "An LLM encoder costs ~0.1-0.3 s per transcript on 2 cores"})
    fuse_with: str = field(default="", metadata={
        "help": "comma-separated trained head folders (e.g. the e5 head) to fuse with the head trained here: "
                "per-language weights of their calibrated log-probabilities and a calibration on top, fitted on valid "
                "(texthead/fused.py); --out then holds the fused head, the head trained here in --out/member"})
    keep_member: bool = field(default=False, metadata={
        "help": "with --fuse-with: reuse the head already trained in --out/member (its saved recipe must be this "
                "one) and refit only the fusion, e.g. after a --fuse-with head was retrained; the member, its "
                "metrics and card stay as they are"})
    hidden_size: int = field(default=256, metadata={"help": "MLP hidden width"})
    dropout: float = field(default=0.2, metadata={"help": "dropout on the hidden layer"})
    epochs: int = field(default=20, metadata={"help": "passes over the train rows"})
    batch_size: int = field(default=256, metadata={"help": "rows per step"})
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW peak learning rate (one-cycle: a tenth of the steps warm up, "
                                                                  "cosine decay)"})
    weight_decay: float = field(default=1e-4, metadata={"help": "AdamW weight decay"})
    neighbour_smoothing: float = field(default=0.2, metadata={"help": "target mass moved to the ordinal neighbours"})
    class_balance: float = field(default=0.5, metadata={"help": "class weight = (1/frequency)^this, per dataset"})
    language_balance: bool = field(default=True, metadata={"help": "both languages weigh the same in the loss"})
    language_weights: str = field(default="", metadata={
        "help": "with --language-balance, relative total loss weight per language, e.g. 'zh=2' (Mandarin rows "
                "weigh twice English ones in total; unnamed languages 1); empty: equal"})
    aux_weight: float = field(default=0.0, metadata={
        "help": "weight of the expected-valence regression on the continuous score (0: off; 0.5 measured no "
                "better on valid, docs/text_head.md)"})
    finetune_layers: int = field(default=6, metadata={
        "help": "top e5 layers fine-tuned (quantisation-aware) before the head is trained; 0 keeps the encoder frozen "
                "(6 beat 4 on valid over 3 seeds, docs/text_head.md)"})
    finetune_epochs: int = field(default=3, metadata={"help": "passes over the train rows when fine-tuning e5"})
    finetune_learning_rate: float = field(default=2e-4, metadata={"help": "AdamW peak learning rate of the tuned e5 "
                                                                           "layers (one-cycle)"})
    finetune_batch_size: int = field(default=32, metadata={"help": "rows per fine-tuning step"})
    language_feature: bool = field(default=False, metadata={"help": "give the head a one-hot of the language"})
    ensemble: int = field(default=1, metadata={"help": "MLPs trained with seeds seed..seed+n-1, logits averaged"})
    seed: int = field(default=2, metadata={"help": "random seed (the shipped e5 head's: the best of seeds 0-2 on "
                                                      "valid, docs/text_head.md)"})
    threads: int = field(default=2, metadata={"help": "CPU threads for embedding and torch"})

    def __post_init__(self) -> None:
        ds = self.train_dataset_list
        bad = [d for d in ds if d not in DATASETS]
        if bad or not ds:
            raise ValueError(f"--train-datasets {self.train_datasets!r}: unknown {bad}; valid: {', '.join(DATASETS)}")
        langs = self.train_language_list
        if not langs or any(lang not in LANGUAGES for lang in langs):
            raise ValueError(f"--train-languages {self.train_languages!r}: valid values are {', '.join(LANGUAGES)}")
        for name in ("noise_fraction", "dropout", "neighbour_smoothing"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ValueError(f"--{name.replace('_', '-')} {v}: must be in [0, 1)")
        if not 0 <= self.finetune_layers <= E5_LAYERS:
            raise ValueError(f"--finetune-layers {self.finetune_layers}: must be in [0, {E5_LAYERS}] "
                             f"(multilingual-e5-small has {E5_LAYERS} layers)")
        if self.encoder_layer < 1:
            raise ValueError(f"--encoder-layer {self.encoder_layer}: must be >= 1")
        if self.max_train_per_dataset < 0:
            raise ValueError(f"--max-train-per-dataset {self.max_train_per_dataset}: must be >= 0 (0: all rows)")
        if self.uses_llm_encoder and self.finetune_layers > 0:
            raise ValueError(f"--encoder {self.encoder} is frozen: --finetune-layers {self.finetune_layers} tunes e5 "
                             "only; give --finetune-layers 0")
        if isinstance(self.fuse_with, (list, tuple)):  # a YAML list in a recipe
            self.fuse_with = ",".join(str(f) for f in self.fuse_with)
        if self.fuse_with and len(self.fuse_with_list) != len(self.fuse_with.split(",")):
            raise ValueError(f"--fuse-with {self.fuse_with!r}: an empty entry; give head folders separated by commas")
        written = (Path(self.out).resolve(), (Path(self.out) / "member").resolve())  # what a fusing run writes
        for other in self.fuse_with_list:
            if not (Path(other) / "head.json").is_file():
                raise ValueError(f"--fuse-with {other!r}: no trained text head there (head.json)")
            if Path(other).resolve() in written:
                raise ValueError(f"--fuse-with {other!r} lies in --out {self.out!r}: the fused head is written there "
                                 "(the head trained here in --out/member), replacing the head it fuses; give another "
                                 "--out")
        if len({Path(f).resolve() for f in self.fuse_with_list}) < len(self.fuse_with_list):
            raise ValueError(f"--fuse-with {self.fuse_with!r}: a head named twice")
        if self.keep_member:
            self.check_kept_member()
        if self.finetune_learning_rate <= 0:
            raise ValueError(f"--finetune-learning-rate {self.finetune_learning_rate}: must be > 0")
        for name in ("hidden_size", "epochs", "batch_size", "threads", "ensemble", "finetune_epochs",
                     "finetune_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be >= 1")
        from omni_mer.texthead.corpus import AUX_DATASETS

        bad_aux = [d for d in self.aux_dataset_list if d not in AUX_DATASETS]
        if bad_aux:
            raise ValueError(f"--aux-datasets {self.aux_datasets!r}: unknown {bad_aux}; valid: {', '.join(AUX_DATASETS)}")
        for name in ("class_balance", "aux_weight", "aux_scale"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be >= 0")
        if self.learning_rate <= 0:
            raise ValueError(f"--learning-rate {self.learning_rate}: must be > 0")
        if self.language_weights and not self.language_balance:
            raise ValueError(f"--language-weights {self.language_weights!r} needs --language-balance (it tilts "
                             "the balanced language shares); drop one of the two")
        self.language_weight_map  # parses and validates --language-weights

    @property
    def language_weight_map(self) -> dict[str, float]:
        """--language-weights as {language: relative weight}, every language of LANGUAGES present (default 1)."""
        out = dict.fromkeys(LANGUAGES, 1.0)
        for part in (p.strip() for p in self.language_weights.split(",") if p.strip()):
            lang, _, value = (s.strip() for s in part.partition("="))
            try:
                weight = float(value)  # "" (no "=") raises too
            except ValueError:
                weight = 0.0
            if lang not in LANGUAGES or not weight > 0:  # "not >" also rejects nan
                raise ValueError(f"--language-weights {self.language_weights!r}: {part!r} must be LANG=WEIGHT with "
                                 f"LANG one of {', '.join(LANGUAGES)} and WEIGHT > 0")
            out[lang] = weight
        return out

    def check_kept_member(self) -> None:
        """--keep-member: --out/member holds a head trained by this recipe (the flags that shape a head equal)."""
        if not self.fuse_with:
            raise ValueError("--keep-member reuses the member of a fused head: give --fuse-with too")
        saved_file = Path(self.out) / "member" / "head.json"
        if not saved_file.is_file():
            raise ValueError(f"--keep-member: no trained head in {saved_file.parent} (head.json); train it first "
                             "(without --keep-member)")
        saved = json.loads(saved_file.read_text(encoding="utf-8")).get("meta", {}).get("config", {})
        ignored = ("fuse_with", "keep_member", "threads")  # they do not change the member
        differ = sorted(k for k, v in asdict(self).items() if k in saved and k not in ignored and saved[k] != v)
        if differ:
            raise ValueError(f"--keep-member: the head in {saved_file.parent} was trained with another recipe ("
                             + ", ".join(f"--{k.replace('_', '-')} {saved[k]!r}, here {getattr(self, k)!r}"
                                         for k in differ) + "); give those values or drop --keep-member")

    @property
    def fuse_with_list(self) -> list[str]:
        """--fuse-with as a list of head folders (empty: no fusion)."""
        return [f.strip() for f in self.fuse_with.split(",") if f.strip()]

    @property
    def uses_llm_encoder(self) -> bool:
        """Whether --encoder names an LLM (frozen, read at --encoder-layer) rather than e5."""
        return self.encoder != "e5"

    @property
    def train_dataset_list(self) -> list[str]:
        return [d.strip() for d in self.train_datasets.split(",") if d.strip()]

    @property
    def aux_dataset_list(self) -> list[str]:
        return [d.strip() for d in self.aux_datasets.split(",") if d.strip()]

    @property
    def train_language_list(self) -> list[str]:
        return [x.strip() for x in self.train_languages.split(",") if x.strip()]


def _labels(examples: list[TextExample]) -> np.ndarray:
    return np.asarray([LABEL_INDEX[e.label5] for e in examples], dtype=np.int64)


def _weights(examples: list[TextExample], cfg: TrainTextConfig) -> np.ndarray:
    """Per-example loss weights: class balance within each dataset, auxiliary examples (--aux-datasets) scaled by
    ``aux_scale``, then equal total per language (tilted by --language-weights); mean 1."""
    y = _labels(examples)
    w = np.ones(len(examples))
    ds = np.asarray([e.dataset for e in examples])
    for d in np.unique(ds):
        m = ds == d
        counts = np.bincount(y[m], minlength=N_CLASSES).astype(float)
        freq = counts / counts.sum()
        cw = np.where(counts > 0, (1.0 / np.maximum(freq, 1e-9)) ** cfg.class_balance, 0.0)
        cw /= (cw * freq).sum()  # mean weight 1 within the dataset
        w[m] = cw[y[m]] * (cfg.aux_scale if d not in DATASETS else 1.0)
    if cfg.language_balance:  # after the auxiliary scale, so that the languages' shares hold with auxiliary data
        langs = np.asarray([e.lang for e in examples])
        present = np.unique(langs)
        share = cfg.language_weight_map
        total = sum(share[lang] for lang in present)
        for lang in present:
            m = langs == lang
            w[m] *= len(examples) * share[lang] / (total * w[m].sum())
    return w / w.mean()


def _smoothed_targets(y: np.ndarray, eps: float) -> np.ndarray:
    t = np.zeros((len(y), N_CLASSES))
    t[np.arange(len(y)), y] = 1.0 - eps
    for off in (-1, 1):
        nb = y + off
        ok = (nb >= 0) & (nb < N_CLASSES)
        t[np.arange(len(y))[ok], nb[ok]] += eps / 2
        t[np.arange(len(y))[~ok], y[~ok]] += eps / 2  # at the ends the mass stays on the gold class
    return t


class _Net:
    """The torch twin of TextHead (same GELU), with per-dataset training biases on the logits."""

    def __init__(self, dim: int, cfg: TrainTextConfig, n_datasets: int):
        import torch

        from omni_mer.core.ordinal import CLASS_VALENCE

        self.torch = torch
        torch.manual_seed(cfg.seed)
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(dim, cfg.hidden_size), torch.nn.GELU(approximate="tanh"), torch.nn.Dropout(cfg.dropout),
            torch.nn.Linear(cfg.hidden_size, N_CLASSES),
        )
        self.ds_bias = torch.nn.Parameter(torch.zeros(n_datasets, N_CLASSES))
        self.class_valence = torch.tensor(CLASS_VALENCE, dtype=torch.float32)

    def parameters(self):
        return [*self.mlp.parameters(), self.ds_bias]

    def loss(self, x, d, target, valence, w, aux_weight):
        torch = self.torch
        z = self.mlp(x) + self.ds_bias[d]
        logp = torch.log_softmax(z, dim=1)
        ce = -(target * logp).sum(1)
        reg = ((logp.exp() * self.class_valence).sum(1) - valence) ** 2
        return ((ce + aux_weight * reg) * w).mean()

    def logits(self, x: np.ndarray) -> np.ndarray:
        torch = self.torch
        self.mlp.eval()
        with torch.no_grad():
            out = self.mlp(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()
        self.mlp.train()
        return out.astype(np.float64)

    def to_head(self, calibration: dict[str, LanguageCalibration], encoder_id: str, meta: dict) -> TextHead:
        lin1, lin2 = self.mlp[0], self.mlp[3]
        return TextHead(
            w1=lin1.weight.detach().numpy().T.copy(), b1=lin1.bias.detach().numpy().copy(),
            w2=lin2.weight.detach().numpy().T.copy(), b2=lin2.bias.detach().numpy().copy(),
            calibration=calibration, encoder_id=encoder_id, meta=meta,
        )


def calibration_pool(examples: list[TextExample], lang: str) -> list[TextExample]:
    """The native validation rows that calibrate ``lang``."""
    return select(examples, split="valid", datasets=CALIBRATION_DATASETS[lang], langs=[lang], translated=False)


def fit_all_calibrations(logits_of, examples: list[TextExample],
                         langs: tuple[str, ...] = LANGUAGES) -> dict[str, LanguageCalibration]:
    """A calibration per language of ``langs`` on its validation rows; a language not in ``langs`` (a head trained
    on one language only) gets the first trained language's calibration, so its labels are never seen."""
    from omni_mer.texthead.calibrate import fit_calibration

    out = {}
    for lang in langs:
        pool = calibration_pool(examples, lang)
        out[lang] = fit_calibration(logits_of(pool), _labels(pool))
    for lang in LANGUAGES:
        out.setdefault(lang, out[langs[0]])
    return out


def validation_objective(logits_of, examples: list[TextExample], calibration: dict[str, LanguageCalibration],
                         langs: tuple[str, ...] = LANGUAGES) -> float:
    """Mean over ``langs`` of (Acc-5 + UAR) / 2 on the calibration pools (the quantity selection maximises)."""
    from omni_mer.texthead.calibrate import objective

    vals = []
    for lang in langs:
        cal = calibration[lang]
        pool = calibration_pool(examples, lang)
        vals.append(objective(_labels(pool), cal.apply(logits_of(pool)).argmax(1)))
    return float(np.mean(vals))


def _fit_one(cfg: TrainTextConfig, seed: int, X, D, T, V, W, n_datasets: int, inputs_of, examples):
    """One MLP: AdamW with a one-cycle schedule; the epoch with the best validation objective is kept."""
    import torch
    from tqdm.auto import trange

    net = _Net(X.shape[1], replace(cfg, seed=seed), n_datasets)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    steps_per_epoch = int(np.ceil(len(X) / cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.learning_rate, total_steps=cfg.epochs * steps_per_epoch,
                                                pct_start=0.1)
    g = torch.Generator().manual_seed(seed)
    logits_of = lambda exs: net.logits(inputs_of(exs))  # noqa: E731
    history, best, best_state = [], -1.0, None
    for epoch in trange(cfg.epochs, desc=f"train-text seed {seed}", unit="epoch",
                        disable=not log.isEnabledFor(logging.INFO)):
        perm = torch.randperm(len(X), generator=g)
        total = 0.0
        for i in range(steps_per_epoch):
            b = perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            loss = net.loss(X[b], D[b], T[b], V[b], W[b], cfg.aux_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(b)
        langs = tuple(cfg.train_language_list)
        score = validation_objective(logits_of, examples, fit_all_calibrations(logits_of, examples, langs), langs)
        history.append({"epoch": epoch + 1, "train_loss": total / len(X), "valid_objective": score})
        if score > best:
            best = score
            best_state = ({k: v.clone() for k, v in net.mlp.state_dict().items()}, epoch + 1)
    net.mlp.load_state_dict(best_state[0])
    return net, best_state[1], history


def _combine(nets: list[_Net], encoder_id: str, language_feature: bool) -> TextHead:
    """An ensemble as ONE wider MLP: hidden layers side by side, output weights averaged (= mean of the logits)."""
    parts = [net.to_head({lang: LanguageCalibration((0.0,) * 5, 1.0) for lang in LANGUAGES}, encoder_id, {})
             for net in nets]
    n = len(parts)
    return TextHead(
        w1=np.concatenate([p.w1 for p in parts], axis=1), b1=np.concatenate([p.b1 for p in parts]),
        w2=np.concatenate([p.w2 for p in parts], axis=0) / n, b2=np.mean([p.b2 for p in parts], axis=0),
        calibration=parts[0].calibration, encoder_id=encoder_id, language_feature=language_feature,
    )


def subsample_per_dataset(train: list[TextExample], limit: int, seed: int) -> list[TextExample]:
    """At most ``limit`` source rows per dataset (seeded), each kept with its translation, in corpus order."""
    rng = np.random.default_rng(seed)
    keep: set[tuple[str, str]] = set()
    for d in sorted({e.dataset for e in train}):
        ids = sorted({e.id for e in train if e.dataset == d})
        if len(ids) > limit:
            ids = [ids[i] for i in rng.choice(len(ids), limit, replace=False)]
        keep.update((d, i) for i in ids)
    return [e for e in train if (e.dataset, e.id) in keep]


def fold_standardization(head: TextHead, mu: np.ndarray, sd: np.ndarray) -> TextHead:
    """``head`` trained on (x - mu) / sd, as a head that reads x: the first layer absorbs the standardisation."""
    w1 = head.w1 / sd[:, None]
    head.b1 = (head.b1 - (mu / sd) @ head.w1).astype(np.float32)
    head.w1 = w1.astype(np.float32)
    return head


def train_head(cfg: TrainTextConfig, examples: list[TextExample] | None = None, embed=None) -> tuple[TextHead, dict]:
    """Train on ``examples`` (default: the corpus under cfg.data); ``embed(texts) -> (n, dim)`` (default: cache)."""
    import torch

    from omni_mer.texthead.noise import asr_noise

    torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    if examples is None:
        examples = load_corpus(cfg.data)
    train = select(examples, split="train", datasets=cfg.train_dataset_list, langs=cfg.train_language_list,
                   translated=None if cfg.use_translations else False)
    if cfg.max_train_per_dataset:
        train = subsample_per_dataset(train, cfg.max_train_per_dataset, cfg.seed)
    if cfg.noise_fraction > 0:
        rng = np.random.default_rng(cfg.seed)
        pick = rng.choice(len(train), size=int(round(cfg.noise_fraction * len(train))), replace=False)
        noisy = [TextExample(**{**asdict(train[i]), "text": asr_noise(train[i].text, train[i].lang, rng)})
                 for i in sorted(pick)]
        train = train + noisy
    if cfg.aux_dataset_list:
        from omni_mer.texthead.corpus import load_aux

        aux = [e for e in load_aux(cfg.data, cfg.aux_dataset_list) if e.lang in cfg.train_language_list]
        log.info("train-text: %d auxiliary examples (%s)", len(aux), cfg.aux_datasets)
        train = train + aux
    if not train:
        raise ValueError(f"no train examples for datasets {cfg.train_dataset_list} in {cfg.train_language_list}")
    log.info("train-text: %d train examples (%s)", len(train), cfg.train_datasets)
    ds_names = sorted({e.dataset for e in train})
    d_idx = np.asarray([ds_names.index(e.dataset) for e in train])
    y = _labels(train)
    target = _smoothed_targets(y, cfg.neighbour_smoothing)
    val = np.asarray([e.valence for e in train])
    w = _weights(train, cfg)

    own_cache, adapter, finetune_history = None, None, []
    if embed is None and cfg.uses_llm_encoder:
        from omni_mer.texthead.encoder import EmbeddingCache
        from omni_mer.texthead.llm_encoder import LLMEncoder

        own_cache = EmbeddingCache(cfg.cache, LLMEncoder(cfg.encoder, cfg.encoder_layer, threads=cfg.threads))
        embed = lambda texts: own_cache.encode(texts, progress=True, batch=64)  # noqa: E731
    elif embed is None:
        from omni_mer.texthead.encoder import E5Encoder, EmbeddingCache

        if cfg.finetune_layers > 0:
            from omni_mer.texthead.finetune import finetune_encoder

            pools = {lang: calibration_pool(examples, lang) for lang in cfg.train_language_list}
            adapter, finetune_history = finetune_encoder(cfg, train, pools, w, target, d_idx)
        own_cache = EmbeddingCache(cfg.cache, E5Encoder(threads=cfg.threads, adapter=adapter))
        embed = lambda texts: own_cache.encode(texts, progress=True)  # noqa: E731
    elif cfg.finetune_layers > 0:
        log.info("train-text: embeddings given by the caller; --finetune-layers %d not applied", cfg.finetune_layers)
    encoder_id = getattr(getattr(own_cache, "encoder", None), "id", "given")
    from omni_mer.texthead.head import head_inputs

    cache_by_text: dict[str, np.ndarray] = {}

    def raw_of(exs: list[TextExample]) -> np.ndarray:
        miss = list(dict.fromkeys(e.text for e in exs if e.text not in cache_by_text))
        if miss:
            for t, v in zip(miss, embed(miss)):
                cache_by_text[t] = v
        return np.stack([cache_by_text[e.text] for e in exs])

    # LLM hidden states have a few huge dimensions: the MLP reads them standardised (train statistics), and the
    # standardisation is folded into the saved first layer. e5's unit vectors are read as they are.
    x = head_inputs(raw_of(train), [e.lang for e in train], cfg.language_feature)
    mu, sd = np.zeros(x.shape[1], np.float32), np.ones(x.shape[1], np.float32)
    if cfg.uses_llm_encoder:  # the encoder's columns only: the language one-hot stays 0/1
        n = x.shape[1] - (len(LANGUAGES) if cfg.language_feature else 0)
        mu[:n], sd[:n] = x[:, :n].mean(0), np.maximum(x[:, :n].std(0), 1e-6)

    def inputs_of(exs: list[TextExample]) -> np.ndarray:  # what the network reads (+ the language one-hot)
        return ((head_inputs(raw_of(exs), [e.lang for e in exs], cfg.language_feature) - mu) / sd).astype(np.float32)

    x = inputs_of(train)

    X, D, T = torch.from_numpy(x), torch.from_numpy(d_idx), torch.from_numpy(target.astype(np.float32))
    V, W = torch.from_numpy(val.astype(np.float32)), torch.from_numpy(w.astype(np.float32))
    members, history = [], []
    for k in range(cfg.ensemble):
        net, best_epoch, hist = _fit_one(cfg, cfg.seed + k, X, D, T, V, W, len(ds_names), inputs_of, examples)
        members.append((net, best_epoch))
        history.append(hist)
    head = fold_standardization(_combine([net for net, _ in members], encoder_id, cfg.language_feature), mu, sd)
    logits_of = lambda exs: head.logits(raw_of(exs), [e.lang for e in exs])  # noqa: E731
    langs = tuple(cfg.train_language_list)
    head.calibration = fit_all_calibrations(logits_of, examples, langs)
    meta = {
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("data", "out", "cache")},
        "best_epoch": [e for _, e in members] if cfg.ensemble > 1 else members[0][1],
        "valid_objective": validation_objective(logits_of, examples, head.calibration, langs),
        "n_train": len(train), "train_seconds": round(time.perf_counter() - t0, 1),
        "history": history if cfg.ensemble > 1 else history[0],
    }
    if cfg.uses_llm_encoder:
        meta["encoder_spec"] = {"kind": "llm", "model": cfg.encoder, "layer": cfg.encoder_layer}
    if adapter is not None:
        head.encoder = adapter
        meta["encoder_finetune"] = {**adapter.meta, "history": finetune_history}
    head.meta = meta
    if cfg.language_feature:  # no language for "nothing said": the mean of the two readings
        head.empty_logits = np.mean([head.logits(embed([""]), lang)[0] for lang in LANGUAGES], axis=0)
    else:
        head.empty_logits = head.logits(embed([""]))[0]
    if own_cache is not None:
        own_cache.close()
    return head, meta


def corpus_datasets(cfg: TrainTextConfig) -> tuple[str, ...]:
    """The datasets train-text loads: the evaluated ones (corpus.DEFAULT_DATASETS) plus any other --train-datasets."""
    return tuple(dict.fromkeys([*DEFAULT_DATASETS, *cfg.train_dataset_list]))


def preflight(cfg: TrainTextConfig, examples: list[TextExample]) -> list[TextHead]:
    """What can fail on the data or on the --fuse-with heads, checked before any training (a fine-tuning run is 40
    minutes): every trained language has a validation pool to select and calibrate on, there are train rows, and
    the --fuse-with heads load. Returns those heads, loaded. Raises ValueError naming what is missing."""
    for lang in cfg.train_language_list:
        pool = calibration_pool(examples, lang)
        n_classes = len({e.label5 for e in pool})
        if len(pool) < 20 or n_classes < 2:
            names = " + ".join(DATASETS[d][0] for d in CALIBRATION_DATASETS[lang])
            raise ValueError(f"the {lang} validation pool ({names} valid rows under --data {cfg.data!r}) has "
                             f"{len(pool)} rows in {n_classes} classes; each language trained (--train-languages "
                             f"{cfg.train_languages}) needs >= 20 rows in >= 2 classes to select and calibrate on")
    absent = [d for d in cfg.train_dataset_list if not any(e.dataset == d for e in examples)]
    missing = ", ".join(f"{DATASETS[d][0]} table ({DATASETS[d][0]}/ under --data {cfg.data!r})" for d in absent)
    if absent and len(absent) == len(cfg.train_dataset_list):
        raise ValueError(f"--train-datasets {cfg.train_datasets!r}: no {missing}")
    if absent:  # e.g. the default list on a folder holding only the challenge's MOSEI and SIMS v2
        log.warning("train-text: no %s; training on the other --train-datasets", missing)
    if not select(examples, split="train", datasets=cfg.train_dataset_list, langs=cfg.train_language_list):
        raise ValueError(f"--train-datasets {cfg.train_datasets!r}: no train rows in {cfg.train_languages} under "
                         f"--data {cfg.data!r}")
    heads = []
    for folder in cfg.fuse_with_list:
        try:
            heads.append(TextHead.load(folder))
        except ValueError as exc:
            raise ValueError(f"--fuse-with {folder!r}: {exc}") from exc
    return heads


def fuse_with(cfg: TrainTextConfig, head: TextHead, examples: list[TextExample], out: Path,
              others: list[TextHead] | None = None):
    """Save ``head`` as ``out/member`` and fuse it with the heads at ``cfg.fuse_with`` (texthead/fused.py) into
    ``out``; returns the fused head (members: the --fuse-with heads in order, then the head trained here).
    ``others``: those heads already loaded (preflight)."""
    from omni_mer.texthead.encoder import CachedEmbedder
    from omni_mer.texthead.fused import FusedTextHead, fit_fusion, relative_member_path

    if others is None:
        others = [TextHead.load(f) for f in cfg.fuse_with_list]
    if not cfg.keep_member:  # a kept member was loaded from there, digest included
        head.save(out / "member")
        head = TextHead.load(out / "member")  # with its digest, as the fused head will find it
    members = [*others, head]
    embeds = [CachedEmbedder.for_head(cfg.cache, m, cfg.threads) for m in members]
    langs = tuple(cfg.train_language_list)
    try:
        weights, calibration, objectives = fit_fusion(members, examples, embeds, langs, step=FUSION_STEP)
    finally:
        for e in embeds:
            e.close()
    # the valid rows also selected the members' epochs and fitted their calibrations: optimistic numbers
    fused = FusedTextHead(members=members, member_paths=[*(relative_member_path(f, out) for f in cfg.fuse_with_list),
                                                  "member"],
                          weights=weights, calibration=calibration,
                          meta={"valid_objective": objectives, "fusion_grid_step": FUSION_STEP,
                                "members_valid_objective": [m.meta.get("valid_objective") for m in members],
                                "fusion": "per-language weights of the members' calibrated log-probabilities, "
                                          "then a calibration, fitted on valid"})
    log.info("train-text: fused with %s, weights %s, valid objective %s", cfg.fuse_with, weights, objectives)
    fused.save(out)
    return fused


def main(argv: list[str] | None = None) -> int:
    """omni-mer train-text: train, then write the head and its test metrics (the shipped e5 head's recipe by default:
    ~40 min on 2 cores)."""
    from omni_mer.texthead.args import parse_config
    from omni_mer.texthead.evaluate import evaluate_head, write_metrics

    from omni_mer.core.console import user_error

    cfg = parse_config(TrainTextConfig, argv, prog="omni-mer train-text", description=main.__doc__)
    out = Path(cfg.out)
    try:  # every check on the data and the heads it reads, before the (long) training
        examples = load_corpus(cfg.data, datasets=corpus_datasets(cfg))
        others = preflight(cfg, examples)
        kept = TextHead.load(out / "member") if cfg.keep_member else None
    except (ValueError, FileNotFoundError) as exc:
        return user_error("omni-mer train-text", exc)
    if kept is not None:
        head, meta = kept, kept.meta
        log.info("train-text: kept the member in %s; refitting the fusion only", out / "member")
    else:
        head, meta = train_head(cfg, examples)
    if cfg.fuse_with:
        head = fuse_with(cfg, head, examples, out, others)
    else:
        head.save(out)
    metrics = evaluate_head(head, examples, split="test", cache=cfg.cache, threads=cfg.threads)
    write_metrics(metrics, out / "metrics.json")
    from omni_mer.texthead.card import write_card

    write_card(out, head, metrics, cfg.data)
    trained = out
    if cfg.fuse_with and not cfg.keep_member:  # the member trained here gets its own metrics and card
        trained = out / "member"
        member_metrics = evaluate_head(head.members[-1], examples, split="test", cache=cfg.cache, threads=cfg.threads)
        write_metrics(member_metrics, trained / "metrics.json")
        write_card(trained, head.members[-1], member_metrics, cfg.data)
    if not cfg.keep_member:
        (trained / "history.json").write_text(json.dumps(meta["history"], indent=1), encoding="utf-8")
    log.info("train-text: best epoch %s, valid objective %.4f (%s), wrote %s", meta["best_epoch"],
             meta["valid_objective"], "the member" if cfg.fuse_with else "the head", out)
    from omni_mer.core.console import emit

    emit(json.dumps({k: {m: v[m] for m in ("acc5", "uar", "mae", "n")} for k, v in metrics.items()
                     if isinstance(v, dict) and "acc5" in v}, indent=1))
    return 0
