"""A calibration on disk: its directory, its waves as resumable batches, and its outputs.

    DIR/calibration.json   identity (version, scenario and data hashes, method, budget, seeds),
                           status, and at the end the results (loss before and after, ...)
    DIR/wave-N/            wave N's runs: a batch directory (`analysis.runner.Batch`) whose run
                           files hold each run's values at the in-sample observations
    DIR/check/             the runs of the calibrated point and of posterior draws
    DIR/evaluations.parquet  every parameter set run: wave, values, loss, ruled out or not
    DIR/posterior.parquet  the posterior sample (values per parameter)
    DIR/calibrated.toml    the overlay: `extends` the input, sets the point estimates
    DIR/input.toml         the input scenario as resolved, when it is not a built-in one
    DIR/report.html        fit per series before and after, posterior against prior

Every design is a function of the root seed and of the runs before it, so a rerun of the same
command rebuilds the same designs, finds their finished runs and runs only the missing ones: a
kill (even SIGKILL) loses at most the runs in flight, and no run is done twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.calibration.history_matching import (
    MODEL_DISCREPANCY_SIGMA, Wave, candidates, choose, not_ruled_out, observation_variance)
from analysis.calibration.observe import Fit, fit_of, in_sample, observe
from analysis.calibration.posterior import MOST_CANDIDATES_LOG2, sample_posterior
from analysis.calibration.space import ParameterSpace
from analysis.runner import Batch, Task, _parquet_bytes, _take_lock, _write_json, run_batch
from market.errors import GpumarketError
from market.files import os_reason, write_durable

MANIFEST = "calibration.json"
LOCK = "calibration.lock"
#: Sobol' candidates (2^k) a wave picks its design from.
DESIGN_CANDIDATES_LOG2 = 14
#: Parameter sets Optuna asks for at a time (a batch; fixed, so results do not depend on the
#: number of workers), and the share of the best it keeps as its sample.
OPTUNA_ROUND, OPTUNA_ACCEPT = 10, 0.1


@dataclass(frozen=True)
class Settings:
    method: str
    budget: int                 #: parameter sets run in all (waves + check)
    seeds: int                  #: runs per parameter set: seeds 1..seeds (the backtest's)
    waves: int
    root_seed: int
    until: str
    posterior_draws: int = 1000
    discrepancy_sigma: float = MODEL_DISCREPANCY_SIGMA

    def check_sets(self) -> int:
        """Parameter sets of the check: the calibrated point and posterior draws."""
        return 1 + max(2, min(16, self.budget // 10))

    def wave_sizes(self) -> list[int]:
        left = self.budget - self.check_sets()
        base = left // self.waves
        return [base + (left - base * self.waves)] + [base] * (self.waves - 1)


def stream(root_seed: int, purpose: int, number: int = 0) -> list[int]:
    """Entropy of one random stream: the root seed, what it is for and its number (a wave),
    so that no two streams of one calibration, or of two root seeds, coincide."""
    return [int(root_seed), int(purpose), int(number)]


#: Purposes of the random streams (`stream`).
DESIGN, EMULATOR, POSTERIOR, OPTUNA_PICK = 0xD351, 0xE30, 0x9057, 0x0B7A


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Calibration:
    """Runs a calibration in `directory` (created, or resumed when it holds the same one)."""

    def __init__(self, directory: Path, loaded, settings: Settings, months: int, version: str,
                 observed: pd.DataFrame | None = None, observed_seeds: int = 0):
        self.dir = Path(directory)
        self.loaded = loaded
        self.scenario = loaded.scenario
        self.settings = settings
        self.months = months
        self.space = ParameterSpace.of(self.scenario)
        # the observations scored against: the shipped ones to --until, or synthetic ones on
        # the same periods (parameter recovery); the runs are aligned on the shipped periods
        self.observed = in_sample(settings.until) if observed is None else observed
        self.observed_seeds = observed_seeds      #: runs behind synthetic observations
        self.identity = {
            "kind": "calibration", "gpumarket_version": version,
            "scenario": self.scenario.name, "scenario_source": loaded.source,
            "scenario_sha256": loaded.sha256,
            "data_sha256": hashlib.sha256(self.observed.to_csv(index=False).encode()
                                          ).hexdigest(),
            "parameters": self.space.describe(), "months": months, **asdict(settings)}
        self.scenario_json = json.dumps(self.scenario.model_dump(mode="json"))
        self._lock_fd: int | None = None
        self.created = False           #: this session created the directory

    # -- the directory -----------------------------------------------------------------
    def open(self) -> None:
        """Create the directory or check it holds this calibration; lock it. Refuses, with
        one line and before writing anything: a place that cannot be written, a directory
        gpumarket did not write, one of another calibration (or gpumarket version)."""
        try:
            self._open()
        except OSError as exc:
            self.close()
            raise GpumarketError(f"{self.dir}: cannot write the calibration directory "
                                 f"({os_reason(exc)})") from None

    def _open(self) -> None:
        manifest = self.dir / MANIFEST
        if not self.dir.exists():
            if not self.dir.parent.is_dir():
                raise GpumarketError(f"{self.dir}: cannot create the calibration directory "
                                     f"({self.dir.parent} does not exist)")
            self.dir.mkdir()
            self.created = True
        elif not self.dir.is_dir():
            raise GpumarketError(f"{self.dir}: exists and is not a directory")
        elif not manifest.exists() and any(p.name != LOCK and not p.name.endswith(".tmp")
                                           for p in self.dir.iterdir()):
            raise GpumarketError(f"{self.dir}: not empty and not a gpumarket calibration (no "
                                 f"{MANIFEST}); choose another --out")
        self._lock_fd = _take_lock(self.dir / LOCK, self.dir)
        for stale in self.dir.glob(f"{MANIFEST}.*.tmp"):     # a kill while it was written
            stale.unlink()
        if manifest.exists():
            try:
                old = json.loads(manifest.read_text())
                assert isinstance(old, dict)
            except (ValueError, AssertionError, UnicodeDecodeError):
                self.close()
                raise GpumarketError(f"{manifest}: unreadable (not the JSON gpumarket "
                                     "writes); use another --out") from None
            for key in ("kind", "gpumarket_version", "scenario_sha256", "data_sha256",
                        "parameters", "months", "method", "budget", "seeds", "waves",
                        "root_seed", "until", "posterior_draws", "discrepancy_sigma"):
                if old.get(key) != self.identity.get(key):
                    self.close()
                    raise GpumarketError(
                        f"{self.dir}: holds a calibration with another {key.replace('_', ' ')}"
                        f" ({old.get(key)!s:.40} vs {self.identity.get(key)!s:.40}); use "
                        "another --out or the same command")
        else:
            _write_json(manifest, dict(self.identity, status="running"))

    def abandon(self) -> None:
        """Remove a directory this session created and ran nothing in (the executor could
        not start), then release the lock."""
        if self.created and not any(self.dir.glob("wave-*")) \
                and not any(self.dir.glob("round-*")):
            shutil.rmtree(self.dir, ignore_errors=True)
        self.close()

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- running parameter sets ----------------------------------------------------------
    def evaluate(self, name: str, values: np.ndarray, executor, progress=None) -> list[Fit]:
        """Run each parameter set (rows of `values`) with seeds 1..seeds as the batch
        DIR/`name` (resumed if it exists) and return their fits (None where a run failed)."""
        seeds = tuple(range(1, self.settings.seeds + 1))
        return [None if runs is None else fit_of(self.observed, runs)
                for runs in self.runs_at(name, values, executor, seeds, progress)]

    def runs_at(self, name: str, values: np.ndarray, executor, seeds: tuple[int, ...],
                progress=None) -> list[list[pd.DataFrame] | None]:
        """Each parameter set's run files (one frame per seed), run as the batch DIR/`name`
        (resumed if it exists); None for a set with a failed run."""
        k = len(seeds)
        params = [self.space.params(row) for row in values]
        tasks = [Task(i * k + j, seed, p, self.months, self.scenario_json, None)
                 for i, p in enumerate(params) for j, seed in enumerate(seeds)]
        batch = Batch(self.dir / name)
        identity = {"kind": "calibration-runs", "gpumarket_version":
                    self.identity["gpumarket_version"], "scenario": self.scenario.name,
                    "scenario_sha256": self.identity["scenario_sha256"], "months": self.months,
                    "design": {"name": name, "sets": len(params), "seeds": list(seeds),
                               "design_sha": _digest(params)}}
        rows = pd.DataFrame([{"run_id": t.run_id, "seed": t.seed,
                              **{f"param.{p}": v for p, v in t.params.items()}} for t in tasks])
        batch.open(identity, rows, allow_version_change=False)
        try:
            where = str(batch.dir.resolve()) if executor.shares_filesystem else None
            tasks = [Task(t.run_id, t.seed, t.params, t.months, t.scenario_json, where)
                     for t in tasks]
            batch.verify()
            # a failed run stays failed: rerunning it on resume could change what the later
            # waves were built from (the designs are functions of the results)
            failed = {r for r, st in batch.statuses().items() if st.get("status") == "failed"}
            run_batch(batch, [t for t in tasks if t.run_id not in failed], executor, progress,
                      fn=observe)
            batch.finish(len(tasks), 0.0, f"{executor.name} x{executor.workers}")
            done = batch.finished()
            out = []
            for i in range(len(params)):
                ids = [i * k + j for j in range(k)]
                out.append([pd.read_parquet(batch.run_path(r)) for r in ids]
                           if all(r in done for r in ids) else None)
            return out
        finally:
            batch.close()

    # -- the method ---------------------------------------------------------------------
    def run(self, executor, progress=None, say=lambda text: None) -> dict:
        """The settings' method, then the check runs and the outputs."""
        if self.settings.method == "optuna":
            return self.run_optuna(executor, progress, say)
        return self.run_history_matching(executor, progress, say)

    def run_history_matching(self, executor, progress=None, say=lambda text: None) -> dict:
        """History matching in waves, a posterior sample, the check runs, the outputs."""
        s = self.settings
        d = self.space.dim
        reference = self._reference_values()
        waves: list[Wave] = []
        rows: list[dict] = []
        series = None
        for number, size in enumerate(s.wave_sizes(), start=1):
            if number == 1:
                cloud = candidates(d, DESIGN_CANDIDATES_LOG2, stream(s.root_seed, DESIGN, 1))
                u = np.vstack([self.space.unit(reference),
                               choose(cloud, size - 1, stream(s.root_seed, DESIGN, 1))])
            else:
                left = _region_points(waves, d, size, stream(s.root_seed, DESIGN, number))
                if len(left) == 0:
                    say(f"wave {number}: nothing is left to run (every candidate is ruled "
                        "out); the waves stop")
                    break
                u = choose(left, size, stream(s.root_seed, DESIGN, number))
            fits = self.evaluate(f"wave-{number}", self.space.values(u), executor, progress)
            if number == 1:
                if fits[0] is None:
                    raise GpumarketError(f"{self.dir / 'wave-1'}: the input scenario's own run "
                                         "failed (its error is in runs.jsonl)")
                reference_fit = fits[0]
            good = [i for i, f in enumerate(fits) if f is not None]
            if series is None:
                series = sorted(set.intersection(*[set(fits[i].scores["series"])
                                                   for i in good]))
                var_fixed = observation_variance(self.observed, series) \
                    + s.discrepancy_sigma ** 2 + self._seed_variance(fits, good, series)
            bias = np.array([fits[i].scores.set_index("series")["bias"].reindex(series)
                             .to_numpy(float) for i in good])
            if not good:
                say(f"wave {number}: every run failed (errors in {self.dir}/wave-{number}/"
                    "runs.jsonl); the waves stop")
                break
            wave = Wave(number, u[good], bias, series, var_fixed).fit(
                int(np.random.SeedSequence(stream(s.root_seed, EMULATOR, number))
                    .generate_state(1)[0] >> 1))
            waves.append(wave)
            values = self.space.values(u)
            for i, fit in enumerate(fits):
                rows.append({"wave": number, "set": i,
                             "loss": np.nan if fit is None else fit.loss,
                             **self.space.params(values[i])})
            say(f"wave {number}: {len(good)} parameter sets run, best loss "
                f"{np.nanmin([r['loss'] for r in rows]):.3f}, {len(wave.set_aside())} of "
                f"{len(series)} series set aside as misfits")
        post = sample_posterior(waves, d, s.posterior_draws, stream(s.root_seed, POSTERIOR))
        return self._check_and_write(waves, rows, post, reference_fit, executor, progress)

    def run_optuna(self, executor, progress=None, say=lambda text: None) -> dict:
        """Optuna's TPE sampler in rounds of `OPTUNA_ROUND` parameter sets (ask, run as a
        batch, tell: a rerun replays the told losses, so it asks the same points), the input
        first; the sample is an ABC rejection sample of what it ran, the sets whose loss is
        within the best `OPTUNA_ACCEPT` share, resampled with equal weights (TPE searches,
        it does not sample a posterior, so this is a rough stand-in for one)."""
        import optuna

        from analysis.calibration.posterior import Posterior

        s = self.settings
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(seed=s.root_seed, multivariate=True,
                                             n_startup_trials=min(2 * self.space.dim + 2,
                                                                  sum(s.wave_sizes()) // 2))
        study = optuna.create_study(direction="minimize", sampler=sampler)
        box = {f"u{j}": optuna.distributions.FloatDistribution(0.0, 1.0 - 1e-12)
               for j in range(self.space.dim)}
        study.enqueue_trial({f"u{j}": float(v) for j, v in
                             enumerate(self.space.unit(self._reference_values())[0])})
        left, number, rows, reference_fit, us = sum(s.wave_sizes()), 0, [], None, []
        while left > 0:
            number += 1
            trials = [study.ask(box) for _ in range(min(OPTUNA_ROUND, left))]
            u = np.array([[t.params[f"u{j}"] for j in range(self.space.dim)] for t in trials])
            fits = self.evaluate(f"round-{number}", self.space.values(u), executor, progress)
            if number == 1:
                reference_fit = fits[0]
            values = self.space.values(u)
            for i, (trial, fit) in enumerate(zip(trials, fits)):
                if fit is None:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    study.tell(trial, fit.loss)
                rows.append({"wave": number, "set": i, "loss": np.nan if fit is None
                             else fit.loss, **self.space.params(values[i])})
                us.append(u[i])
            left -= len(trials)
        say(f"optuna: {len(rows)} parameter sets run in {number} rounds, best loss "
            f"{np.nanmin([r['loss'] for r in rows]):.3f}")
        if reference_fit is None:
            raise GpumarketError(f"{self.dir / 'round-1'}: the input scenario's own run failed "
                                 "(its error is in runs.jsonl)")
        loss = np.array([r["loss"] for r in rows])
        ok = np.isfinite(loss)
        accept = ok & (loss <= np.quantile(loss[ok], OPTUNA_ACCEPT))
        pick = np.random.default_rng(stream(s.root_seed, OPTUNA_PICK)).choice(
            np.flatnonzero(accept), size=s.posterior_draws, replace=True)
        post = Posterior(np.array(us)[pick], float(accept.sum()), float(accept.mean()),
                         int(accept.sum()))
        return self._check_and_write([], rows, post, reference_fit, executor, progress)

    def _check_and_write(self, waves, rows, post, reference_fit, executor, progress) -> dict:
        """Run the calibrated point (the posterior medians) and a few posterior draws with
        the same seeds, and write the outputs."""
        s = self.settings
        draws = self.space.values(post.u)
        point = np.median(draws, axis=0)
        check_values = np.vstack([point[None, :],
                                  self.space.values(_distinct(post.u, s.check_sets() - 1))])
        check = self.evaluate("check", check_values, executor, progress)
        if check[0] is None:
            raise GpumarketError(f"{self.dir / 'check'}: the calibrated point's run failed "
                                 "(its error is in runs.jsonl)")
        try:
            return self._write(waves, rows, post, draws, point, check, reference_fit)
        except OSError as exc:
            raise GpumarketError(f"{self.dir}: cannot write the outputs ({os_reason(exc)}); "
                                 "free space and rerun the same command") from None

    def _seed_variance(self, fits: list[Fit], good: list[int], series: list[str]
                       ) -> np.ndarray:
        """[m] the variance of a series' bias that comes from the seeds alone: each set's
        variance over its seeds (wave 1, averaged over its sets), over the seeds a set is
        scored with (the median of K seeds varies about 1/K as much as one), plus, for
        synthetic observations made from `observed_seeds` runs, their own share (the
        "ensemble variability" term of Andrianakis et al. 2015). 0 with one seed: the
        seeds' spread is then unknown, and only the emulators' noise takes it up."""
        per_set = pd.concat([fits[i].seed_variance.reindex(series) for i in good], axis=1)
        variance = per_set.mean(axis=1).fillna(0.0).to_numpy(float)
        share = 1.0 / self.settings.seeds + (1.0 / self.observed_seeds
                                             if self.observed_seeds else 0.0)
        return variance * share

    def _reference_values(self) -> np.ndarray:
        """[1, d] the input scenario's own values of the calibrated parameters."""
        data = self.scenario.model_dump(mode="json")
        out = []
        for path in self.space.paths:
            node = data
            for key in path.split("."):
                node = node[int(key)] if isinstance(node, list) else node[key]
            out.append(float(node))
        return np.array([out])

    # -- outputs ---------------------------------------------------------------------------
    def _write(self, waves: list[Wave], rows: list[dict], post, draws: np.ndarray,
               point: np.ndarray, check: list, before: Fit) -> dict:
        from analysis.calibration.report import parameter_table, series_table, write_report

        after = check[0]
        evaluations = pd.DataFrame(rows)
        unit = self.space.unit(evaluations[list(self.space.paths)].to_numpy(float))
        evaluations["in_final_region"] = not_ruled_out(waves, unit)
        posterior = pd.DataFrame(draws, columns=list(self.space.paths))
        params = parameter_table(self.space, posterior, point)
        fits = series_table(before, after, [f for f in check[1:] if f is not None])
        write_durable(self.dir / "evaluations.parquet", _parquet_bytes(evaluations))
        write_durable(self.dir / "posterior.parquet", _parquet_bytes(posterior))
        write_durable(self.dir / "parameters.csv", params.to_csv(index=False).encode())
        write_durable(self.dir / "fit_by_series.csv", fits.to_csv(index=False).encode())
        overlay = self._overlay(point)
        results = {
            "status": "done",
            "loss_before": before.loss, "loss_after": after.loss,
            "persistence_before": before.overall.get("score_persistence"),
            "trend_before": before.overall.get("score_trend"),
            "model_where_persistence_after": after.overall.get("score_model_where_persistence"),
            "score_persistence": after.overall.get("score_persistence"),
            "model_where_trend_after": after.overall.get("score_model_where_trend"),
            "score_trend": after.overall.get("score_trend"),
            "series_better_after": int((fits["male_after"] < fits["male_before"]).sum()),
            "series_scored": int(len(fits)),
            "parameter_sets_run": int(len(rows) + len(check)),
            "model_runs": int((len(rows) + len(check)) * self.settings.seeds),
            "region_share_left": post.region_share, "posterior_ess": post.weights_ess,
            "posterior_distinct_draws": int(len(np.unique(post.u, axis=0))),
            "set_aside_series": sorted(set().union(*[w.set_aside() for w in waves])),
            "waves_run": len(waves),
            "point_estimate": self.space.params(point), "overlay": overlay.name}
        manifest = dict(self.identity, **results)
        write_report(self.dir / "report.html", manifest, params, fits, evaluations, before,
                     after, [f for f in check[1:] if f is not None])
        _write_json(self.dir / MANIFEST, manifest)
        return manifest

    def _overlay(self, point: np.ndarray) -> Path:
        """DIR/calibrated.toml: extends the input (a built-in name, or DIR/input.toml holding
        the resolved input) and sets each parameter's point estimate."""
        import tomli_w

        from scenarios.loader import builtin_names

        from scenarios.loader import load_scenario

        source = self.loaded.source
        if Path(source).stem in builtin_names() and Path(source).parent.samefile(
                _builtin_dir()) and load_scenario(Path(source).stem).sha256 == \
                self.loaded.sha256:     # a built-in scenario without --set overrides
            base = Path(source).stem
        else:
            data = {k: v for k, v in self.loaded.resolved.items() if k != "extends"}
            write_durable(self.dir / "input.toml", tomli_w.dumps(data).encode())
            base = "input.toml"
        overlay: dict = {"name": f"{self.scenario.name}-calibrated",
                         "description": f"{self.scenario.name} with its [calibrate] parameters"
                                        f" at the posterior medians of gpumarket calibrate "
                                        f"(until {self.settings.until})",
                         "extends": base}
        for path, value in self.space.params(point).items():
            _set_nested(overlay, path, value)
        text = ("# Written by gpumarket calibrate; the posterior is in posterior.parquet and "
                "calibration.json.\n" + tomli_w.dumps(overlay))
        target = self.dir / "calibrated.toml"
        write_durable(target, text.encode())
        return target


def _builtin_dir() -> Path:
    from scenarios.loader import builtin_dir

    return builtin_dir()


def _set_nested(data: dict, path: str, value) -> None:
    node = data
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def _region_points(waves: list[Wave], dim: int, wanted: int, seed: int) -> np.ndarray:
    """Sobol' candidates not ruled out by the waves: 2^14 first, doubling up to 2^18 while
    fewer than `wanted` are left (a region shrinks by orders of magnitude in a few waves)."""
    for k in range(DESIGN_CANDIDATES_LOG2, MOST_CANDIDATES_LOG2 + 1):
        cloud = candidates(dim, k, seed)
        left = cloud[not_ruled_out(waves, cloud)]
        if len(left) >= wanted:
            break
    return left


def _distinct(u: np.ndarray, n: int) -> np.ndarray:
    """The first n distinct rows of a resampled sample (all of them when fewer)."""
    _, first = np.unique(u, axis=0, return_index=True)
    return u[np.sort(first)[:n]]




