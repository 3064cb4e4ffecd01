"""Record types and readers for the data formats alignment people already have.

``load_records(path)`` detects the format, reads every row into a record type of
:mod:`aligngoals.data.records` and stops at the first bad row with an error that
names ``file:line`` and the field (``skip_bad=True`` skips and counts instead;
``result.report`` says what happened). ``list_formats()`` names every format.
"""

from aligngoals.data.formats import (  # noqa: F401
    FormatSpec,
    ReadReport,
    RecordList,
    detect_format,
    format_specs,
    get_format,
    iter_records,
    list_formats,
    load_records,
)
from aligngoals.data.inspect import Inspection, inspect_file  # noqa: F401
from aligngoals.data.readers.generic import open_hf_dataset, parse_mapping, record_from_dict  # noqa: F401
from aligngoals.data.readers.preferences import parse_hh_transcript, split_hh_pair  # noqa: F401
from aligngoals.data.records import (  # noqa: F401
    RECORD_TYPES,
    Conversation,
    InstructionExample,
    Message,
    MultipleChoiceItem,
    PreferencePair,
    QuestionnaireItem,
    Ranking,
    Rating,
    Record,
    SocialNormExample,
)
from aligngoals.data.transforms import BINARIZE_STRATEGIES, binarize_ratings, rankings_to_pairs, to_pairs  # noqa: F401
from aligngoals.data.writers import record_to_dict, records_to_hf_rows, save_hf, to_hf_dataset, write_jsonl  # noqa: F401

__all__ = [
    "BINARIZE_STRATEGIES",
    "RECORD_TYPES",
    "Conversation",
    "FormatSpec",
    "Inspection",
    "InstructionExample",
    "Message",
    "MultipleChoiceItem",
    "PreferencePair",
    "QuestionnaireItem",
    "Ranking",
    "Rating",
    "ReadReport",
    "Record",
    "RecordList",
    "SocialNormExample",
    "binarize_ratings",
    "detect_format",
    "format_specs",
    "get_format",
    "inspect_file",
    "iter_records",
    "list_formats",
    "load_records",
    "open_hf_dataset",
    "parse_hh_transcript",
    "parse_mapping",
    "rankings_to_pairs",
    "record_from_dict",
    "record_to_dict",
    "records_to_hf_rows",
    "save_hf",
    "split_hh_pair",
    "to_hf_dataset",
    "to_pairs",
    "write_jsonl",
]
