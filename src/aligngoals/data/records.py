"""Record types for every way the survey represents an alignment goal as data.

Why pydantic: records come from user files; validation errors must name the
field, and every record must serialise to plain JSON for the store and for
``aligngoals data convert``.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Record(BaseModel):
    """Base of all records: a stable ``id`` and free-form ``meta`` (source, split, category...)."""

    model_config = ConfigDict(extra="forbid")

    id: Optional[str] = None
    meta: dict[str, Any] = Field(default_factory=dict)

    #: name used in JSONL files written by ``data convert`` (``{"type": ..., ...}``)
    record_type: str = "record"


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str


class InstructionExample(Record):
    """``<instruction, input, output>`` with optional few-shot exemplars and chain of thought."""

    record_type: Literal["instruction"] = "instruction"
    instruction: str
    input: str = ""
    output: str = ""
    exemplars: list["InstructionExample"] = Field(default_factory=list)
    chain_of_thought: Optional[str] = None
    is_classification: Optional[bool] = None


class Conversation(Record):
    """A multi-turn chat (ShareGPT, OpenAI ``messages``)."""

    record_type: Literal["conversation"] = "conversation"
    messages: list[Message]

    @field_validator("messages")
    @classmethod
    def _non_empty(cls, v: list[Message]) -> list[Message]:
        if not v:
            raise ValueError("a conversation needs at least one message")
        return v


class PreferencePair(Record):
    """A comparison: for ``prompt``, ``chosen`` is preferred over ``rejected``.

    ``prompt`` may be a plain string or, for multi-turn data, a list of messages
    that precede the two answers (``prompt_messages``).
    """

    record_type: Literal["preference_pair"] = "preference_pair"
    prompt: str
    chosen: str
    rejected: str
    prompt_messages: Optional[list[Message]] = None
    margin: Optional[float] = None


class Ranking(Record):
    """K-wise ranking: ``responses`` ordered best first (ties share a rank in ``ranks``)."""

    record_type: Literal["ranking"] = "ranking"
    prompt: str
    responses: list[str]
    ranks: Optional[list[int]] = None
    prompt_messages: Optional[list[Message]] = None
    """For multi-turn data: the conversation before the responses (``prompt`` is then its last user turn)."""

    @model_validator(mode="after")
    def _check(self) -> "Ranking":
        if len(self.responses) < 2:
            raise ValueError("a ranking needs at least two responses")
        if self.ranks is not None and len(self.ranks) != len(self.responses):
            raise ValueError("ranks must have one entry per response")
        return self


class Rating(Record):
    """Scalar ratings of one or more responses to a prompt (UltraFeedback style)."""

    record_type: Literal["rating"] = "rating"
    prompt: str
    responses: list[str]
    scores: list[float]
    aspect: Optional[str] = None
    prompt_messages: Optional[list[Message]] = None
    """For multi-turn data: the conversation before the responses (``prompt`` is then its last user turn)."""

    @model_validator(mode="after")
    def _check(self) -> "Rating":
        if len(self.responses) != len(self.scores):
            raise ValueError("scores must have one entry per response")
        return self


class MultipleChoiceItem(Record):
    """A question with choices; ``answer`` is the index of the correct choice.

    ``answers`` lists every correct index where more than one is true (TruthfulQA MC2).
    """

    record_type: Literal["multiple_choice"] = "multiple_choice"
    question: str
    choices: list[str]
    answer: int
    answers: Optional[list[int]] = None
    context: Optional[str] = None

    @model_validator(mode="after")
    def _check(self) -> "MultipleChoiceItem":
        if len(self.choices) < 2:
            raise ValueError("a multiple-choice item needs at least two choices")
        if not 0 <= self.answer < len(self.choices):
            raise ValueError(f"answer index {self.answer} is outside 0..{len(self.choices) - 1}")
        for a in self.answers or []:
            if not 0 <= a < len(self.choices):
                raise ValueError(f"answers index {a} is outside 0..{len(self.choices) - 1}")
        return self


class SocialNormExample(Record):
    """A social-norm example: situation, intention, action, rule of thumb and judgment."""

    record_type: Literal["social_norm"] = "social_norm"
    situation: Optional[str] = None
    intention: Optional[str] = None
    action: str
    rule_of_thumb: Optional[str] = None
    judgment: Optional[str] = None
    label: Optional[int] = None
    """1 when the action is acceptable/moral, 0 when not, None when unknown."""


class QuestionnaireItem(Record):
    """One item of a value questionnaire, keyed to a dimension (reversed when ``reverse``)."""

    record_type: Literal["questionnaire_item"] = "questionnaire_item"
    instrument: str
    item_id: str
    text: str
    dimension: str
    reverse: bool = False


InstructionExample.model_rebuild()

RECORD_TYPES: dict[str, type[Record]] = {
    cls.model_fields["record_type"].default: cls
    for cls in (
        InstructionExample,
        Conversation,
        PreferencePair,
        Ranking,
        Rating,
        MultipleChoiceItem,
        SocialNormExample,
        QuestionnaireItem,
    )
}
