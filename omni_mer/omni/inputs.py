"""Qwen2.5-Omni model inputs from the SAME decoded Clip the lite path reads (the pitfalls in
docs/training.md, "Qwen2.5-Omni facts", handled here).

- Frames are passed pre-sampled with their own fps (video_second_per_grid / TMRoPE time axis) and an explicit
  ``size`` so the processor never upscales them beyond the 28-pixel grid rounding.
- Audio is the Clip's 16 kHz mono track, padded only to its own length (not the 300 s chunk).
- ``use_audio_in_video`` is decided once per call (MediaConfig + which streams are used), passed to the processor
  as ``load_audio_from_video`` and stored in the returned BatchFeature, so ``model(**inputs)`` and
  ``model.generate(**inputs)`` receive the very same flag.
- Each clip is processed on its own (its fps) and the batch is collated with LEFT padding for generation.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from omni_mer.core.clip import Clip
from omni_mer.core.config import SAMPLE_RATE, MediaConfig
from omni_mer.omni.prompts import uses_audio_in_video

# Tokens a random/badly-trained model must never sample: a stray placeholder breaks the next forward.
MULTIMODAL_TOKEN_ATTRS = (
    "audio_token", "image_token", "video_token",
    "audio_bos_token", "audio_eos_token", "vision_bos_token", "vision_eos_token",
)
MIN_PIXELS = 28 * 28


def suppress_token_ids(processor) -> list[int]:
    """Token ids to pass as ``suppress_tokens`` to generate (multimodal placeholders and their delimiters)."""
    tok = processor.tokenizer
    ids = set()
    for attr in MULTIMODAL_TOKEN_ATTRS:
        token = getattr(tok, attr, None)
        if token:
            ids.add(int(tok.convert_tokens_to_ids(token)))
    vision_pad = tok.convert_tokens_to_ids("<|vision_pad|>")
    if isinstance(vision_pad, int) and vision_pad != tok.unk_token_id:
        ids.add(int(vision_pad))
    return sorted(i for i in ids if i is not None and i >= 0)


def clip_uses(clip: Clip, keep: frozenset[str]) -> tuple[bool, bool]:
    """(use_video, use_audio) for this clip under ``keep``: kept AND actually present in the Clip."""
    use_video = "visual" in keep and clip.has_video and clip.frames is not None and len(clip.frames) > 0
    use_audio = "audio" in keep and clip.has_audio and clip.audio is not None and len(clip.audio) > 0
    return bool(use_video), bool(use_audio)


def clip_uses_audio_in_video(clip: Clip, keep: frozenset[str], media: MediaConfig) -> bool:
    """The effective use_audio_in_video flag for one clip (group clips by it before batching)."""
    use_video, use_audio = clip_uses(clip, keep)
    return uses_audio_in_video(keep, use_video, use_audio, media)


def video_size(frames: np.ndarray, media: MediaConfig, factor: int = 28) -> dict:
    """``size`` for the video processor: the frames' own pixel count (rounded to the grid), capped by max_side."""
    h, w = int(frames.shape[1]), int(frames.shape[2])
    scale = min(1.0, media.max_side / max(h, w))
    th, tw = max(factor, round(h * scale / factor) * factor), max(factor, round(w * scale / factor) * factor)
    return {"shortest_edge": MIN_PIXELS, "longest_edge": max(MIN_PIXELS, th * tw)}


def clip_inputs(processor, clip: Clip, messages: list[dict], media: MediaConfig, keep: frozenset[str],
                suffix: str = ""):
    """``(processor outputs, use_audio_in_video)`` of one clip: input_ids (1, L) and its video/audio features."""
    use_video, use_audio = clip_uses(clip, keep)
    uav = uses_audio_in_video(keep, use_video, use_audio, media)
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + suffix
    kwargs: dict = {"text": [text], "return_tensors": "pt", "padding": False}
    if use_video:
        frames = np.ascontiguousarray(clip.frames)
        kwargs["videos"] = [frames]
        kwargs["videos_kwargs"] = {
            # pre-sampled: tells TMRoPE the real time between frames (processor default would be wrong)
            "fps": float(clip.fps) if clip.fps and clip.fps > 0 else float(media.fps),
            "size": video_size(frames, media),
            "do_sample_frames": False,
            "cap_pixels_per_frame": False,  # we size frames ourselves (max_frames/max_side in MediaConfig)
        }
    if use_audio:
        audio = np.asarray(clip.audio, dtype=np.float32)
        if clip.sample_rate != SAMPLE_RATE:
            raise ValueError(f"{clip.path}: audio must be {SAMPLE_RATE} Hz, got {clip.sample_rate}")
        fe = processor.feature_extractor
        max_len = min(fe.n_samples, max(fe.hop_length, math.ceil(len(audio) / fe.hop_length) * fe.hop_length))
        kwargs["audio"] = [audio]
        kwargs["audio_kwargs"] = {"sampling_rate": SAMPLE_RATE, "max_length": max_len, "truncation": True}
    if uav:
        kwargs["load_audio_from_video"] = True  # direct argument (docs/training.md, Qwen2.5-Omni facts)
        kwargs["audio_from_video_indices"] = [0]
    out = processor(**kwargs)
    return out, uav


def build_inputs(
    processor,
    clips: Sequence[Clip],
    messages_list: Sequence[list[dict]],
    media: MediaConfig,
    keep: frozenset[str] | Sequence[frozenset[str]],
    suffix: str | Sequence[str] = "",
):
    """Processor outputs for a batch of clips, left-padded, as one BatchFeature (tensors on CPU).

    ``keep`` is one coalition for all clips or one per clip; ``suffix`` is text appended after the generation
    prompt (e.g. a teacher-forced answer prefix), one for all or one per clip. The returned BatchFeature carries
    ``use_audio_in_video`` (bool) so ``model(**inputs)`` / ``model.generate(**inputs)`` use the processor's flag.
    Raises ValueError when the clips of one batch need different use_audio_in_video flags (group them first with
    ``clip_uses_audio_in_video``).
    """
    import torch
    from transformers import BatchFeature

    n = len(clips)
    if len(messages_list) != n:
        raise ValueError(f"{n} clips but {len(messages_list)} message lists")
    keeps = [frozenset(keep)] * n if isinstance(keep, (frozenset, set)) else [frozenset(k) for k in keep]
    suffixes = [suffix] * n if isinstance(suffix, str) else list(suffix)
    parts, flags = [], []
    for clip, messages, k, s in zip(clips, messages_list, keeps, suffixes):
        out, uav = clip_inputs(processor, clip, messages, media, k, s)
        parts.append(out)
        flags.append(uav)
    if len(set(flags)) > 1:
        raise ValueError("clips in one batch need different use_audio_in_video flags; group them first")

    pad_id = processor.tokenizer.pad_token_id
    length = max(int(p["input_ids"].shape[1]) for p in parts)
    ids = torch.full((n, length), pad_id, dtype=torch.long)
    mask = torch.zeros((n, length), dtype=torch.long)
    for i, p in enumerate(parts):
        L = int(p["input_ids"].shape[1])
        ids[i, length - L:] = p["input_ids"][0]
        mask[i, length - L:] = p["attention_mask"][0]
    data: dict = {"input_ids": ids, "attention_mask": mask}

    data.update(collate_media(parts))
    batch = BatchFeature(data)
    batch["use_audio_in_video"] = bool(flags[0]) if flags else False
    return batch


def collate_media(parts: Sequence) -> dict:
    """The video and audio features of several clips' processor outputs as one batch, in order.

    Videos are concatenated (pixel rows, one grid and one seconds-per-grid each); audio features are padded to the
    longest clip with ``feature_attention_mask`` marking the real frames. Clips without video/audio add nothing."""
    import torch

    data: dict = {}
    videos = [p for p in parts if "pixel_values_videos" in p]
    if videos:
        data["pixel_values_videos"] = torch.cat([p["pixel_values_videos"] for p in videos], dim=0)
        data["video_grid_thw"] = torch.cat([p["video_grid_thw"] for p in videos], dim=0)
        data["video_second_per_grid"] = torch.tensor(
            [float(x) for p in videos for x in np.asarray(p["video_second_per_grid"]).reshape(-1)],
            dtype=torch.float32,
        )
    audios = [p for p in parts if "input_features" in p]
    if audios:
        frames = max(int(p["input_features"].shape[-1]) for p in audios)
        feats, fmask = [], []
        for p in audios:
            f, m = p["input_features"], p["feature_attention_mask"]
            pad = frames - int(f.shape[-1])
            feats.append(torch.nn.functional.pad(f, (0, pad)))
            fmask.append(torch.nn.functional.pad(m, (0, pad)))
        data["input_features"] = torch.cat(feats, dim=0)
        data["feature_attention_mask"] = torch.cat(fmask, dim=0).long()
    return data


def to_device(inputs, device, dtype=None):
    """Move tensors of a BatchFeature/dict to ``device``; float tensors (pixels, features) to ``dtype``."""
    import torch

    out = {}
    for k, v in inputs.items():
        if torch.is_tensor(v):
            if dtype is not None and v.is_floating_point() and k != "video_second_per_grid":
                v = v.to(device=device, dtype=dtype)
            else:
                v = v.to(device)
        out[k] = v
    return out
