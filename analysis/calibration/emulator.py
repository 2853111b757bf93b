"""Gaussian-process emulators: a fast stand-in for the model's error on each observed series.

One emulator per series, fitted to the series' bias (mean log ratio of model to observation,
`analysis.backtest.bias`) at the parameter sets already run, in unit-cube coordinates: a
constant times a Matern 5/2 kernel with one length scale per parameter (automatic relevance),
plus white noise that takes up the seeds' spread (scikit-learn's GaussianProcessRegressor,
Rasmussen and Williams 2006, ch. 2 and 5). The prediction's variance is what the emulator does
not know; history matching adds it to the observation and model errors, so that a region is
ruled out only where the emulator is sure (Vernon, Goldstein and Bower 2010, *Bayesian
Analysis* 5(4)).
"""

from __future__ import annotations

import warnings

import numpy as np

#: Length-scale bounds in unit-cube coordinates: from a twentieth of a prior's range (finer
#: structure than a wave's design resolves) to a hundred ranges (the series ignores it).
LENGTH_SCALE_BOUNDS = (0.05, 100.0)
#: Noise bounds as a share of the output's variance (normalised): the seeds' spread.
NOISE_BOUNDS = (1e-6, 1.0)


class Emulators:
    """A Gaussian process per output column, fitted together on the same points."""

    def __init__(self, random_state: int):
        self.random_state = int(random_state)
        self.models: list = []
        self.constant: list[float | None] = []

    def fit(self, u: np.ndarray, y: np.ndarray) -> "Emulators":
        """Fit to unit-cube points u [n, d] and outputs y [n, m] (NaN-free columns)."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        u, y = np.asarray(u, float), np.asarray(y, float)
        d = u.shape[1]
        self.models, self.constant = [], []
        for j in range(y.shape[1]):
            column = y[:, j]
            if np.ptp(column) < 1e-12:                  # the output never moves
                self.models.append(None)
                self.constant.append(float(column[0]))
                continue
            kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
                length_scale=np.full(d, 0.5), length_scale_bounds=LENGTH_SCALE_BOUNDS,
                nu=2.5) + WhiteKernel(1e-2, NOISE_BOUNDS)
            gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=1,
                                          random_state=self.random_state + j)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                gp.fit(u, column)
            self.models.append(gp)
            self.constant.append(None)
        return self

    def predict(self, u: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance [k, m] of every output's expected value at unit-cube points u
        [k, d] (the emulator's uncertainty about the mean, the seeds' noise left out)."""
        u = np.asarray(u, float)
        mean = np.empty((len(u), len(self.models)))
        var = np.empty_like(mean)
        for j, gp in enumerate(self.models):
            if gp is None:
                mean[:, j], var[:, j] = self.constant[j], 0.0
                continue
            # the prediction's variance includes the fitted white noise (the seeds'
            # scatter), which history matching counts apart (V_seed): take it out
            noise = float(gp.kernel_.k2.noise_level) * float(np.ravel(gp._y_train_std)[0]) ** 2
            for a in range(0, len(u), chunk):
                m, s = gp.predict(u[a:a + chunk], return_std=True)
                mean[a:a + chunk, j] = m
                var[a:a + chunk, j] = np.maximum(s ** 2 - noise, 0.0)
        return mean, var

    def length_scales(self) -> np.ndarray:
        """[m, d] fitted length scales (inf for an output that never moved): short = the
        output depends strongly on that parameter."""
        rows = []
        for gp in self.models:
            if gp is None:
                rows.append(None)
                continue
            rows.append(np.atleast_1d(gp.kernel_.k1.k2.length_scale))
        d = next((len(r) for r in rows if r is not None), 0)
        return np.array([r if r is not None else np.full(d, np.inf) for r in rows])
