"""The guard's and best-of-n's arithmetic without a model: the detector fires on a constructed
over-optimisation and not on noise or honest progress; best-of-n's estimator is the exact mean
over subsets, rises with n, and sits at the KL bound log n - (n-1)/n; the guard's settings."""

import itertools
import math
import random

import pytest

from rmstudio.core.policy.best_of_n import best_of_n_table, best_weights, expected_best, kl_bound
from rmstudio.core.policy.config import PolicyConfig
from rmstudio.core.policy.guard import (
    GuardPoint, choose_prompts, divergence_message, diverging, first_divergence,
)
from rmstudio.core.policy.kind import GUARD_PLOTS, ONLINE_PLOTS, POLICY


def history(proxy, check, every=5):
    return [GuardPoint(i * every, p, c, kl=0.1 * i) for i, (p, c) in enumerate(zip(proxy, check))]


def test_the_guard_fires_on_a_constructed_over_optimisation():
    # Gao et al.'s shape: the proxy keeps rising, the check rises, then falls from step 15 on
    proxy = [0.1, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9]
    check = [0.1, 0.2, 0.3, 0.35, 0.3, 0.2, 0.1]
    points = history(proxy, check)
    assert [diverging(points[:k], 3) for k in range(1, 7)] == [None] * 6  # two falls are not three
    assert diverging(points, 3) == 15  # the last good evaluation, before the first fall
    assert diverging(points, 2) == 20 and diverging(points, 1) == 25
    assert first_divergence(points, 3) == 15 and first_divergence(points, 1) == 15
    assert first_divergence(points[:6], 3) is None
    assert divergence_message(3, 15) == ("the check reward has fallen for 3 evaluations while the reward "
                                         "rose: likely over-optimisation since step 15")


@pytest.mark.parametrize("proxy, check", [
    ([0.1, 0.2, 0.3, 0.4, 0.5], [0.1, 0.2, 0.3, 0.4, 0.5]),      # both rise: honest progress
    ([0.5, 0.4, 0.3, 0.2, 0.1], [0.5, 0.4, 0.3, 0.2, 0.1]),      # both fall: a broken run, not hacking
    ([0.1, 0.2, 0.3, 0.4, 0.5], [0.5, 0.4, 0.45, 0.3, 0.2]),     # the check's fall is interrupted
    ([0.1, 0.2, 0.15, 0.4, 0.5], [0.5, 0.4, 0.3, 0.2, 0.1]),     # the proxy fell once in the window
    ([0.3, 0.3, 0.3, 0.3, 0.3], [0.5, 0.4, 0.3, 0.2, 0.1]),      # the proxy is flat: not "rose"
    ([0.1, 0.2], [0.2, 0.1]),                                      # too short to tell
])
def test_the_guard_stays_quiet_without_a_consecutive_divergence(proxy, check):
    assert diverging(history(proxy, check), 3) is None


def test_random_walks_rarely_fire():
    rng = random.Random(0)
    fired = 0
    for _ in range(500):
        proxy = [rng.gauss(0, 1) for _ in range(4)]
        check = [rng.gauss(0, 1) for _ in range(4)]
        fired += diverging(history(proxy, check), 3) is not None
    assert fired / 500 < 0.03  # independent noise: both orders (1/24 each) and the overall rise


def test_sqrt_kl_of_a_negative_estimate_is_zero():
    assert GuardPoint(1, 0, 0, -0.2).sqrt_kl == 0 and GuardPoint(1, 0, 0, 4.0).sqrt_kl == 2.0


def test_guard_prompts_are_a_seeded_fixed_subset():
    class P:
        def __init__(self, i):
            self.prompt_id = i

    items = [P(i) for i in range(40)]
    chosen = [p.prompt_id for p in choose_prompts(items, 16, seed=1)]
    assert len(chosen) == 16 and chosen == sorted(chosen)
    assert chosen == [p.prompt_id for p in choose_prompts(items[::-1], 16, seed=1)]
    assert chosen != [p.prompt_id for p in choose_prompts(items, 16, seed=2)]
    assert [p.prompt_id for p in choose_prompts(items[:5], 16, seed=1)] == list(range(5))


def test_kl_bound_of_best_of_n():
    assert kl_bound(1) == 0
    assert kl_bound(2) == pytest.approx(math.log(2) - 0.5) == pytest.approx(0.193147, abs=1e-6)
    assert kl_bound(4) == pytest.approx(0.636294, abs=1e-6)
    assert kl_bound(16) == pytest.approx(math.log(16) - 15 / 16) == pytest.approx(1.835089, abs=1e-6)
    with pytest.raises(ValueError):
        kl_bound(0)


def test_the_estimator_is_the_exact_mean_over_subsets():
    rng = random.Random(3)
    proxy = [rng.random() for _ in range(7)]
    check = [rng.random() for _ in range(7)]
    for n in range(1, 8):
        assert sum(best_weights(7, n)) == pytest.approx(1)
        subsets = list(itertools.combinations(range(7), n))
        picks = [max(s, key=lambda i: proxy[i]) for s in subsets]
        brute = (sum(proxy[i] for i in picks) / len(picks), sum(check[i] for i in picks) / len(picks))
        assert expected_best(proxy, check, n) == pytest.approx(brute)
    assert expected_best(proxy, None, 1)[0] == pytest.approx(sum(proxy) / 7)
    assert expected_best(proxy, None, 7) == (pytest.approx(max(proxy)), None)


def test_best_of_n_rises_with_n_on_random_rewards():
    rng = random.Random(0)
    for _ in range(20):
        proxy = [[rng.gauss(0, 1) for _ in range(16)] for _ in range(5)]
        check = [[p + rng.gauss(0, 1) for p in row] for row in proxy]
        table = best_of_n_table(proxy, check)
        assert [row["n"] for row in table] == [1, 2, 4, 8, 16]
        values = [row["proxy"] for row in table]
        assert all(b >= a - 1e-12 for a, b in zip(values, values[1:])), values
        assert [row["sqrt_kl"] for row in table] == [math.sqrt(kl_bound(n)) for n in (1, 2, 4, 8, 16)]
        assert table[0]["check"] == pytest.approx(sum(map(sum, check)) / 80)  # n = 1: the mean
    assert best_of_n_table([[0.0, 1.0]], ns=(1, 2))[1]["check"] is None


GOOD = dict(method="grpo", reward="some.module:reward")


@pytest.mark.parametrize("change, field", [
    ({"guard_every": -1}, "guard_every"),
    ({"guard_patience": 0}, "guard_patience"),
    ({"guard_every": 5}, "check_reward"),
    ({"check_reward": "auto", "guard_every": 5, "reward": "auto"}, "check_reward"),
    ({"check_reward": "some.module:reward"}, "check_reward"),
    ({"check_reward": "x:y", "guard_every": 5, "held_out_fraction": 0.0}, "held_out_fraction"),
    ({"method": "dpo", "reward": "", "guard_every": 5}, "guard_every"),
    ({"method": "dpo", "reward": "", "best_of_n": True}, "best_of_n"),
    ({"method": "dpo", "reward": "", "check_reward": "x:y"}, "check_reward"),
])
def test_bad_guard_settings_are_one_line_naming_the_field(change, field):
    with pytest.raises(ValueError) as err:
        PolicyConfig(**{**GOOD, **change})
    assert str(err.value).startswith(field) and "\n" not in str(err.value)


def test_auto_is_a_check_reward():
    config = PolicyConfig(**GOOD, check_reward="auto", guard_every=5)
    assert config.check_reward == "auto"


def test_the_guard_plots_show_only_with_the_guard_on():
    off = POLICY.plots_of(PolicyConfig(**GOOD))
    on = POLICY.plots_of(PolicyConfig(**GOOD, check_reward="x:y", guard_every=5))
    assert off == ONLINE_PLOTS and on == ONLINE_PLOTS + GUARD_PLOTS
    assert [p.title for p in GUARD_PLOTS] == ["Over-optimisation guard", "Guard: KL to the start"]
    assert {m for p in GUARD_PLOTS for m in p.metrics} == {"guard/proxy", "guard/check", "guard/kl",
                                                          "guard/sqrt_kl"}
