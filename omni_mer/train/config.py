"""One dataclass for both training stages, parsed from a recipe YAML + command-line overrides (TrlParser).

Validation happens at parse time (``__post_init__``): every error names the bad value and the valid ones.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from omni_mer.config import MODALITIES, MediaConfig

STAGES = ("sft", "grpo")
DTYPES = ("auto", "float32", "bfloat16", "float16")
LANGS = ("en", "zh")
EVIDENCE_SOURCES = ("extract", "transcript")
LOSS_TYPES = ("grpo", "dapo")
# LoRA on every linear layer of the language model only; the audio and vision towers never match.
LLM_LINEAR_REGEX = r"^(?!.*(audio_tower|visual)).*layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)$"


def _choice(name: str, value, valid) -> None:
    if value not in valid:
        raise ValueError(f"{name}={value!r} is not valid; valid values: {', '.join(map(str, valid))}")


@dataclass
class TrainConfig:
    """Everything a training run reads. Recipes set these keys; CLI flags (``--key value``) override them."""

    stage: str = field(default="grpo", metadata={"help": f"training stage: {' | '.join(STAGES)}"})
    model_name_or_path: str | None = field(default=None, metadata={"help": "local Qwen2.5-Omni (thinker) folder"})
    output_dir: str | None = field(default=None, metadata={"help": "run folder: checkpoints, logs, final adapter"})
    run_name: str | None = field(default=None, metadata={"help": "name in logs/card (default: output_dir name)"})
    init_adapter: str | None = field(default=None, metadata={"help": "LoRA adapter to start from (e.g. the SFT run)"})
    # data
    manifest: str = field(default="samples/meta/manifest.jsonl", metadata={"help": "manifest JSONL (paths relative to it)"})
    train_split: str = field(default="train", metadata={"help": "manifest split to train on"})
    eval_split: str | None = field(default=None, metadata={"help": "manifest split evaluated after training"})
    train_langs: list[str] = field(default_factory=lambda: list(LANGS), metadata={"help": "languages trained on"})
    max_train_samples: int | None = field(default=None, metadata={"help": "cap on training clips"})
    cache_dir: str | None = field(default=None, metadata={"help": "evidence cache (default: OUTPUT_DIR/cache)"})
    evidence: str = field(default="extract", metadata={"help": f"evidence source: {' | '.join(EVIDENCE_SOURCES)}"})
    keep: list[str] = field(default_factory=lambda: list(MODALITIES), metadata={"help": "modalities given to the model"})
    # media (omni_mer.config.MediaConfig)
    fps: float = 2.0
    max_frames: int = 16
    max_side: int = 448
    max_audio_seconds: float = 30.0
    use_audio_in_video: bool = True
    # model / LoRA
    dtype: str = field(default="auto", metadata={"help": f"{' | '.join(DTYPES)} (auto: bf16 on GPU, fp32 on CPU)"})
    lora_r: int = 8
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_regex: str = LLM_LINEAR_REGEX
    freeze_towers: bool = True
    gradient_checkpointing: bool = False
    # optimisation
    learning_rate: float = 5e-6
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    seed: int = 0
    # SFT
    max_length: int = 4096
    # GRPO
    num_generations: int = 8
    max_completion_length: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    beta: float = 0.04
    epsilon: float = 0.2
    loss_type: str = field(default="grpo", metadata={"help": f"{' | '.join(LOSS_TYPES)}"})
    reward_funcs: list[str] = field(default_factory=lambda: ["format", "accuracy", "grounding", "language"])
    reward_weights: list[float] | None = None
    # logging / checkpoints
    logging_steps: int = 1
    save_steps: int = 0
    save_total_limit: int = 2
    log_completions: int = 2
    report_to: str = field(default="tensorboard", metadata={"help": "tensorboard | none"})
    resume_from_checkpoint: str | None = field(default=None, metadata={"help": "checkpoint dir, or 'latest'"})

    def __post_init__(self) -> None:
        from omni_mer.train.rewards import REWARDS

        _choice("stage", self.stage, STAGES)
        _choice("dtype", self.dtype, DTYPES)
        _choice("evidence", self.evidence, EVIDENCE_SOURCES)
        _choice("loss_type", self.loss_type, LOSS_TYPES)
        _choice("report_to", self.report_to, ("tensorboard", "none"))
        if isinstance(self.train_langs, str):
            self.train_langs = [s for s in self.train_langs.replace(",", " ").split() if s]
        if isinstance(self.keep, str):
            self.keep = [s for s in self.keep.replace(",", " ").split() if s]
        for lang in self.train_langs:
            _choice("train_langs", lang, LANGS)
        if not self.train_langs:
            raise ValueError(f"train_langs is empty; valid values: {', '.join(LANGS)}")
        for m in self.keep:
            _choice("keep", m, MODALITIES)
        for name in self.reward_funcs:
            _choice("reward_funcs", name, tuple(REWARDS))
        if self.stage == "grpo" and not self.reward_funcs:
            raise ValueError(f"reward_funcs is empty; valid rewards: {', '.join(REWARDS)}")
        if self.reward_weights is not None and len(self.reward_weights) != len(self.reward_funcs):
            raise ValueError(f"reward_weights={self.reward_weights} has {len(self.reward_weights)} values but "
                             f"reward_funcs={self.reward_funcs} has {len(self.reward_funcs)}")
        positive = {"learning_rate": self.learning_rate, "lora_r": self.lora_r, "lora_alpha": self.lora_alpha,
                    "per_device_train_batch_size": self.per_device_train_batch_size,
                    "gradient_accumulation_steps": self.gradient_accumulation_steps,
                    "max_completion_length": self.max_completion_length, "max_length": self.max_length,
                    "temperature": self.temperature, "logging_steps": self.logging_steps}
        for name, v in positive.items():
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name}={v!r} must be a positive number")
        if self.num_generations < 2:
            raise ValueError(f"num_generations={self.num_generations!r} must be >= 2 (GRPO compares a group)")
        if not 0 <= self.beta:
            raise ValueError(f"beta={self.beta!r} must be >= 0 (0 disables the reference model)")
        if not 0 < self.epsilon < 1:
            raise ValueError(f"epsilon={self.epsilon!r} must be in (0, 1)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p={self.top_p!r} must be in (0, 1]")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_dropout={self.lora_dropout!r} must be in [0, 1)")
        if self.max_steps <= 0 and not self.num_train_epochs > 0:
            raise ValueError(f"set max_steps > 0 or num_train_epochs > 0 (got {self.max_steps}, "
                             f"{self.num_train_epochs})")
        self.media  # validates fps/max_frames/max_side via MediaConfig

    @property
    def media(self) -> MediaConfig:
        return MediaConfig(fps=self.fps, max_frames=self.max_frames, max_side=self.max_side,
                           max_audio_seconds=self.max_audio_seconds, use_audio_in_video=self.use_audio_in_video)

    @property
    def keep_set(self) -> frozenset[str]:
        return frozenset(self.keep)

    def require_paths(self) -> None:
        """Check the paths a run needs (called at the start of training, after parsing)."""
        if not self.model_name_or_path:
            raise ValueError("model_name_or_path is required (a local Qwen2.5-Omni folder, e.g. one made by "
                             "`omni-mer tiny-model --out DIR`)")
        if not self.output_dir:
            raise ValueError("output_dir is required (e.g. checkpoints/<run>)")
        if not Path(self.manifest).is_file():
            raise ValueError(f"manifest={self.manifest!r} does not exist")

    @property
    def name(self) -> str:
        return self.run_name or (Path(self.output_dir).name if self.output_dir else "run")

    def to_dict(self) -> dict:
        return asdict(self)
