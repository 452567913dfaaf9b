"""Load the Qwen2.5-Omni thinker (no talker, no audio output) + processor from a local folder, never downloading."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path

from omni_mer.core.errors import ConfigError, ModelNotFoundError

log = logging.getLogger(__name__)

MODEL_ENV = "OMNI_MER_MODEL"
CONFIG_ENV = "OMNI_MER_CONFIG"  # optional YAML/JSON file with a `model:` key
_HOW_TO = (
    "point at a local Qwen2.5-Omni folder with --model DIR (or the environment variable "
    f"{MODEL_ENV}), or write a tiny random one for testing with `omni-mer tiny-model --out DIR`"
)


def _offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def _model_from_config_file() -> str | None:
    path = os.environ.get(CONFIG_ENV)
    if not path:
        return None
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{CONFIG_ENV}={path} does not exist")
    text = p.read_text(encoding="utf-8")
    if p.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        data = json.loads(text)
    value = data.get("model") or data.get("model_name_or_path")
    return str(value) if value else None


def resolve_model_path(model_path: str | os.PathLike | None) -> Path:
    """The model folder from the argument, else $OMNI_MER_MODEL, else the config file; ModelNotFoundError if none."""
    candidate = model_path or os.environ.get(MODEL_ENV) or _model_from_config_file()
    if not candidate:
        raise ModelNotFoundError(f"no Qwen2.5-Omni model given: {_HOW_TO}")
    path = Path(candidate).expanduser()
    if not path.is_dir() or not (path / "config.json").is_file():
        raise ModelNotFoundError(f"{path} is not a model folder (no config.json there): {_HOW_TO}")
    return path


def _thinker_config(path: Path):
    """The thinker config of a thinker-only folder, or of the thinker inside a full Omni folder."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    if getattr(config, "model_type", "") == "qwen2_5_omni":
        return config.thinker_config, True
    if getattr(config, "model_type", "") != "qwen2_5_omni_thinker":
        raise ModelNotFoundError(f"{path} holds a {config.model_type!r} model, not Qwen2.5-Omni: {_HOW_TO}")
    return config, False


def load_thinker(
    model_path: str | os.PathLike | None,
    adapter: str | os.PathLike | None = None,
    device=None,
    dtype=None,
    load_in_4bit: bool = False,
):
    """Load ``(model, processor)``: the Qwen2.5-Omni thinker in eval mode, with a LoRA adapter when given.

    bf16 on GPU, fp32 on CPU unless ``dtype`` says otherwise; flash-attention 2 on GPU when importable; 4-bit
    (bitsandbytes) on GPU only. Loads only local files (HF_HUB_OFFLINE=1, local_files_only=True).
    """
    _offline()
    import torch
    from transformers import Qwen2_5OmniProcessor, Qwen2_5OmniThinkerForConditionalGeneration

    path = resolve_model_path(model_path)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    on_gpu = device.type == "cuda"
    if dtype is None:
        dtype = torch.bfloat16 if on_gpu else torch.float32
    elif isinstance(dtype, str):
        dtype = getattr(torch, dtype)

    config, full_omni = _thinker_config(path)
    kwargs: dict = {"dtype": dtype, "local_files_only": True}
    if on_gpu and importlib.util.find_spec("flash_attn") is not None and dtype in (torch.float16, torch.bfloat16):
        kwargs["attn_implementation"] = "flash_attention_2"
    if load_in_4bit:
        if not on_gpu:
            raise ConfigError("4-bit loading (--load-in-4bit) needs a CUDA GPU; run without it on CPU")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise ConfigError("4-bit loading needs bitsandbytes: pip install bitsandbytes")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_compute_dtype=dtype, bnb_4bit_quant_type="nf4"
        )
        kwargs["device_map"] = {"": device.index or 0}
    if full_omni:
        # A full Omni checkpoint stores the thinker under the `thinker.` prefix; load only those weights.
        model = _load_thinker_from_full(path, config, kwargs)
    else:
        model = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(str(path), **kwargs)
    if not load_in_4bit:
        model = model.to(device)
    if adapter:
        model = _attach_adapter(model, adapter)
    model.eval()
    processor = Qwen2_5OmniProcessor.from_pretrained(str(path), local_files_only=True)
    processor.tokenizer.padding_side = "left"  # batched generation needs left padding
    log.info("loaded Qwen2.5-Omni thinker from %s (%s, %s)%s", path, device, dtype,
             f" + adapter {adapter}" if adapter else "")
    return model, processor


def _load_thinker_from_full(path: Path, config, kwargs: dict):
    from transformers import Qwen2_5OmniForConditionalGeneration

    full = Qwen2_5OmniForConditionalGeneration.from_pretrained(str(path), enable_audio_output=False, **kwargs)
    thinker = full.thinker
    del full
    return thinker


def _attach_adapter(model, adapter: str | os.PathLike):
    path = Path(adapter).expanduser()
    if not (path / "adapter_config.json").is_file():
        raise ModelNotFoundError(f"{path} is not a LoRA adapter folder (no adapter_config.json there)")
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(path), is_trainable=False)


def base_thinker(model):
    """The underlying Qwen2_5OmniThinkerForConditionalGeneration (unwraps a PeftModel; LoRA layers stay active)."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def reset_rope_deltas(model) -> None:
    """Forget the rope deltas Qwen2.5-Omni caches between calls (stale ones corrupt the next full-sequence forward).

    Call after every forward/generate that started from a full prompt; ``model`` may be wrapped (PEFT, accelerate).
    """
    inner = getattr(base_thinker(model), "model", None)
    if inner is not None and hasattr(inner, "rope_deltas"):
        inner.rope_deltas = None


def model_id(model) -> str:
    """A short identifier of the loaded model (+ adapter) for version strings."""
    base = base_thinker(model)
    name = str(getattr(base.config, "_name_or_path", "") or "qwen2.5-omni-thinker")
    peft_config = getattr(model, "peft_config", None)
    if peft_config:
        name += "+lora"
    return name
