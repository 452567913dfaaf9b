"""The project's keys of an Omni training recipe; TRL's ``SFTConfig`` / ``GRPOConfig`` and ``ModelConfig`` hold the rest.

The recipe style is the llm backend's (omni_mer.train.recipe): ``TrlParser((OmniTrainArgs, SFTConfig | GRPOConfig,
ModelConfig))``, every key also a flag of ``omni-mer train`` / ``train_grpo.py`` (``--output-dir`` or
``--output_dir``). Validation happens at parse time (``__post_init__``): every error is a ConfigError (a ValueError)
naming the bad value and the valid ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from omni_mer.core.config import MODALITIES, MediaConfig
from omni_mer.core.errors import ConfigError
from omni_mer.train.recipe import STAGES

_MEDIA = MediaConfig()
_MEDIA_FIELDS = tuple(MediaConfig.__dataclass_fields__)

LANGS = ("en", "zh")
EVIDENCE_SOURCES = ("extract", "transcript")
# LoRA on every linear layer of the language model only; the audio and vision towers never match (the default of
# ModelConfig.lora_target_modules in the omni recipes; load_policy checks where LoRA landed).
LLM_LINEAR_REGEX = r"^(?!.*(audio_tower|visual)).*layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)$"


def _choice(name: str, value, valid) -> None:
    if value not in valid:
        raise ConfigError(f"{name}={value!r} is not valid; valid values: {', '.join(map(str, valid))}")


@dataclass
class OmniTrainArgs:
    """The project's keys of an omni recipe (data, evidence, media, rewards). Flags (``--key value``) override them."""

    stage: str = field(default="grpo", metadata={"help": "training stage", "choices": STAGES})
    init_adapter: str | None = field(default=None, metadata={"help": "LoRA adapter to continue (e.g. the SFT run); "
                                                                     "GRPO's reference is then this adapter's policy"})
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
    # SFT
    label_only_share: float = field(default=0.0, metadata={
        "help": "SFT: share of the clips whose target is the label-only answer <think></think><answer>LABEL</answer> "
                "(what the omni scorer's label scoring reads; omni_mer.train.label_only); in [0, 0.5)"})
    # GRPO
    reward_funcs: list[str] = field(default_factory=lambda: ["format", "accuracy", "grounding", "language"],
                                    metadata={"help": "GRPO rewards (omni_mer.train.rewards.REWARDS); their weights "
                                                      "are GRPOConfig's reward_weights"})

    def __post_init__(self) -> None:
        from omni_mer.train.rewards import REWARDS

        _choice("stage", self.stage, STAGES)
        _choice("evidence", self.evidence, EVIDENCE_SOURCES)
        for name in ("train_langs", "keep", "reward_funcs"):
            value = getattr(self, name)
            if isinstance(value, str):
                setattr(self, name, [s for s in value.replace(",", " ").split() if s])
        for lang in self.train_langs:
            _choice("train_langs", lang, LANGS)
        if not self.train_langs:
            raise ConfigError(f"train_langs is empty; valid values: {', '.join(LANGS)}")
        for m in self.keep:
            _choice("keep", m, MODALITIES)
        for name in self.reward_funcs:
            _choice("reward_funcs", name, tuple(REWARDS))
        from omni_mer.train.label_only import check_label_only_share

        check_label_only_share(self.label_only_share, self.stage)
        if self.stage == "grpo" and not self.reward_funcs:
            raise ConfigError(f"reward_funcs is empty; valid rewards: {', '.join(REWARDS)}")
        self.media  # validates fps/max_frames/max_side via MediaConfig

    @property
    def media(self) -> MediaConfig:
        return MediaConfig(**{name: getattr(self, name) for name in _MEDIA_FIELDS})

    @property
    def keep_set(self) -> frozenset[str]:
        return frozenset(self.keep)

    def require_paths(self, model_name_or_path: str | None, output_dir: str | None) -> None:
        """Check the paths a run needs (called at the start of training, after parsing)."""
        if not model_name_or_path:
            raise ConfigError("model_name_or_path is required (a local Qwen2.5-Omni folder, e.g. one made by "
                              "`omni-mer tiny-model --out DIR`)")
        if not output_dir:
            raise ConfigError("output_dir is required (e.g. checkpoints/<run>)")
        if not Path(self.manifest).is_file():
            raise ConfigError(f"manifest={self.manifest!r} does not exist")

    def to_dict(self) -> dict:
        return asdict(self)
