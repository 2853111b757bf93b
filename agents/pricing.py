"""Price institutions of the GPU-hour market: pure functions, no model (docs/model.md, "Prices").

* Hyperscalers **post list prices** and revise them only when the gap to the price they aim at
  passes a threshold (a menu cost: Sheshinski and Weiss 1977, *Rev. Econ. Stud.* 44(2); Barro
  1972), so the list moves in discrete steps. They also sell one-year **committed-use** terms
  at a discount to list.
* Neoclouds sell **spot** hours each month at the price that clears their capacity
  (`market.clearing.clear_spot`), and one-year **contracts**: they commit a share of their
  capacity at no less than a forward price that follows the spot price they expect (adaptive
  expectations: Cagan 1956, Nerlove 1958), and where buyers ask for more than that share the
  contract price rises until the asks fit it (`market.gpu_hours.clear_contracts`).
* Buyers split their demand over these options by a **logit** in the effective cost of each
  (McFadden 1974) with a **switching cost** for leaving the option they used last month, so
  shares move smoothly rather than all at once (Klemperer 1995, *Rev. Econ. Stud.* 62(4)).

Units: USD per H100e-hour; shares in [0, 1].
"""

from __future__ import annotations

import numpy as np

#: The buyer's options in their column order: (tier, instrument).
OPTIONS = (("hyperscaler", "list"), ("hyperscaler", "contract"), ("neocloud", "contract"),
           ("neocloud", "spot"), ("remote", "spot"))
LIST, HYPER_CONTRACT, NEO_CONTRACT, SPOT, REMOTE = range(len(OPTIONS))
#: Instruments and the tier whose clouds sell them, per option.
OPTION_TIER = np.array([0, 0, 1, 1, 1])   # index into market.world.TIERS


def adapt_expectation(expected: np.ndarray, observed: np.ndarray,
                      memory_months: float) -> np.ndarray:
    """Adaptive expectation: move 1/memory of the way to what was observed [same unit].

    A memory of m months weighs the last observation 1/m (an exponential average with mean
    age m); NaN observations (no trade) leave the expectation where it was.
    """
    e, o = np.asarray(expected, float), np.asarray(observed, float)
    step = 1.0 / max(float(memory_months), 1.0)
    new = e + step * (o - e)
    return np.where(np.isnan(o), e, np.where(np.isnan(e), o, new))


def revise_list_price(list_price: np.ndarray, target: np.ndarray,
                      threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Menu-cost revision: a list price jumps to its target only when they differ by more than
    `threshold` (a fraction of the list) [USD/H100e-h]. Returns (new list, revised?)."""
    lp, tg = np.asarray(list_price, float), np.asarray(target, float)
    revise = np.isnan(lp) | (np.abs(tg / np.where(lp > 0, lp, np.nan) - 1.0) > threshold)
    revise &= ~np.isnan(tg)
    return np.where(revise, tg, lp), revise


def list_target(owned_cost: np.ndarray, margin: np.ndarray) -> np.ndarray:
    """The list price a hyperscaler aims at: full owned cost of its fleet's H100e-hour times
    (1 + its markup) [USD/H100e-h]."""
    return np.asarray(owned_cost, float) * (1.0 + np.asarray(margin, float))


def forward_price(expected_spot: np.ndarray, term_premium: float) -> np.ndarray:
    """The lowest price a neocloud signs a one-year contract at (its reservation price): the
    spot price expected over its term times (1 + the term premium; negative: a discount for
    the commitment) [USD/H100e-h]."""
    return np.asarray(expected_spot, float) * (1.0 + term_premium)


def choose_options(shares: np.ndarray, cost: np.ndarray, available: np.ndarray,
                   price_sensitivity: float, switching_cost: float,
                   group: np.ndarray | None = None, revision_share: float = 1.0) -> np.ndarray:
    """Next month's shares of each buyer's demand over the options [-], rows summing to 1.

    A share `revision_share` of each buyer's demand is reconsidered this month (budget
    cycles, contract renewals: a Calvo-style revision probability, Calvo 1983); the rest
    stays where it is, except demand in options that closed. Reconsidered demand in option k
    moves to option j with the logit probability
    `exp(-b ln c_j - s [j != k]) / sum_l exp(-b ln c_l - s [l != k])` over the available options,
    where c is the effective cost of an hour (price / how much the buyer values the tier),
    b the price sensitivity and s the switching cost in utility units. Shares in options no
    longer available are re-chosen as if from nowhere (no switching cost).

    shares: (n, options). cost [USD/H100e-h], NaN where unavailable, and available: (n,
    options), or, with `group` (n,), one row per group of buyers who see the same costs (a
    region): the logit weights are then computed once per group.
    """
    w_all = np.asarray(shares, float)
    c = np.where(available, cost, np.nan)
    util = np.where(available, -price_sensitivity * np.log(np.maximum(c, 1e-9)), -np.inf)
    best = np.max(np.where(available, util, -np.inf), axis=1, keepdims=True)
    util = np.where(available, util - np.where(np.isfinite(best), best, 0.0), -np.inf)
    stay = np.exp(util)                                  # (rows, j) weight of option j
    move = stay * np.exp(-switching_cost)
    fresh = stay / np.maximum(stay.sum(axis=1, keepdims=True), 1e-300)
    # from option k: P(j|k) = (move_j + [j == k] (stay_j - move_j)) / (sum_l move_l + stay_k - move_k)
    denom = move.sum(axis=1, keepdims=True) + stay - move               # (rows, k)
    if group is not None:
        available, stay, move, fresh, denom = (a[group] for a in
                                               (available, stay, move, fresh, denom))
    w = np.where(available, w_all, 0.0)
    orphan = np.maximum(1.0 - w.sum(axis=1), 0.0)                      # share in closed options
    from_k = np.divide(w, denom, out=np.zeros_like(w), where=denom > 0)   # (n, k)
    new = move * from_k.sum(axis=1, keepdims=True) + (stay - move) * from_k
    new = revision_share * new + (1.0 - revision_share) * w + orphan[:, None] * fresh
    total = new.sum(axis=1, keepdims=True)
    return np.divide(new, total, out=np.zeros_like(new), where=total > 0)
