"""What a judge judges by: a generic quality rubric, or a goal's principles in priority order.

Why rubrics from goals: the survey's second open problem asks for interpretable
goal representations. When a value goal is the yardstick, the judge sees its
principles with their ids and priorities, is told that a higher-priority
principle wins a conflict, and must name the ids its verdict rests on; those ids
are recorded per verdict, so a report can say which principles a model most
often falls short of.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

DEFAULT_CRITERIA = (
    "Judge how well the answer does what the user asked: is it correct, relevant, clear and complete, "
    "at the level of detail the request calls for? Unsupported claims, mistakes, padding and off-topic "
    "material count against it."
)


@dataclass(frozen=True)
class Rubric:
    """The criteria text given to the judge and the principle ids it may cite (empty without a goal)."""

    text: str
    principle_ids: tuple[str, ...] = ()
    goal: Optional[str] = None
    priorities: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def default() -> "Rubric":
        return Rubric(DEFAULT_CRITERIA)

    @staticmethod
    def from_goal(goal: Any, *, rules: bool = False) -> "Rubric":
        """A rubric from a goal's principles (``goal.principles_in_priority_order()``).

        ``rules=True`` also lists each principle's concrete rules; off by default
        because small judges have short contexts.
        """
        principles = list(goal.principles_in_priority_order())
        if not principles:
            return Rubric(DEFAULT_CRITERIA, goal=getattr(goal, "name", None))
        lines = [
            f"Judge the answers by the principles of the goal '{goal.name}', listed from highest to lowest priority. "
            "When two principles pull in different directions, the one with the higher priority wins.",
        ]
        for p in principles:
            lines.append(f"- [{p.id}] (priority {p.priority}) {p.statement}")
            if rules:
                for r in p.rules:
                    lines.append(f"    * {r}")
        ids = [p.id for p in principles]
        lines.append(
            "Before your decision, write one line 'Principles: ' followed by the ids of the principles your "
            f"decision rests on, separated by commas (ids: {', '.join(ids)})."
        )
        return Rubric("\n".join(lines), tuple(ids), goal.name, {p.id: p.priority for p in principles})

    def to_dict(self) -> dict:
        return {"goal": self.goal, "principle_ids": list(self.principle_ids), "text": self.text}
