"""Loading models for training and writing the trained model directory.

Why this module: every alignment method starts from the same ``--model`` string
and ends with the same kind of output (a safetensors directory that
``--model hf:DIR`` loads). Three facts about transformers 5.x / TRL 1.x on this
stack are handled here once:

* A GGUF file loaded with ``from_pretrained(..., gguf_file=...)`` is marked as
  quantized (``hf_quantizer`` set) and trainers refuse it; it must be loaded with
  ``quantization_config=GgufConfig(dequantize=True)``.
* TRL sometimes rebuilds a model from ``config.name_or_path`` (the RLOO
  reference model in full fine-tuning). A GGUF path cannot be rebuilt that way,
  so a GGUF base is *materialized* once as a safetensors directory in the
  aligngoals cache and every trainer loads from there (also ~10x faster than
  dequantizing the GGUF again for every run).
* A model saved with ``quantization_config`` left in its config would be read
  back as a GGUF-quantized model; it is dropped before saving.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aligngoals.errors import ModelError
from aligngoals.io import atomic_write_json, file_sha256

#: Files of a transformers model directory that we move into the run directory.
MODEL_FILE_SUFFIXES = (".safetensors", ".json", ".jinja", ".txt", ".model")


def cache_dir() -> Path:
    """Where materialized base models live (``$ALIGNGOALS_CACHE_DIR`` or ``~/.cache/aligngoals``)."""
    root = os.environ.get("ALIGNGOALS_CACHE_DIR")
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "aligngoals"


@dataclass
class BaseModelSource:
    """Where a base model comes from, as named by ``--model``."""

    spec: str
    kind: str  # "gguf" | "dir" | "hub"
    path: str
    name: str
    gguf_file: str | None = None
    fingerprint: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"spec": self.spec, "kind": self.kind, "path": self.path, "name": self.name,
                "gguf_file": self.gguf_file, **self.fingerprint}


def resolve_base(spec: str) -> BaseModelSource:
    """Parse ``--model`` for training: ``smollm2``, ``hf:smollm2``, ``hf:DIR``, ``hf:PATH.gguf``,
    ``gguf:PATH``, ``hf:ORG/NAME`` (already in the local HF cache) or a bare directory."""
    from aligngoals.models.embedded import EMBEDDED_NAME, embedded_gguf_path

    if not isinstance(spec, str) or not spec.strip():
        raise ModelError("No model given for training.",
                         hint="Pass --model smollm2 (the embedded model), hf:DIR or hf:PATH.gguf.")
    spec = spec.strip()
    target = spec
    for prefix in ("hf:", "gguf:"):
        if spec.startswith(prefix):
            target = spec[len(prefix):]
    if target == EMBEDDED_NAME:
        path = embedded_gguf_path()
        return BaseModelSource(spec, "gguf", str(path), EMBEDDED_NAME, gguf_file=path.name,
                               fingerprint={"file_sha256": file_sha256(path)})
    p = Path(target).expanduser()
    if target.endswith(".gguf"):
        if not p.is_file():
            raise ModelError(f"GGUF file {p} does not exist.", hint="Check the path given to --model.")
        return BaseModelSource(spec, "gguf", str(p.resolve()), p.stem, gguf_file=p.name,
                               fingerprint={"file_sha256": file_sha256(p)})
    if p.is_dir():
        if not (p / "config.json").is_file():
            hint = "Point --model at a directory written by save_pretrained or by 'aligngoals align'."
            if (p / "adapter_config.json").is_file() or (p / "adapter").is_dir():
                hint = ("This looks like a LoRA run saved with --no-merge; merge it first with "
                        f"'aligngoals align merge --out {p}'.")
            raise ModelError(f"{p} has no config.json, so it is not a transformers model directory.", hint=hint)
        from aligngoals.models.hf import weights_fingerprint

        weights = [f for f in p.iterdir() if f.suffix in (".safetensors", ".bin")]
        if not weights:
            raise ModelError(f"{p} has no weight files (*.safetensors).",
                             hint="Re-save the model with save_pretrained (safetensors).")
        return BaseModelSource(spec, "dir", str(p.resolve()), p.name,
                               fingerprint={"weights_fingerprint": weights_fingerprint(weights)})
    if target.count("/") == 1 and not target.startswith((".", "/", "~")):
        return BaseModelSource(spec, "hub", target, target, fingerprint={"hub_id": target})
    raise ModelError(f"Model {spec!r} is not the embedded model, a directory, a .gguf file or a hub id.",
                     hint="Use --model smollm2, hf:DIR (a safetensors directory) or hf:PATH.gguf.")


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def materialize(source: BaseModelSource) -> Path:
    """A local transformers directory for ``source`` (GGUF files are dequantized once and cached).

    The cache entry is keyed by the GGUF's SHA-256 and written to a temporary
    directory that is renamed into place, so two processes can race safely.
    """
    if source.kind == "dir":
        return Path(source.path)
    if source.kind == "hub":
        return Path(source.path)  # transformers resolves hub ids itself (offline: local cache only)
    sha = source.fingerprint["file_sha256"]
    target = cache_dir() / "dequantized" / sha[:24]
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    _quiet_transformers()
    gguf = Path(source.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True),
            dtype=torch.float32, trust_remote_code=False,
        )
        _drop_quantization_config(model)
        model.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
        atomic_write_json(tmp / "aligngoals_source.json", source.to_dict())
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():  # someone else won the race only if it is complete
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _drop_quantization_config(model: Any) -> None:
    cfg = model.config
    if hasattr(cfg, "quantization_config"):
        try:
            delattr(cfg, "quantization_config")
        except AttributeError:
            cfg.quantization_config = None
    for attr in ("hf_quantizer",):
        if getattr(model, attr, None) is not None:
            setattr(model, attr, None)
    if getattr(model, "is_quantized", False):
        try:
            model.is_quantized = False
        except AttributeError:
            pass


def prepare_tokenizer(tokenizer: Any) -> Any:
    """A pad token (the EOS token when the model has none) so batches can be padded."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        raise ModelError(
            "The model's tokenizer has no chat template; aligngoals trains on chat-formatted data.",
            hint="Use an instruction-tuned model that ships a chat template (e.g. --model smollm2).",
        )
    return tokenizer


def load_tokenizer(path: str | Path) -> Any:
    from transformers import AutoTokenizer

    _quiet_transformers()
    try:
        tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
    except OSError as exc:
        raise ModelError(f"Could not load a tokenizer from {path}: {exc}",
                         hint="The directory must hold tokenizer files (tokenizer.json, tokenizer_config.json).") from exc
    return prepare_tokenizer(tok)


def load_causal_lm(source: BaseModelSource, *, device: str = "cpu", dtype: Any = None):
    """(model, tokenizer, local directory) of a causal LM ready to train (float32 on CPU)."""
    import torch
    from transformers import AutoModelForCausalLM

    _quiet_transformers()
    local = materialize(source)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(local), dtype=dtype or torch.float32, trust_remote_code=False)
    except OSError as exc:
        raise ModelError(f"transformers could not load {source.spec!r}: {exc}",
                         hint="Hub models must already be in the local Hugging Face cache (this machine may be offline).") from exc
    _drop_quantization_config(model)
    model.to(device)
    tok = load_tokenizer(local)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    return model, tok, local


def load_sequence_classifier(path: str | Path, *, device: str = "cpu", num_labels: int = 1):
    """A sequence classifier with one output (a reward model) from a directory.

    Loading a causal LM directory gives a fresh, randomly initialised ``score``
    head on top of the pretrained backbone, which is what reward-model training
    starts from.
    """
    import torch
    from transformers import AutoModelForSequenceClassification

    _quiet_transformers()
    model = AutoModelForSequenceClassification.from_pretrained(
        str(path), num_labels=num_labels, dtype=torch.float32, trust_remote_code=False
    )
    _drop_quantization_config(model)
    tok = load_tokenizer(path)
    model.config.pad_token_id = tok.pad_token_id
    model.to(device)
    return model, tok


def lora_config(r: int, alpha: int, dropout: float, *, task_type: str = "CAUSAL_LM", target_modules: Any = None):
    """PEFT LoRA on every linear projection of attention and MLP (``all-linear``)."""
    from peft import LoraConfig

    kwargs: dict[str, Any] = {}
    if task_type == "SEQ_CLS":
        kwargs["modules_to_save"] = ["score"]
    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, task_type=task_type,
                      target_modules=target_modules or "all-linear", bias="none", **kwargs)


def unwrap_for_save(model: Any, merge: bool) -> tuple[Any, Any]:
    """(model to save as the full model or None, peft model to save as adapter or None)."""
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is in the train extra
        PeftModel = ()  # type: ignore[assignment]
    if isinstance(model, PeftModel):
        if merge:
            import copy

            merged = copy.deepcopy(model).merge_and_unload()
            return merged, model
        return None, model
    return model, None


def save_model_dir(model: Any, tokenizer: Any, out: str | Path, *, metadata: dict) -> list[str]:
    """Write ``model`` (safetensors) and ``tokenizer`` (with chat template) into ``out``.

    Files are written into a temporary sibling directory first and then moved
    into ``out`` one by one with ``os.replace``, so an interrupted save never
    leaves a half-written weight file under its final name.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _drop_quantization_config(model)
    tmp = Path(tempfile.mkdtemp(prefix=".model-", dir=out))
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        atomic_write_json(tmp / "aligngoals_model.json", metadata)
        moved = []
        for f in sorted(tmp.iterdir()):
            if f.is_file():
                os.replace(f, out / f.name)
                moved.append(f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return moved


def save_adapter_dir(peft_model: Any, tokenizer: Any, out: str | Path, *, metadata: dict) -> None:
    """Write a LoRA adapter (``adapter_model.safetensors`` + ``adapter_config.json``) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".adapter-", dir=out.parent))
    try:
        peft_model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        atomic_write_json(tmp / "aligngoals_model.json", metadata)
        for f in sorted(tmp.iterdir()):
            if f.is_file():
                os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def merge_adapter(run_dir: str | Path, *, device: str = "cpu") -> Path:
    """Merge ``<run_dir>/adapter`` into its base model and write the full model into ``run_dir``.

    For LoRA runs saved with ``--no-merge``; afterwards ``--model hf:RUN_DIR`` loads it.
    """
    run_dir = Path(run_dir)
    adapter = run_dir / "adapter"
    cfg_path = run_dir / "align_config.json"
    if not (adapter / "adapter_config.json").is_file():
        raise ModelError(f"{run_dir} has no LoRA adapter ({adapter}/adapter_config.json is missing).",
                         hint="Pass the --out directory of an 'aligngoals align ... --lora' run.")
    if not cfg_path.is_file():
        raise ModelError(f"{run_dir} has no align_config.json, so its base model is unknown.",
                         hint="Pass the --out directory of an 'aligngoals align' run.")
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    source = resolve_base(cfg["model"])
    from peft import PeftModel

    if cfg.get("method") == "reward":
        base, tok = load_sequence_classifier(materialize(source), device=device)
    else:
        base, tok, _ = load_causal_lm(source, device=device)
    peft_model = PeftModel.from_pretrained(base, str(adapter))
    merged = peft_model.merge_and_unload()
    meta_path = adapter / "aligngoals_model.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    meta["merged"] = True
    save_model_dir(merged, load_tokenizer(adapter), run_dir, metadata=meta)
    return run_dir
