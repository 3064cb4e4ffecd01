"""``aligngoals convert GGUF --out DIR``: a GGUF model as a transformers float32 directory.

Why a command: vLLM cannot load GGUF on CPU (its GGUF loader is a CUDA-only plug-in), and
trainers want safetensors; this turns the embedded model (or any GGUF) into a directory
that ``vllm:DIR``, ``hf:DIR`` and ``aligngoals align`` all accept.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from aligngoals.cli.common import console


def register(app: typer.Typer) -> None:
    @app.command("convert")
    def convert_command(
        source: str = typer.Argument(..., metavar="GGUF", help="A .gguf file, or 'smollm2' for the embedded model."),
        out_dir: Optional[Path] = typer.Option(
            None, "--out", "-o",
            help="Directory to write (must not exist unless --overwrite). Default: a content-addressed cache "
                 "under ~/.cache/aligngoals/converted, reused when already converted."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
    ) -> None:
        """Convert a GGUF model to a transformers float32 directory (weights dequantized, tokenizer and chat template kept).

        Then run it with --model vllm:DIR or hf:DIR. Takes about a minute and 538 MB for the
        embedded SmolLM2-135M; the directory appears only when complete (written aside, then renamed).
        """
        from aligngoals.models.convert import convert_gguf, ensure_converted

        start = time.perf_counter()
        with console.status(f"Converting {source} ..."):
            path = convert_gguf(source, out_dir, overwrite=overwrite) if out_dir else ensure_converted(source)
        console.print(f"Wrote [bold]{escape(str(path))}[/] ({time.perf_counter() - start:.0f} s). "
                      f"Use it with --model vllm:{escape(str(path))} or --model hf:{escape(str(path))}.", soft_wrap=True)
