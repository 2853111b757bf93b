"""How a lab's demand for GPU-hours depends on their price: pure functions, no model.

A lab wants compute for two things (docs/model.md, "Demand"):

* **Serving.** Its users demand tokens on a constant-elasticity curve in the price per token,
  `tokens = potential x (token price / reference token price)^-elasticity` (the textbook
  iso-elastic demand; e.g. Varian, *Intermediate Microeconomics*, ch. 15). The lab prices a
  token at its compute cost per token times (1 + its serving markup), so the token price moves
  one for one with the GPU-hour price divided by the tokens one H100e-hour yields on the fleet
  it runs on. In GPU-hours the curve is therefore
  `hours(p) = potential_hours / v x (p / (v x p_ref))^-elasticity`, where `v` is the serving
  value of an H100e-hour of the fleet relative to an H100's (the cost core's throughput model:
  memory-bound chips like the H20 serve more tokens per H100e than they train).
* **Training.** It spends its training budget (financing plus the margin serving earned) on
  hours, but never more hours than it could use at the reference price scaled by the same
  iso-elastic curve in the price of its training work:
  `hours(p) = min(budget / p, potential_hours / t x (p / (t x p_ref))^-elasticity)`, with `t`
  the training H100e an hour of the fleet holds (`market.hour_value`: hours are counted in
  market H100e, which weigh a chip's serving and training value by the buyers' use mix).
  Both branches fall with the price, so the curve is downward sloping everywhere.

These are the **long-run** curves: what a lab uses at a price it knew when it planned (a posted
list or contract price). A price it did not expect, a spot price away from the spot price it
planned its models, products and training runs around (`expected_price`, an adaptive
expectation with the memory of its re-planning), it meets along the short-run curve, the
partial-adjustment form (Koyck 1954; Houthakker and Taylor 1970)
`hours(p) = hours_long_run(p_e) x (p / p_e)^-(phi x elasticity)` for serving and for the
hours training would use, with `phi` the short-run share of the elasticity: still
iso-elastic, so it folds into the same constants. The budget bound `budget / p` is not turned
(it rarely binds in the built-in histories: for ~8% of US training demand in the first
month, 0-1% later). Energy demand,
the closest measured case of a capital-embodied input, shows phi of about 0.3-0.4 (short-run
-0.21 against long-run -0.61 in Labandeira, Labeaga and Lopez-Otero 2017's meta-analysis).

On the short-run curve a lab serves at a token price it posted when it planned, (1 + serving
markup) x the price it planned at (`token_price_multiple` x p_e): above it every served hour
loses money, which only the budget can fund, so serving is at most budget / (p - token
price) hours. (Iso-elastic demand with an elasticity below 1 would otherwise spend ever more
as the price rises.)

Quantities and prices are outcomes; the potential demand, the reference price that measures it,
the elasticities, the markup and the financing are inputs (scenario `[market]`, `[labs]`).
Units: H100e-hours per month, USD per H100e-hour, USD per month.
"""

from __future__ import annotations

import numpy as np


def serving_hours(price: np.ndarray, potential_hours: np.ndarray, reference_price: np.ndarray,
                  elasticity: np.ndarray, serving_value: np.ndarray | float = 1.0) -> np.ndarray:
    """H100e-hours of serving a lab buys at GPU-hour price `price` [USD/H100e-h].

    `potential_hours` is what it would buy at `reference_price` on H100-like chips [H100e-h];
    `serving_value` [-] is tokens per H100e-hour of the fleet relative to an H100's. A fleet
    that serves nothing (no chip meets the workload's latency bound: value 0) sells no
    serving hours.
    """
    v = np.asarray(serving_value, float)
    p = np.maximum(np.asarray(price, float), 1e-12)
    serves = v > 0
    v = np.where(serves, v, 1.0)
    return np.where(serves, np.asarray(potential_hours, float) / v
                    * (p / (v * reference_price)) ** -elasticity, 0.0)


def training_hours(price: np.ndarray, potential_hours: np.ndarray, reference_price: np.ndarray,
                   elasticity: np.ndarray, budget_usd: np.ndarray,
                   training_value: np.ndarray | float = 1.0) -> np.ndarray:
    """H100e-hours of training a lab buys at `price` [USD/H100e-h]: its budget [USD] spent at
    that price, at most what it would use at that price on the iso-elastic curve.

    `potential_hours` is in training H100e-hours; `training_value` [-] is the training H100e
    an hour of the fleet holds (1 when hours are counted in training H100e)."""
    t = np.asarray(training_value, float)
    p = np.maximum(np.asarray(price, float), 1e-12)
    wanted = np.asarray(potential_hours, float) / t * (p / (t * reference_price)) ** -elasticity
    return np.minimum(np.maximum(np.asarray(budget_usd, float), 0.0) / p, wanted)


class DemandCurves:
    """Every lab's demand for market GPU-hours this month, as a function of the price it faces.

    One row per (lab, option) pair the caller asks about: `weight` is the share of the lab's
    demand that goes to that option (tier and instrument, `agents.pricing.choose_options`),
    `value` how many neocloud hours an hour of the option is worth to the buyer (the
    hyperscaler premium), and `own_hours` what the lab's own cluster covers first.
    """

    def __init__(self, serve_potential, train_potential, serve_ref, train_ref, serve_eps,
                 train_eps, budget_usd, serving_value, training_value=1.0,
                 short_run_share=1.0, token_price_multiple=np.inf):
        self.serve_potential = np.asarray(serve_potential, float)
        self.train_potential = np.asarray(train_potential, float)
        self.serve_ref = np.asarray(serve_ref, float)
        self.train_ref = np.asarray(train_ref, float)
        self.serve_eps = np.asarray(serve_eps, float)
        self.train_eps = np.asarray(train_eps, float)
        self.budget_usd = np.asarray(budget_usd, float)
        self.serving_value = np.asarray(serving_value, float)
        self.training_value = np.broadcast_to(np.asarray(training_value, float),
                                              self.serving_value.shape)
        self.short_run_share = float(short_run_share)
        self.token_price_multiple = float(token_price_multiple)
        # the iso-elastic terms folded into constants (see `market_demand`)
        v, t = self.serving_value, self.training_value
        # a region whose fleet serves nothing (value 0) sells no serving hours
        serves = v > 0
        v = np.where(serves, v, 1.0)
        self._serve_scale = np.where(
            serves, self.serve_potential / v * (v * self.serve_ref) ** self.serve_eps, 0.0)
        self._train_scale = self.train_potential / t * (t * self.train_ref) ** self.train_eps

    def split(self, price: np.ndarray, rows: np.ndarray | slice = slice(None)):
        """(serving, training) H100e-hours the labs `rows` want at `price` on their long-run
        curves (their whole demand, before option weights and own clusters)."""
        serve = serving_hours(price, self.serve_potential[rows], self.serve_ref[rows],
                              self.serve_eps[rows], self.serving_value[rows])
        train = training_hours(price, self.train_potential[rows], self.train_ref[rows],
                               self.train_eps[rows], self.budget_usd[rows],
                               self.training_value[rows])
        return serve, train

    def total(self, price: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        serve, train = self.split(price, rows)
        return serve + train

    def market_demand(self, rows: np.ndarray, own_hours: np.ndarray,
                      expected_price: np.ndarray | None = None) -> MarketDemand:
        """A fast evaluator of what labs `rows` buy in the market at a log price per row,
        after their own clusters [H100e-h]: `f(log_price) = max(D(p) - own, 0)`. On the
        short-run curve serving is at most budget / (p - `token_price_multiple` x p_e) above
        the token price (module docstring).

        `expected_price` (per row, USD per market H100e-hour): the price the labs planned
        at; `D` is then the short-run curve about it (module docstring). None, or NaN in a
        row: the long-run curve (the price was known when they planned).

        The iso-elastic terms are folded into constants once (serving a p^-e with
        a = potential / v x (v p_ref)^e; training min(B / p, t p^-e) with t = potential / w x
        (w p_ref)^e, w the training value; about p_e the exponents are phi e and the scales
        carry p_e^(phi e - e)), so each evaluation is two exponentials per row (and the
        price's own, once per region with `MarketDemand.at`): the spot clearing calls it a few
        dozen times a month."""
        e_s, e_t = self.serve_eps[rows], self.train_eps[rows]
        a, t = self._serve_scale[rows], self._train_scale[rows]
        if expected_price is not None and self.short_run_share != 1.0:
            pe = np.asarray(expected_price, float)
            planned = np.isfinite(pe) & (pe > 0)
            log_pe = np.log(np.where(planned, pe, 1.0))
            phi = np.where(planned, self.short_run_share, 1.0)
            a = a * np.exp((phi - 1.0) * e_s * log_pe)
            t = t * np.exp((phi - 1.0) * e_t * log_pe)
            e_s, e_t = phi * e_s, phi * e_t
        budget = np.maximum(self.budget_usd[rows], 0.0)
        own = own_hours[rows]
        token = np.full(len(a), np.inf)
        if expected_price is not None and np.isfinite(self.token_price_multiple):
            pe = np.asarray(expected_price, float)
            token = np.where(np.isfinite(pe) & (pe > 0),
                             np.where(pe > 0, pe, 1.0) * self.token_price_multiple, np.inf)
        return MarketDemand(a, t, e_s, e_t, budget, own, token)


class MarketDemand:
    """What some labs buy in the market at a log price per row, after their own clusters
    [H100e-h]: `f(log_price) = max(D(p) - own, 0)`, from the constants
    `DemandCurves.market_demand` folds (serving `serve_scale` x p^-`serve_eps`, training
    min(`budget` / p, `train_scale` x p^-`train_eps`), serving at most budget / (p - `token`)
    above the token price `token` [USD per H100e-hour]; one row each).

    The spot clearing evaluates it a few dozen times a month, so the per-row work is kept to
    the two exponentials of the decay terms: `at` takes the price's own exponential once per
    price group (a region), and `part` evaluates a slice of the rows only."""

    def __init__(self, serve_scale, train_scale, serve_eps, train_eps, budget, own, token):
        self.serve_scale, self.train_scale = serve_scale, train_scale
        self.serve_eps, self.train_eps = serve_eps, train_eps
        self.budget, self.own, self.token = budget, own, token
        # p^-e_t and p^-e_s as one exponential of the log price times these slopes
        self.slopes = np.stack([-train_eps, -serve_eps])
        self.tokens_priced = bool(np.isfinite(token).any())

    def __len__(self) -> int:
        return len(self.budget)

    def take(self, index) -> MarketDemand:
        """The curves of rows `index` (an index or mask array) only."""
        return MarketDemand(*(x[index] for x in (
            self.serve_scale, self.train_scale, self.serve_eps, self.train_eps, self.budget,
            self.own, self.token)))

    def __call__(self, log_price: np.ndarray) -> np.ndarray:
        """Hours each row buys at its log price `log_price` (per row) [H100e-h]."""
        return self._hours(np.exp(log_price), np.exp(self.slopes * log_price), slice(None))

    def at(self, log_price: np.ndarray, group: np.ndarray,
           part: slice = slice(None)) -> np.ndarray:
        """The same as `self(log_price[group])[part]`, each row `i` of the slice `part`
        facing the log price of its group `group[i]` (`log_price` per group; `group` per
        row, all rows): the same numbers, the price's exponential taken once per group."""
        g = group[part]
        return self._hours(np.exp(log_price)[g], np.exp(self.slopes[:, part] * log_price[g]),
                           part)

    def _hours(self, p, decay, part):
        train = np.minimum(self.budget[part] / p, self.train_scale[part] * decay[0])
        serve = self.serve_scale[part] * decay[1]
        if self.tokens_priced:
            loss = p - self.token[part]
            losing = loss > 0
            if losing.any():            # most evaluations: no row serves at a loss
                serve = np.where(losing, np.minimum(
                    serve, self.budget[part] / np.where(losing, loss, 1.0)), serve)
        return np.maximum(serve + train - self.own[part], 0.0)
