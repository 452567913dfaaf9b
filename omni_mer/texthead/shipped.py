"""Which shipped text head the pipeline reads: the e5 head, or the fused e5 + Qwen2.5-1.5B head when its LLM is set up.

Two heads ship (docs/text_head.md):
  - ``omni_mer/texthead/model``: the e5 head (multilingual-e5-small, top layers fine-tuned), needs nothing extra;
  - ``omni_mer/texthead/model_fused``: that head fused with two heads on Qwen2.5-Coder-1.5B's hidden states
    (texthead/fused.py; the LLM runs once for both), markedly better on Mandarin; it needs the 1.5B weights
    (``OMNI_MER_LLM=qwen2.5-coder-1.5b bash scripts/setup.sh --llm``, 1.1 GB) and ~1 s more per clip on 2 cores.

The choice, ``--text-head`` of `omni-mer predict` / test_script.py or else ``OMNI_MER_TEXT_HEAD``:
  ``auto`` (default): the fused head when its LLM is set up, else the e5 head (logged once);
  ``e5`` / ``fused``: that one (``fused`` without its LLM is an error naming the setup command);
  a folder: the head saved there (head.json or fused.json).

Public API:
    TEXT_HEAD_CHOICES, TEXT_HEAD_ENV, E5_HEAD_DIR, FUSED_HEAD_DIR
    text_head_dir(choice=None) -> Path      load_shipped_head(choice=None) -> head or None
    head_llm_models(head or folder) -> list[str]
    use_text_head(choice)   this process and its workers read ``choice`` (a no-op for an empty choice)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from omni_mer.texthead.head import DEFAULT_HEAD_DIR

log = logging.getLogger(__name__)

E5_HEAD_DIR = DEFAULT_HEAD_DIR
FUSED_HEAD_DIR = DEFAULT_HEAD_DIR.parent / "model_fused"
TEXT_HEAD_CHOICES = ("auto", "e5", "fused")
TEXT_HEAD_ENV = "OMNI_MER_TEXT_HEAD"
_reported: set[str] = set()


def head_llm_models(head) -> list[str]:
    """The LLMs (registered names or folders, each once) whose hidden states ``head`` (or the head saved in that
    folder), or its members, read."""
    if isinstance(head, (str, Path)):
        from omni_mer.texthead.fused import load_text_head

        head = load_text_head(head)
    return list(dict.fromkeys(m.encoder_spec["model"] for m in getattr(head, "members", [head]) if m.encoder_spec))


def _missing_llms(head) -> list[str]:
    from omni_mer.core.errors import ModelNotFoundError
    from omni_mer.llm.model import resolve_model_dir

    missing = []
    for model in head_llm_models(head):
        try:
            resolve_model_dir(model)
        except ModelNotFoundError:
            missing.append(model)
    return missing


def _fallback(reason: str) -> tuple[Path, None]:
    if reason not in _reported:  # once per process and reason
        _reported.add(reason)
        log.info("text head: the e5 head (%s); %s (docs/text_head.md)", E5_HEAD_DIR, reason)
    return E5_HEAD_DIR, None


def _resolve(choice: str | Path | None):
    """(folder, the head loaded from it, or None when not loaded yet) for ``choice`` (``text_head_dir``)."""
    from omni_mer.core.errors import ModelNotFoundError
    from omni_mer.texthead.fused import load_text_head, saved_head_in

    choice = str(choice or os.environ.get(TEXT_HEAD_ENV) or "auto")
    if choice == "e5":
        return E5_HEAD_DIR, None
    folder = FUSED_HEAD_DIR if choice in ("auto", "fused") else Path(choice)
    if not saved_head_in(folder):
        if choice == "auto":
            return E5_HEAD_DIR, None
        raise ValueError(f"text head {choice!r}: not one of {', '.join(TEXT_HEAD_CHOICES)} and not a folder holding "
                         f"a trained head (head.json or fused.json)" if choice != "fused" else
                         f"text head 'fused': {folder} holds no fused head (fused.json)")
    try:
        head = load_text_head(folder)  # numpy only: a broken or stale head is found here, not in the first clip
    except ValueError as exc:
        if choice == "auto":
            return _fallback(f"the fused head does not load: {exc}")
        raise
    missing = _missing_llms(head)
    if missing and choice == "auto":
        return _fallback(f"the fused head also needs {', '.join(missing)}: "
                         f"`OMNI_MER_LLM={missing[0]} bash scripts/setup.sh --llm`")
    if missing:
        raise ModelNotFoundError(f"text head {choice!r} ({folder}) reads {', '.join(missing)}, which is not set up: "
                                 f"run `OMNI_MER_LLM={missing[0]} bash scripts/setup.sh --llm`")
    return folder, head


def text_head_dir(choice: str | Path | None = None) -> Path:
    """The folder of the text head to use for ``choice`` (module docstring). ``auto`` falls back to the e5 head when
    the fused one cannot be used (its LLM not set up, or it does not load, e.g. the e5 head was retrained without
    refitting the fusion); an explicit choice raises instead: ValueError for a bad choice or a head that does not
    load, ModelNotFoundError for an LLM that is not set up."""
    return _resolve(choice)[0]


def load_shipped_head(choice: str | Path | None = None):
    """The head ``text_head_dir(choice)`` names (a TextHead or FusedTextHead, loaded once), or None when that
    folder holds none."""
    from omni_mer.texthead.fused import load_text_head, saved_head_in

    folder, head = _resolve(choice)
    if head is None and saved_head_in(folder):
        head = load_text_head(folder)
    return head


def use_text_head(choice: str | None) -> None:
    """Make ``choice`` the text head of this process (and of the worker processes it starts): every reader of the
    shipped head (evidence, lite scorer, cache keys) resolves it through ``text_head_dir``. Validated first. The
    setting stays for the rest of the process (it is how worker processes inherit it)."""
    if choice:
        text_head_dir(choice)
        os.environ[TEXT_HEAD_ENV] = str(choice)
