"""Best-of-n: the baseline any policy optimisation should beat, on the guard's axes.

Sample ``SAMPLES`` (16) completions per held-out prompt from the starting policy, pick the one
the proxy rates highest among n of them, and report its proxy and check rewards for n = 1, 2, 4,
8, 16, each at the KL bound of best-of-n, ``log n - (n - 1) / n`` (Stiennon et al. 2020; Gao et
al. 2022 plot it against sqrt(KL) as here). Training curves (``guard/proxy``, ``guard/check``
against ``guard/sqrt_kl``) and this table then share one plot: a run whose check reward at some
sqrt(KL) is below best-of-n's at the same sqrt(KL) bought its proxy reward with hacking, or
could have had it by sampling alone.

Estimator (``expected_best``): not resampling but the exact expectation over every n-subset of
the N samples, which is an unbiased estimate of the expected best-of-n with fresh samples. With
the samples sorted by proxy (ascending, rank i = 1..N), the sample of rank i is the best of a
random n-subset with probability C(i-1, n-1) / C(N, n); the expected best proxy (and the
expected check of the proxy's pick) is the sum of the rewards with those weights. No noise is
added by the estimator itself, and for the proxy it is non-decreasing in n by construction. Ties
in the proxy are broken by sample order (the pick is then arbitrary, as in real best-of-n).
"""

from __future__ import annotations

import math

from rmstudio.core.policy import sampling

SAMPLES = 16
NS = (1, 2, 4, 8, 16)


def kl_bound(n: int) -> float:
    """The KL (nats) of best-of-n to the sampling policy is at most ``log n - (n - 1) / n``."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return math.log(n) - (n - 1) / n


def best_weights(total: int, n: int) -> list[float]:
    """P(the sample of rank i, ascending, is the best of a random n-subset of ``total``)."""
    if not 1 <= n <= total:
        raise ValueError(f"n must be between 1 and {total}, got {n}")
    whole = math.comb(total, n)
    return [math.comb(i, n - 1) / whole for i in range(total)]


def expected_best(proxy: list[float], other: list[float] | None, n: int) -> tuple[float, float | None]:
    """(E[best proxy of n], E[``other`` reward of the proxy's pick among n]) over the samples
    of one prompt (see the module docstring)."""
    order = sorted(range(len(proxy)), key=lambda i: proxy[i])
    weights = best_weights(len(proxy), n)
    best = sum(w * proxy[i] for w, i in zip(weights, order))
    if other is None:
        return best, None
    return best, sum(w * other[i] for w, i in zip(weights, order))


def best_of_n_table(proxy: list[list[float]], check: list[list[float]] | None = None,
                    ns: tuple[int, ...] = NS) -> list[dict]:
    """Rows ``{n, kl, sqrt_kl, proxy, check}``: rewards are means over prompts (one list of
    sample rewards per prompt, all of the same length); ``check`` is None without a check."""
    table = []
    for n in ns:
        picks = [expected_best(p, check[k] if check is not None else None, n) for k, p in enumerate(proxy)]
        bound = kl_bound(n)
        table.append({"n": n, "kl": bound, "sqrt_kl": math.sqrt(bound),
                      "proxy": sum(p for p, _ in picks) / len(picks),
                      "check": sum(c for _, c in picks) / len(picks) if check is not None else None})
    return table


def best_of_n(model, tokenizer, rows: list, proxy_fn, check_fn=None, samples: int = SAMPLES,
              ns: tuple[int, ...] = NS, max_new_tokens: int = 64, temperature: float = 1.0,
              seed: int = 0, conversational: bool | None = None) -> list[dict]:
    """Sample ``samples`` completions per prompt row from ``model`` (the starting policy: see
    ``sampling.start_policy``), score them with ``proxy_fn`` (and ``check_fn``, TRL reward
    functions), and return ``best_of_n_table`` of them. A standalone entry for a window or a
    benchmark as much as the end of a run."""
    if not rows:
        raise ValueError("best-of-n needs at least one prompt")
    if conversational is None:
        conversational = isinstance(rows[0], list)
    repeated = [row for row in rows for _ in range(samples)]
    drawn = sampling.sample(model, tokenizer, repeated, max_new_tokens, temperature, seed)

    def by_prompt(values: list[float]) -> list[list[float]]:
        return [values[k * samples:(k + 1) * samples] for k in range(len(rows))]

    proxy = by_prompt(sampling.rewards(proxy_fn, drawn, conversational))
    check = by_prompt(sampling.rewards(check_fn, drawn, conversational)) if check_fn is not None else None
    return best_of_n_table(proxy, check, tuple(n for n in ns if n <= samples))
