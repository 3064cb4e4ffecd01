"""GGUF to a transformers float32 directory, so GGUF models can feed vLLM and training.

Why: vLLM's GGUF loader moved to a CUDA-only plug-in, and trainers want plain
safetensors. transformers already dequantizes GGUF (``gguf_file=``); what it
cannot do is save the result, because the loaded config still says
"quantized with GGUF". The recipe (checked on SmolLM2-135M: greedy text from
the directory equals the GGUF through transformers) is: load with
``gguf_file=``, drop ``config.quantization_config``, build a fresh model
``from_config``, ``load_state_dict`` the dequantized weights and save it with
the tokenizer and its chat template. The directory appears atomically
(written to a temporary sibling, then renamed).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from aligngoals.errors import ModelError
from aligngoals.io import file_sha256
from aligngoals.models.embedded import EMBEDDED_NAME, embedded_gguf_path

#: Written into every converted directory; its presence marks a finished conversion.
MARKER = "aligngoals_convert.json"


def resolve_gguf(source: str | os.PathLike) -> Path:
    """``smollm2`` (the embedded model) or a path to a .gguf file, checked."""
    if str(source) == EMBEDDED_NAME:
        return embedded_gguf_path()
    path = Path(source).expanduser()
    if not path.is_file():
        raise ModelError(f"GGUF file {path} does not exist.", hint=f"Pass a .gguf file or '{EMBEDDED_NAME}'.")
    with open(path, "rb") as fh:
        if fh.read(4) != b"GGUF":
            raise ModelError(f"{path} is not a GGUF file (it does not start with the GGUF magic bytes).",
                             hint="Pass a .gguf file; a transformers directory needs no conversion.")
    return path


def default_cache_root() -> Path:
    """Where content-addressed conversions live (``$ALIGNGOALS_CACHE`` or ~/.cache/aligngoals)."""
    root = os.environ.get("ALIGNGOALS_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "aligngoals"
    return Path(root) / "converted"


def is_converted(out: Path) -> bool:
    return (out / MARKER).is_file() and (out / "config.json").is_file()


def convert_gguf(source: str | os.PathLike, out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Convert a GGUF file (or ``smollm2``) to a transformers float32 directory at ``out``.

    Takes about a minute and 4x the GGUF's parameter count in bytes (538 MB for
    SmolLM2-135M). Refuses to replace an existing ``out`` unless ``overwrite``.
    """
    gguf = resolve_gguf(source)
    out = Path(out).expanduser()
    if out.exists() and not overwrite:
        raise ModelError(f"{out} already exists.", hint="Choose another --out, or pass --overwrite to replace it.")
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise ModelError("Converting GGUF needs the 'hf' extra (torch, transformers, gguf).",
                         hint="pip install torch==2.13.0 && pip install 'aligngoals[hf]'") from exc
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    sha = file_sha256(gguf)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary model directory
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # else save_pretrained refuses a "GGUF-quantized" model
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(loaded.state_dict())
        model.generation_config = loaded.generation_config
        del loaded
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        if not getattr(tokenizer, "chat_template", None):
            raise ModelError(f"{gguf.name} carries no chat template; the converted model could not render chat.",
                             hint="Use a GGUF that has tokenizer.chat_template in its metadata.")
        (tmp / MARKER).write_text(json.dumps({"source": str(gguf), "gguf_sha256": sha, "dtype": "float32"}, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def ensure_converted(source: str | os.PathLike, cache_root: str | os.PathLike | None = None) -> Path:
    """The converted directory of ``source`` in a content-addressed cache, converting on first use.

    Keyed by the GGUF's SHA-256, so every test session, benchmark and ``vllm:smollm2``
    shares one conversion; a concurrent converter loses the rename race harmlessly.
    """
    gguf = resolve_gguf(source)
    root = Path(cache_root) if cache_root else default_cache_root()
    out = root / file_sha256(gguf)[:16]
    if is_converted(out):
        return out
    try:
        return convert_gguf(gguf, out, overwrite=True)
    except OSError:
        if is_converted(out):  # another process finished first
            return out
        raise
