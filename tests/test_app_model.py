"""The web app's model and views in-process (the browser test drives the same through a page):
every view at step 0, the month counter at the end of a run, a session that goes away."""

import threading

import pytest

pytest.importorskip("solara")

from analysis import app  # noqa: E402
from market.world import HEADLINE_INSTRUMENT  # noqa: E402

VIEWS = (app.PriceView, app.KeyFigures, app.ShareView, app.NetworkView)


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.__name__)
def test_every_view_renders_at_step_0(view):
    model = app.MarketApp(scenario="baseline")        # as after Reset: no records yet
    assert model.step_index == 0
    view(model)                                         # NetworkView raised TypeError here


def test_a_108_month_run_ends_at_108_of_108_and_takes_no_more_steps():
    model = app.MarketApp(scenario="baseline")
    assert model.status() == "not started: 0 of 108 months"
    for _ in range(200):                                # bounded: the run has 108 months
        if not model.running:
            break
        model.step()
    assert model.steps == model.step_index == 108       # the counter read 109
    assert model.finished and model.status() == "finished: 2030-12, 108 of 108 months"
    month = model.month
    for _ in range(3):                                  # SolaraViz may call again
        model.step()
    assert (model.steps, model.month, model.running) == (108, month, False)
    for view in VIEWS:
        view(model)


def test_months_shortens_the_run():
    model = app.MarketApp(scenario="baseline", months=2)
    model.step()
    assert model.running and model.status() == "running: 2022-01, 1 of 2 months"
    model.step()
    assert not model.running and model.status() == "finished: 2022-02, 2 of 2 months"


def test_a_closed_session_stops_its_run(capsys):
    gone = threading.Event()
    model = app.MarketApp(scenario="baseline", session=gone)
    model.step()
    gone.set()                                          # the page's cleanup does this
    model.step()
    assert (model.steps, model.step_index, model.running) == (1, 1, False)
    assert capsys.readouterr().err == (
        "gpumarket viz: a browser session closed; its run stopped at 1 of 108 months\n")


def test_key_figures_mark_a_price_on_an_input_and_nothing_else():
    """Prices set by trade carry no marker; a price that sits on an input of the scenario
    (here the US spot moved onto the reference price of potential demand this month and
    last) is marked `*` and one line under the table explains it; one that is there this
    month only is passing through and carries none."""
    model = app.MarketApp(scenario="baseline", months=24)
    for _ in range(24):
        model.step()
    step = model.step_index
    prices = {(r, t): p for s, r, t, i, p in model.records["price_index"]
              if s == step and i == HEADLINE_INSTRUMENT[t]}
    assert app._price_marks(model, prices) == {}
    reference = model.scenario.market.reference_price_usd_per_h100e_hour
    def move_us_spot(steps):
        model.records["price_index"] = [
            (s, r, t, i, reference if s in steps and (r, i) == ("US", "spot") else p)
            for s, r, t, i, p in model.records["price_index"]]
    move_us_spot({step})
    prices[("US", "neocloud")] = reference
    assert app._price_marks(model, prices) == {}
    move_us_spot({step - 1, step})
    assert app._price_marks(model, prices) == {("US", "neocloud"): "*"}
    children = app.KeyFigures(model).kwargs["children"]
    table = children[0].kwargs["value"] if "value" in children[0].kwargs \
        else children[0].args[0]
    assert f"{reference:.2f}*" in table
    notes = [c for c in children[1:] if "price input" in str(c.kwargs.get("text", c.args))]
    assert notes, "one line explains the marker"
