"""Record types and readers for the data formats alignment people already have."""

from .records import (  # noqa: F401
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
