"""Turning rankings and ratings into preference pairs.

Why here and not in the trainers: reward models, DPO and preference benchmarks
all consume pairs; how pairs are derived from K-wise rankings (InstructGPT: all
K-choose-2 pairs) or scalar ratings (UltraFeedback: best against a random
worse one) is a data decision that must be the same wherever it is made.
"""

from __future__ import annotations

import random
from typing import Iterable, Literal, Union

from aligngoals.data.records import PreferencePair, Ranking, Rating, Record
from aligngoals.io import stable_hash

BinarizeStrategy = Literal["best_vs_random", "best_vs_worst", "all_pairs"]
BINARIZE_STRATEGIES: tuple[str, ...] = ("best_vs_random", "best_vs_worst", "all_pairs")


def _base_meta(rec: Record, **extra) -> dict:
    meta = {k: v for k, v in rec.meta.items()}
    meta.update(extra)
    return meta


def rankings_to_pairs(ranking: Ranking) -> list[PreferencePair]:
    """All pairs of a K-wise ranking in which one response is strictly better (InstructGPT: K choose 2).

    ``ranks`` (lower is better) decide when given, so tied responses give no pair;
    otherwise the list order is the ranking (best first). Pairs are ordered by
    (better index, worse index) so the output is deterministic.
    """
    n = len(ranking.responses)
    ranks = ranking.ranks if ranking.ranks is not None else list(range(1, n + 1))
    pairs = []
    for i in range(n):
        for j in range(n):
            if ranks[i] < ranks[j]:
                pairs.append((i, j))
    pairs.sort()
    out = []
    for i, j in pairs:
        out.append(
            PreferencePair(
                id=f"{ranking.id}:{i}>{j}" if ranking.id is not None else None,
                prompt=ranking.prompt,
                chosen=ranking.responses[i],
                rejected=ranking.responses[j],
                prompt_messages=ranking.prompt_messages,
                meta=_base_meta(ranking, source_id=ranking.id, chosen_rank=ranks[i], rejected_rank=ranks[j], derived_from="ranking"),
            )
        )
    return out


def binarize_ratings(
    rating: Rating, strategy: Union[BinarizeStrategy, str] = "best_vs_random", seed: int = 0
) -> list[PreferencePair]:
    """Preference pairs from scalar ratings of several responses to one prompt.

    * ``best_vs_random`` (UltraFeedback / Zephyr recipe): the highest-rated response
      against one response drawn at random from those rated strictly lower;
    * ``best_vs_worst``: the highest against the lowest;
    * ``all_pairs``: every pair with different scores.

    Ties for best go to the earliest response. A rating whose responses all have
    the same score gives no pair. The random draw depends only on ``seed`` and the
    rating itself (not on its position in a file), so results are reproducible
    whatever order records are processed in.
    """
    if strategy not in BINARIZE_STRATEGIES:
        raise ValueError(f"unknown binarization strategy {strategy!r}; expected one of {', '.join(BINARIZE_STRATEGIES)}")
    scores = rating.scores
    n = len(scores)
    if n < 2:
        return []
    best = max(range(n), key=lambda k: (scores[k], -k))
    worse = [k for k in range(n) if scores[k] < scores[best]]
    if strategy == "all_pairs":
        idx_pairs = [(i, j) for i in range(n) for j in range(n) if scores[i] > scores[j]]
    elif not worse:
        idx_pairs = []
    elif strategy == "best_vs_worst":
        worst = min(worse, key=lambda k: (scores[k], k))
        idx_pairs = [(best, worst)]
    else:
        rng = random.Random(stable_hash([seed, rating.id, rating.prompt, rating.responses, rating.scores]))
        idx_pairs = [(best, rng.choice(worse))]
    out = []
    for i, j in idx_pairs:
        out.append(
            PreferencePair(
                id=f"{rating.id}:{i}>{j}" if rating.id is not None else None,
                prompt=rating.prompt,
                chosen=rating.responses[i],
                rejected=rating.responses[j],
                prompt_messages=rating.prompt_messages,
                margin=float(scores[i] - scores[j]),
                meta=_base_meta(
                    rating,
                    source_id=rating.id,
                    score_chosen=scores[i],
                    score_rejected=scores[j],
                    aspect=rating.aspect,
                    derived_from=f"rating:{strategy}",
                ),
            )
        )
    return out


def to_pairs(records: Iterable[Record], strategy: str = "best_vs_random", seed: int = 0) -> list[Record]:
    """Replace every Ranking by its pairs and every Rating by its binarized pairs; other records pass through."""
    out: list[Record] = []
    for r in records:
        if isinstance(r, Ranking):
            out.extend(rankings_to_pairs(r))
        elif isinstance(r, Rating):
            out.extend(binarize_ratings(r, strategy, seed))
        else:
            out.append(r)
    return out
