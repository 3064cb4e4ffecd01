"""An example aligngoals plug-in (used by the test suite and docs/extending.md).

It adds, without touching aligngoals:
* a model backend ``mirror:`` (the embedded GGUF, or any GGUF file, through llama.cpp under its own name),
* a data format ``qa_tsv`` (``question<TAB>correct<TAB>wrong...`` lines -> multiple-choice items),
* a Python task ``capitals_mc`` reading the package's own ``capitals.tsv`` in that format,
* an alignment method ``sft_short`` (SFT with a higher default learning rate),
* a judge mode ``single_strict`` (single grades; a grade counts only from 8 up in its summary).
"""

from __future__ import annotations

from collections import Counter
from importlib import resources
from pathlib import Path

from aligngoals.align.methods import MethodSpec
from aligngoals.data.formats import FormatSpec
from aligngoals.data.records import MultipleChoiceItem
from aligngoals.data.sources import BadRow, Loc
from aligngoals.evaluate.tasks import MultipleChoiceTask, TaskSpec
from aligngoals.judges.modes import SingleMode
from aligngoals.models.embedded import EMBEDDED_NAME, embedded_gguf_path
from aligngoals.models.llamacpp import LlamaCppModel
from aligngoals.models.registry import BackendSpec


# --- backend -----------------------------------------------------------------------------------
def _load_mirror(target: str, **options):
    path = embedded_gguf_path() if target in ("", EMBEDDED_NAME) else Path(target)
    return LlamaCppModel(path, name=f"mirror:{target or EMBEDDED_NAME}", **options)


MIRROR_BACKEND = BackendSpec("mirror", _load_mirror, "'mirror:smollm2' or 'mirror:PATH.gguf' (example plug-in)")


# --- data format -------------------------------------------------------------------------------
def _tsv_rows(path: Path, ctx):
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            yield Loc(line=lineno), line


def _tsv_convert(line: str, loc, ctx):
    cells = line.split("\t")
    if len(cells) < 3:
        raise BadRow(None, "question<TAB>correct answer<TAB>wrong answer(s)", line)
    return [MultipleChoiceItem(id=f"{ctx.stem}-{loc.line}", question=cells[0], choices=cells[1:], answer=0)]


QA_TSV = FormatSpec(name="qa_tsv", group="evaluation", description="question<TAB>correct<TAB>wrong... (example plug-in)",
                    produces=("multiple_choice",), rows=_tsv_rows, convert=_tsv_convert)


# --- task --------------------------------------------------------------------------------------
class CapitalsTask(MultipleChoiceTask):
    """Capital cities, one correct choice: a complete task from an installed package."""

    @classmethod
    def default_spec(cls) -> TaskSpec:
        path = resources.files("aligngoals_example_plugin") / "capitals.tsv"
        return TaskSpec(name="capitals_mc", level="instructions", python="capitals_mc",
                        data={"path": str(path), "format": "qa_tsv"}, metrics=["acc"])


# --- method ------------------------------------------------------------------------------------
SFT_SHORT = MethodSpec("sft_short", "aligngoals.align.trl_methods:train_sft", "demonstrations", (1e-4, 5e-4),
                       description="SFT with a higher default learning rate (example plug-in)")


# --- judge mode --------------------------------------------------------------------------------
class StrictSingleMode(SingleMode):
    name = "single_strict"

    def summarize(self, out, records, statuses: Counter, parsed) -> None:
        super().summarize(out, records, statuses, parsed)
        graded = [r for r in records if r.get("rating") is not None]
        out["strict_pass_rate"] = (sum(1 for r in graded if r["rating"] >= 8) / len(graded)) if graded else None


STRICT_SINGLE = StrictSingleMode()
