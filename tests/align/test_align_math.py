"""The hand-written pieces of the alignment methods against values computed by hand."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from aligngoals.align.config import make_config  # noqa: E402
from aligngoals.align.data import Example, split_heldout  # noqa: E402
from aligngoals.align.online import (  # noqa: E402
    gae,
    kl_penalized_rewards,
    ppo_policy_loss,
    ppo_value_loss,
    rrhf_terms,
    whiten,
)
from aligngoals.errors import DataError  # noqa: E402


def t(*xs):
    return torch.tensor(xs, dtype=torch.float64)


def test_rrhf_terms_by_hand():
    # three candidates; mean token log-probs p = (-1, -2, -0.5); scores 3 > 1 > 2 ranks them 0, 2, 1
    seq = [t(-1.0, -1.0), t(-3.0, -1.0), t(-0.5)]
    rank, sft, correct, pairs = rrhf_terms(seq, [3.0, 1.0, 2.0])
    # pairs (worse, better): (1,0): max(0, -2 - -1) = 0; (1,2): max(0, -2 - -0.5) = 0; (2,0): max(0, -0.5 - -1) = 0.5
    assert float(rank) == pytest.approx(0.5)
    assert (correct, pairs) == (2, 3)
    assert float(sft) == pytest.approx(1.0)  # best is candidate 0: mean NLL of (-1, -1)


def test_rrhf_ties_do_not_count_and_gradient_flows():
    a = torch.tensor([-1.0, -1.0], requires_grad=True)
    b = torch.tensor([-0.2], requires_grad=True)
    rank, sft, correct, pairs = rrhf_terms([a, b], [1.0, 0.0])  # b is worse but more likely: loss 0.8
    assert float(rank.detach()) == pytest.approx(0.8) and (correct, pairs) == (0, 1)
    (rank + sft).backward()
    # d rank / d b = +1 (push the worse answer down); d rank / d a_i = -1/2; d sft / d a_i = -1/2
    assert b.grad.tolist() == pytest.approx([1.0])
    assert a.grad.tolist() == pytest.approx([-1.0, -1.0])
    rank, _, _, pairs = rrhf_terms([a, b], [1.0, 1.0])
    assert float(rank.detach()) == 0.0 and pairs == 0


def test_kl_penalized_rewards():
    r, kl = kl_penalized_rewards(t(-1.0, -2.0, -0.5), t(-1.5, -2.0, -1.0), score=2.0, beta=0.1)
    assert kl.tolist() == pytest.approx([0.5, 0.0, 0.5])
    assert r.tolist() == pytest.approx([-0.05, 0.0, -0.05 + 2.0])


def test_gae_by_hand():
    rewards, values = t(0.0, 0.0, 1.0), t(0.5, 0.4, 0.8)
    adv, ret = gae(rewards, values, lam=0.5)
    # deltas: d2 = 1 - 0.8 = 0.2; d1 = 0 + 0.8 - 0.4 = 0.4; d0 = 0 + 0.4 - 0.5 = -0.1
    # A2 = 0.2; A1 = 0.4 + 0.5*0.2 = 0.5; A0 = -0.1 + 0.5*0.5 = 0.15
    assert adv.tolist() == pytest.approx([0.15, 0.5, 0.2])
    assert ret.tolist() == pytest.approx([0.65, 0.9, 1.0])
    # lambda = 1, gamma = 1: advantage = return-to-go - value; return = reward-to-go (1 everywhere)
    adv1, ret1 = gae(rewards, values, lam=1.0)
    assert ret1.tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_whiten():
    w = whiten(t(1.0, 2.0, 3.0))
    assert w.tolist() == pytest.approx([-1.0, 0.0, 1.0], abs=1e-6)  # sample std of (1,2,3) is 1
    assert whiten(t(5.0)).tolist() == [0.0]


def test_ppo_policy_loss_clipping():
    old = t(0.0, 0.0, 0.0)
    new = t(math.log(1.5), math.log(0.5), math.log(1.1))
    adv = t(1.0, -1.0, 2.0)
    loss, clipfrac = ppo_policy_loss(new, old, adv, clip=0.2)
    # token 0: ratio 1.5, A=1: max(-1.5, -1.2) = -1.2 (clipped: no incentive beyond 1.2)
    # token 1: ratio 0.5, A=-1: max(0.5, 0.8) = 0.8 (pessimistic bound)
    # token 2: ratio 1.1, A=2: max(-2.2, -2.2) = -2.2
    assert float(loss) == pytest.approx((-1.2 + 0.8 - 2.2) / 3)
    assert clipfrac == pytest.approx(2 / 3)


def test_ppo_value_loss_clipping():
    v, old, ret = t(1.0, 0.0), t(0.5, 0.0), t(2.0, 1.0)
    # token 0: unclipped (1-2)^2 = 1; clipped v = 0.5 + clamp(0.5, +-0.2) = 0.7 -> (0.7-2)^2 = 1.69; max 1.69
    # token 1: both (0-1)^2 = 1
    assert float(ppo_value_loss(v, old, ret, clip=0.2)) == pytest.approx(0.5 * (1.69 + 1.0) / 2)


def test_rankings_expand_to_pairs_and_best():
    ex = Example("x", [{"role": "user", "content": "q"}], ["a", "b", "c"], [-2.0, -1.0, -3.0])  # ranks 2, 1, 3
    assert ex.best() == "b"
    assert ex.pairs() == [("b", "a"), ("b", "c"), ("a", "c")]
    tie = Example("y", [{"role": "user", "content": "q"}], ["a", "b"], [1.0, 1.0])
    assert tie.pairs() == []


def test_split_heldout_is_deterministic_tail():
    exs = [Example(str(i), [{"role": "user", "content": "q"}], ["a"]) for i in range(10)]
    train, held = split_heldout(exs, 3, limit=4)
    assert [e.id for e in held] == ["7", "8", "9"] and [e.id for e in train] == ["0", "1", "2", "3"]
    with pytest.raises(DataError, match="held out"):
        split_heldout(exs, 10)


def test_config_defaults_resolve_per_method():
    c = make_config(method="dpo", data="d", out="o", lora=True)
    assert c.effective_lr == 1e-4 and c.effective_beta == 0.1
    c = make_config(method="rrhf", data="d", out="o")
    assert c.effective_k == 0  # offline RRHF ranks the data's own answers
    c = make_config(method="rloo", data="d", out="o", reward_model="rm")
    assert c.effective_k == 2 and c.resolved()["resolved"]["beta"] == 0.05
