"""Experiment designs: distributions, Latin hypercube strata, levers, seeds."""

import numpy as np
import pytest

from analysis.design import make_design, run_seeds, sample_uncertainties
from scenarios.loader import load_scenario
from scenarios.schema import Distribution


def dist(**kw):
    return Distribution(rationale="test", **kw)


def test_run_seeds_come_from_seed_sequence_spawn():
    children = np.random.SeedSequence(42).spawn(5)
    expected = [int(c.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for c in children]
    assert run_seeds(42, 5) == expected
    assert run_seeds(42, 3) == expected[:3]          # run k does not depend on the batch size


@pytest.mark.parametrize("method", ["mc", "lhs"])
def test_samples_respect_bounds_and_shapes(method):
    unc = {"a": dist(dist="uniform", low=2.0, high=3.0),
           "b": dist(dist="triangular", low=0.0, mode=1.0, high=4.0),
           "c": dist(dist="normal", mean=0.0, sigma=1.0, low=-0.5, high=0.5),
           "d": dist(dist="lognormal", mean=2.0, sigma=0.3, high=2.5),
           "e": dist(dist="choice", values=["x", "y", "z"])}
    s = sample_uncertainties(unc, 300, method, 1)
    assert all(len(v) == 300 for v in s.values())
    assert 2.0 <= min(s["a"]) and max(s["a"]) <= 3.0
    assert 0.0 <= min(s["b"]) and max(s["b"]) <= 4.0
    assert -0.5 <= min(s["c"]) and max(s["c"]) <= 0.5
    assert 0 < min(s["d"]) and max(s["d"]) <= 2.5 and np.median(s["d"]) < 2.2
    assert set(s["e"]) == {"x", "y", "z"}
    assert s == sample_uncertainties(unc, 300, method, 1)
    assert s != sample_uncertainties(unc, 300, method, 2)


def test_latin_hypercube_has_one_draw_per_stratum():
    n = 50
    s = sample_uncertainties({"a": dist(dist="uniform", low=0.0, high=1.0),
                              "b": dist(dist="uniform", low=10.0, high=20.0)}, n, "lhs", 3)
    assert sorted(np.floor(np.array(s["a"]) * n).astype(int)) == list(range(n))
    assert sorted(np.floor((np.array(s["b"]) - 10) / 10 * n).astype(int)) == list(range(n))


def test_levers_cross_samples_with_common_random_numbers():
    scenario = load_scenario("baseline").scenario
    d = make_design(scenario, 4, "mc", 9, {"leakage.enforcement": [0.2, 0.8]})
    assert len(d.runs) == 8 and [r.run_id for r in d.runs] == list(range(8))
    first, second = d.runs[:4], d.runs[4:]
    assert [r.seed for r in first] == [r.seed for r in second] == run_seeds(9, 4)
    assert {r.params["leakage.enforcement"] for r in first} == {0.2}
    for a, b in zip(first, second):
        assert {k: v for k, v in a.params.items() if k != "leakage.enforcement"} == \
            {k: v for k, v in b.params.items() if k != "leakage.enforcement"}
    assert d.describe()["runs"] == 8


def test_builtin_scenarios_carry_uncertain_inputs_with_rationales():
    for name in ("baseline", "history", "taiwan-shock-2027", "huawei-ramp-fast"):
        unc = load_scenario(name).scenario.uncertain
        assert len(unc) >= 8, name
        assert all(d.rationale.strip() for d in unc.values())
