"""In-context alignment: state the goal's principles, in priority order, to the model.

This is the zero-training baseline of the survey's "principle prompting": the
model is not changed, it is only told what it is aligned to. Every trained
method should be compared with it (``--in-context-goal NAME`` in ``eval``).

Where the principles go (a deliberate choice, see ``docs/alignment.md``):

* **chat requests** (generation with ``messages``): as the system message. An
  existing system message is kept, after the principles, so a task's own
  instructions still apply; the model's default system prompt (SmolLM2 injects
  one when none is given) is replaced, as it would be by any system message.
* **raw prompts and log-likelihood contexts** (few-shot, multiple-choice tasks
  that bypass the chat template): as a plain-text preamble before the prompt.
  The preamble ends with a blank line so it never merges with the prompt's
  first token. The continuation being scored is unchanged, so scores remain
  comparable with the plain model's.

The wrapper's ``identity`` includes the goal's name, version and a hash of the
rendered principles, so the run store never serves a plain model's cached
answer to the wrapped model (or the answer for another goal).
"""

from __future__ import annotations

from typing import Any, Sequence

from aligngoals.io import stable_hash
from aligngoals.models.base import (
    ChatMessage,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    Model,
    ProgressFn,
)

SYSTEM_HEADER = (
    "You are guided by the following principles, listed from highest to lowest priority. "
    "When two principles conflict, follow the one listed first."
)


def goal_principles_text(goal: Any, *, include_explanations: bool = False) -> str:
    """The principles block: a header, then ``1. statement`` lines in priority order."""
    from aligngoals.errors import ConfigError

    principles = list(goal.principles_in_priority_order())
    if not principles:
        raise ConfigError(
            f"Goal {goal.name!r} has no principles, so there is nothing to put in the prompt.",
            hint="In-context alignment needs a goal with a 'principles' list (e.g. --goal hhh).",
        )
    lines = [SYSTEM_HEADER]
    for i, p in enumerate(principles, 1):
        text = p.statement.strip()
        if include_explanations and getattr(p, "explanation", ""):
            text = f"{text} {p.explanation.strip()}"
        lines.append(f"{i}. {text}")
    return "\n".join(lines)


def resolve_goal(goal: Any) -> Any:
    """Accept a Goal object or a goal name / path (loaded with ``aligngoals.goals.load_goal``)."""
    if isinstance(goal, str):
        from aligngoals.goals import load_goal

        return load_goal(goal)
    return goal


class InContextGoalModel(Model):
    """A :class:`Model` that states ``goal``'s principles before every request.

    Usable anywhere a model is (evaluation, judges, sampling for alignment):
    ``InContextGoalModel(load_model("smollm2"), load_goal("hhh"))``.
    """

    def __init__(self, base: Model, goal: Any, *, include_explanations: bool = False) -> None:
        super().__init__()
        self.base = base
        self.goal = resolve_goal(goal)
        self.principles_text = goal_principles_text(self.goal, include_explanations=include_explanations)
        self.prefix_reuse = base.prefix_reuse
        self.backend = base.backend
        if hasattr(base, "batch_size"):
            self.batch_size = base.batch_size

    # --- identity ---------------------------------------------------------------------
    @property
    def identity(self) -> dict:
        return {
            **self.base.identity,
            "name": self.name,
            "in_context_goal": {
                "name": self.goal.name,
                "version": str(getattr(self.goal, "version", "")),
                "principles_sha256": stable_hash(self.principles_text),
            },
        }

    @property
    def name(self) -> str:
        return f"{self.base.name}+goal:{self.goal.name}"

    @property
    def info(self) -> dict:
        return {**self.base.info, **self.identity}

    # --- how the goal is added ---------------------------------------------------------------
    def with_goal_messages(self, messages: Sequence[Any]) -> tuple[ChatMessage, ...]:
        msgs = ChatMessage.coerce(messages)
        if msgs and msgs[0].role == "system":
            system = ChatMessage("system", f"{self.principles_text}\n\n{msgs[0].content}")
            return (system, *msgs[1:])
        return (ChatMessage("system", self.principles_text), *msgs)

    def with_goal_prefix(self, text: str) -> str:
        """``text`` with the principles preamble, unless it already states them.

        Why the check: tasks that render chat prompts through this wrapper's
        :meth:`apply_chat_template` (chat-formatted multiple choice) already carry
        the principles in the system message; they must not be stated twice.
        """
        if self.principles_text in text:
            return text
        return f"{self.principles_text}\n\n{text}"

    def with_goal_request(self, request: GenerationRequest) -> GenerationRequest:
        if request.messages is not None:
            return GenerationRequest(messages=self.with_goal_messages(request.messages), settings=request.settings)
        assert request.prompt is not None
        return GenerationRequest(prompt=self.with_goal_prefix(request.prompt), settings=request.settings)

    # --- Model primitives (delegated) ------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        return self.base.tokenize(text)

    @property
    def prefix_token_id(self) -> int:
        return self.base.prefix_token_id

    def apply_chat_template(self, messages: Sequence[ChatMessage], add_generation_prompt: bool = True) -> str:
        return self.base.apply_chat_template(self.with_goal_messages(messages), add_generation_prompt)

    def _score_group(self, context: list[int], continuations: list[list[int]]) -> list[LoglikelihoodResult]:
        return self.base._score_group(context, continuations)

    def _score_full(self, pairs: list[tuple[list[int], list[int]]]) -> list[LoglikelihoodResult]:
        return self.base._score_full(pairs)

    def _generate(self, requests: list[GenerationRequest], progress: ProgressFn | None) -> list[str]:
        return self.base.generate([self.with_goal_request(r) for r in requests], progress)

    def loglikelihood(
        self, requests: Sequence[LoglikelihoodRequest], progress: ProgressFn | None = None
    ) -> list[LoglikelihoodResult]:
        """Score each continuation after the principles preamble + the original context."""
        self.base.prefix_reuse = self.prefix_reuse
        prefixed = [LoglikelihoodRequest(self.with_goal_prefix(r.context), r.continuation) for r in requests]
        return self.base.loglikelihood(prefixed, progress)

    def close(self) -> None:
        self.base.close()
