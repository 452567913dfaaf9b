"""One dataclass for both training stages, parsed from a recipe YAML + command-line overrides (TrlParser).

Validation happens at parse time (``__post_init__``): every error is a ConfigError (a ValueError) naming the bad value
and the valid ones. Every field is a flag of ``omni-mer train`` / ``train_grpo.py`` (``--output-dir`` or
``--output_dir``) and a key of the recipe YAML; its ``help`` is what ``--help`` shows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from omni_mer.core.config import MODALITIES, MediaConfig
from omni_mer.core.errors import ConfigError

_MEDIA = MediaConfig()
_MEDIA_FIELDS = tuple(MediaConfig.__dataclass_fields__)

STAGES = ("sft", "grpo")
DTYPES = ("auto", "float32", "bfloat16", "float16")
LANGS = ("en", "zh")
EVIDENCE_SOURCES = ("extract", "transcript")
LOSS_TYPES = ("grpo", "dapo")
REPORT_TO = ("tensorboard", "none")
# LoRA on every linear layer of the language model only; the audio and vision towers never match.
LLM_LINEAR_REGEX = r"^(?!.*(audio_tower|visual)).*layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)$"


def _choice(name: str, value, valid) -> None:
    if value not in valid:
        raise ConfigError(f"{name}={value!r} is not valid; valid values: {', '.join(map(str, valid))}")


@dataclass
class TrainConfig:
    """Everything a training run reads. Recipes set these keys; CLI flags (``--key value``) override them."""

    stage: str = field(default="grpo", metadata={"help": "training stage", "choices": STAGES})
    model_name_or_path: str | None = field(default=None, metadata={"help": "local Qwen2.5-Omni (thinker) folder"})
    output_dir: str | None = field(default=None, metadata={"help": "run folder: checkpoints, logs, final adapter"})
    run_name: str | None = field(default=None, metadata={"help": "name in logs/card (default: output_dir name)"})
    init_adapter: str | None = field(default=None, metadata={"help": "LoRA adapter to start from (e.g. the SFT run)"})
    # data
    manifest: str = field(default="samples/meta/manifest.jsonl", metadata={"help": "manifest JSONL (paths relative to it)"})
    train_split: str = field(default="train", metadata={"help": "manifest split to train on"})
    eval_split: str | None = field(default=None, metadata={"help": "manifest split evaluated after training"})
    train_langs: list[str] = field(default_factory=lambda: list(LANGS), metadata={"help": f"languages trained on ({', '.join(LANGS)})"})
    max_train_samples: int | None = field(default=None, metadata={"help": "cap on training clips"})
    cache_dir: str | None = field(default=None, metadata={"help": "evidence cache (default: OUTPUT_DIR/cache)"})
    evidence: str = field(default="extract", metadata={"help": "evidence source", "choices": EVIDENCE_SOURCES})
    keep: list[str] = field(default_factory=lambda: list(MODALITIES), metadata={"help": f"modalities given to the model ({', '.join(MODALITIES)})"})
    # media: the inference defaults of omni_mer.core.config.MediaConfig (one source: training and inference decode a clip
    # the same way, so the evidence and its cache keys agree); a recipe may override them
    fps: float = field(default=_MEDIA.fps, metadata={"help": "frames sampled per second"})
    max_frames: int = field(default=_MEDIA.max_frames, metadata={"help": "cap on sampled frames per clip"})
    max_side: int = field(default=_MEDIA.max_side, metadata={"help": "longest frame side in pixels"})
    max_audio_seconds: float = field(default=_MEDIA.max_audio_seconds, metadata={"help": "audio kept per clip, seconds"})
    decode_timeout_s: float = field(default=_MEDIA.decode_timeout_s, metadata={"help": "wall-clock budget for decoding one file, seconds"})
    use_audio_in_video: bool = field(default=_MEDIA.use_audio_in_video, metadata={"help": "audio rides inside the video placeholder (TMRoPE interleaving)"})
    fast_video_decode: bool = field(default=_MEDIA.fast_video_decode, metadata={"help": "H.264/HEVC: skip decoding non-reference frames"})
    # model / LoRA
    dtype: str = field(default="auto", metadata={"help": "auto: bf16 on GPU, fp32 on CPU", "choices": DTYPES})
    lora_r: int = field(default=8, metadata={"help": 'LoRA rank'})
    lora_alpha: int = field(default=32, metadata={"help": 'LoRA alpha'})
    lora_dropout: float = field(default=0.05, metadata={"help": 'LoRA dropout, in [0, 1)'})
    lora_target_regex: str = field(default=LLM_LINEAR_REGEX, metadata={"help": 'modules that get LoRA (default: every linear layer of the language model)'})
    freeze_towers: bool = field(default=True, metadata={"help": 'keep the audio and vision towers frozen'})
    gradient_checkpointing: bool = field(default=False, metadata={"help": 'trade compute for memory'})
    # optimisation
    learning_rate: float = field(default=5e-6, metadata={"help": 'peak learning rate'})
    weight_decay: float = field(default=0.0, metadata={"help": 'AdamW weight decay'})
    warmup_steps: int = field(default=0, metadata={"help": 'linear warm-up steps'})
    max_grad_norm: float = field(default=1.0, metadata={"help": 'gradient clipping norm'})
    num_train_epochs: float = field(default=1.0, metadata={"help": 'epochs (used when max_steps <= 0)'})
    max_steps: int = field(default=-1, metadata={"help": 'optimizer steps (> 0 overrides num_train_epochs)'})
    per_device_train_batch_size: int = field(default=1, metadata={"help": 'clips per device per step'})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": 'micro-batches per optimizer step'})
    seed: int = field(default=0, metadata={"help": 'random seed'})
    # SFT
    max_length: int = field(default=4096, metadata={"help": 'SFT: longest prompt + target in tokens'})
    # GRPO
    num_generations: int = field(default=8, metadata={"help": 'GRPO: completions sampled per prompt (the group, >= 2)'})
    max_completion_length: int = field(default=256, metadata={"help": 'GRPO: longest completion in tokens'})
    temperature: float = field(default=1.0, metadata={"help": 'GRPO: sampling temperature'})
    top_p: float = field(default=1.0, metadata={"help": 'GRPO: nucleus sampling, in (0, 1]'})
    beta: float = field(default=0.04, metadata={"help": 'GRPO: KL weight (0 disables the reference model)'})
    epsilon: float = field(default=0.2, metadata={"help": 'GRPO: ratio clipping, in (0, 1)'})
    loss_type: str = field(default="grpo", metadata={"help": "GRPO loss normalisation", "choices": LOSS_TYPES})
    reward_funcs: list[str] = field(default_factory=lambda: ["format", "accuracy", "grounding", "language"],
                                    metadata={"help": "GRPO rewards (omni_mer.train.rewards.REWARDS)"})
    reward_weights: list[float] | None = field(default=None, metadata={"help": "one weight per reward (default 1)"})
    # logging / checkpoints
    logging_steps: int = field(default=1, metadata={"help": 'log every N optimizer steps'})
    save_steps: int = field(default=0, metadata={"help": 'checkpoint every N steps (0: only the final adapter)'})
    save_total_limit: int = field(default=2, metadata={"help": 'checkpoints kept'})
    log_completions: int = field(default=2, metadata={"help": 'GRPO: completions logged per step'})
    report_to: str = field(default="tensorboard", metadata={"help": "where metrics go", "choices": REPORT_TO})
    resume_from_checkpoint: str | None = field(default=None, metadata={"help": "checkpoint dir, or 'latest'"})

    def __post_init__(self) -> None:
        from omni_mer.train.rewards import REWARDS

        _choice("stage", self.stage, STAGES)
        _choice("dtype", self.dtype, DTYPES)
        _choice("evidence", self.evidence, EVIDENCE_SOURCES)
        _choice("loss_type", self.loss_type, LOSS_TYPES)
        _choice("report_to", self.report_to, REPORT_TO)
        if isinstance(self.train_langs, str):
            self.train_langs = [s for s in self.train_langs.replace(",", " ").split() if s]
        if isinstance(self.keep, str):
            self.keep = [s for s in self.keep.replace(",", " ").split() if s]
        for lang in self.train_langs:
            _choice("train_langs", lang, LANGS)
        if not self.train_langs:
            raise ConfigError(f"train_langs is empty; valid values: {', '.join(LANGS)}")
        for m in self.keep:
            _choice("keep", m, MODALITIES)
        for name in self.reward_funcs:
            _choice("reward_funcs", name, tuple(REWARDS))
        if self.stage == "grpo" and not self.reward_funcs:
            raise ConfigError(f"reward_funcs is empty; valid rewards: {', '.join(REWARDS)}")
        if self.reward_weights is not None and len(self.reward_weights) != len(self.reward_funcs):
            raise ConfigError(f"reward_weights={self.reward_weights} has {len(self.reward_weights)} values but "
                             f"reward_funcs={self.reward_funcs} has {len(self.reward_funcs)}")
        positive = {"learning_rate": self.learning_rate, "lora_r": self.lora_r, "lora_alpha": self.lora_alpha,
                    "per_device_train_batch_size": self.per_device_train_batch_size,
                    "gradient_accumulation_steps": self.gradient_accumulation_steps,
                    "max_completion_length": self.max_completion_length, "max_length": self.max_length,
                    "temperature": self.temperature, "logging_steps": self.logging_steps}
        for name, v in positive.items():
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{name}={v!r} must be a positive number")
        if self.num_generations < 2:
            raise ConfigError(f"num_generations={self.num_generations!r} must be >= 2 (GRPO compares a group)")
        if not 0 <= self.beta:
            raise ConfigError(f"beta={self.beta!r} must be >= 0 (0 disables the reference model)")
        if not 0 < self.epsilon < 1:
            raise ConfigError(f"epsilon={self.epsilon!r} must be in (0, 1)")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p={self.top_p!r} must be in (0, 1]")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"lora_dropout={self.lora_dropout!r} must be in [0, 1)")
        if self.max_steps <= 0 and not self.num_train_epochs > 0:
            raise ConfigError(f"set max_steps > 0 or num_train_epochs > 0 (got {self.max_steps}, "
                             f"{self.num_train_epochs})")
        self.media  # validates fps/max_frames/max_side via MediaConfig

    @property
    def media(self) -> MediaConfig:
        return MediaConfig(**{name: getattr(self, name) for name in _MEDIA_FIELDS})

    @property
    def keep_set(self) -> frozenset[str]:
        return frozenset(self.keep)

    def require_paths(self) -> None:
        """Check the paths a run needs (called at the start of training, after parsing)."""
        if not self.model_name_or_path:
            raise ConfigError("model_name_or_path is required (a local Qwen2.5-Omni folder, e.g. one made by "
                             "`omni-mer tiny-model --out DIR`)")
        if not self.output_dir:
            raise ConfigError("output_dir is required (e.g. checkpoints/<run>)")
        if not Path(self.manifest).is_file():
            raise ConfigError(f"manifest={self.manifest!r} does not exist")

    @property
    def name(self) -> str:
        return self.run_name or (Path(self.output_dir).name if self.output_dir else "run")

    def to_dict(self) -> dict:
        return asdict(self)
