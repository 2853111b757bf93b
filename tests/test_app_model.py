"""The web app in-process (the browser test drives the same through a page): levers that leave
the scenario alone at their defaults and name themselves in errors, every tab at step 0 and
at the end, the reference run, the key figures' differences, the events' markers, the trade
network's flows, run to end, and a session that goes away."""

import threading

import pandas as pd
import pytest

solara = pytest.importorskip("solara")

from analysis.webapp import charts, frames, levers, views  # noqa: E402
from analysis.webapp.run import MarketApp, reference_for  # noqa: E402
from scenarios.loader import load_scenario  # noqa: E402

TABS = (*views.TABS, views.KeyFigures)


def render(view, model):
    _box, rc = solara.render(view(model), handle_error=False)
    rc.close()


@pytest.fixture(scope="module")
def shocked():
    """baseline with a CoWoS shock from 2024-01 (x0.3, 12 months), run to its last month,
    2024-12 (after it, the chips ordered at its prices arrive and spot falls below the
    reference's)."""
    model = MarketApp("baseline", shock_start="2024-01", shock_depth=0.3, shock_months=12)
    model.run_to(36)
    return model


@pytest.mark.parametrize("view", TABS, ids=lambda v: v.__name__)
def test_every_tab_renders_at_step_0_and_after_the_last_month(view):
    model = MarketApp("baseline", months=3)
    render(view, model)                                 # no records yet
    model.run_to(3)
    assert model.finished
    render(view, model)


def test_levers_at_their_defaults_leave_the_scenario_as_it_is():
    """The sliders start at the scenario's own values: 0.5.0's demand-growth lever started at
    0.3 and so changed baseline's 0.48 for everyone who opened the page."""
    for name in ("baseline", "history", "taiwan-shock-2027"):
        model = MarketApp(name)
        assert model.error is None and model.changed_levers == {}
        assert model.scenario.model_dump() == load_scenario(name).scenario.model_dump()


def test_each_lever_changes_the_scenario_where_it_says():
    base = levers.scenario_data("baseline")
    d = levers.defaults("baseline")

    def applied(**moved):
        return levers.apply(base, {**d, **moved})[0]

    kinds = [e["kind"] for e in applied(export_regime="no controls")["events"]]
    assert "export_control" not in kinds
    assert {"kind": "export_control", "date": "2025-05", "rule": "diffusion2025",
            "note": "app lever: diffusion rule kept"} in applied(
        export_regime="diffusion rule kept (May 2025)")["events"]
    closed = applied(remote_access="closed to China's labs from 2026-01")
    assert closed["rules"]["iaas-closed-app"]["effective"] == "2026-01"
    assert applied(enforcement=0.9)["leakage"]["enforcement"] == 0.9
    shock = applied(shock_start="2027-01", shock_depth=0.3, shock_months=12)["events"][-1]
    assert (shock["kind"], shock["date"], shock["factor"], shock["months"]) == (
        "foundry_shock", "2027-01", 0.3, 12)
    grown = applied(demand_growth=0.8)["market"]["demand_index"]["growth_after_per_year"]
    assert grown == 0.8
    ramp = applied(huawei_ramp=2.0)["foundries"]["smic"]["capacity_wafers_per_month"]["points"]
    old = base["foundries"]["smic"]["capacity_wafers_per_month"]["points"]
    assert all(ramp[k] == (2 * v if k >= "2024-01" else v) for k, v in old.items())
    # shock length and depth alone change nothing: there is no shock to shape
    assert levers.changed({**d, "shock_months": 20}) == {}


def test_a_bad_lever_is_named_by_its_label_and_the_scenario_runs_without_the_levers():
    model = MarketApp("history", shock_start="2028-01")
    assert model.error.startswith("Foundry shock start: 2028-01 is outside history's run, "
                                  "2022-01 to 2026-06")
    assert model.changed_levers == {} and len(model.scenario.events) == len(
        load_scenario("history").scenario.events)
    assert MarketApp("baseline", seed="x1").error.startswith(
        "Seed: expected a whole number >= 0, got 'x1'")
    assert "Leakage enforcement: 1.5 is outside 0-1" in MarketApp(
        "baseline", enforcement=1.5).error
    # a schema message about a field a lever wrote names the lever instead of the path
    assert levers.name_fields("baseline: field events[9].months: must be >= 1",
                              {"events[9]": "Foundry shock start"}) == \
        "baseline: Foundry shock start: must be >= 1"
    # the page offers only shock starts inside the scenario's run
    assert levers.shock_starts("history")[-1] == "2026-01"
    assert "closed to China's labs from 2026-01" in levers.remote_choices("history")


def test_the_reference_run_is_the_scenario_without_the_levers(shocked):
    ref = reference_for(shocked)
    assert ref.step_index == shocked.run_months == 108
    assert len(ref.scenario.events) == len(shocked.scenario.events) - 1
    figures = frames.key_figures(shocked, ref).set_index("figure")
    spot = figures.loc["price US neocloud spot [USD/H100e-h]"]
    assert spot["this_run"] > 1.1 * spot["reference"]           # the shock binds
    assert spot["difference"] == pytest.approx(spot["this_run"] - spot["reference"])
    assert spot["difference_pct"] == pytest.approx(
        100 * spot["difference"] / spot["reference"])
    alone = MarketApp("baseline")
    alone.run_to(12)
    same = frames.key_figures(alone, reference_for(alone)).fillna(0.0)
    assert (same["difference"].abs() < 1e-9).all()              # same scenario, same seed


def test_time_charts_draw_the_reference_as_a_ghost_and_the_events_as_markers(shocked):
    ref = reference_for(shocked)
    events = frames.events(shocked, shocked.run_months)
    shock = events[events["event"].str.contains("tsmc-cowos x0.3, 12 mo")]
    assert list(shock["date"].dt.strftime("%Y-%m")) == ["2024-01"]
    assert "tsmc-cowos ends" in " ".join(events["event"])
    assert events["date"].is_unique                             # one marker per month
    chart = charts.time_chart(frames.prices(shocked), "price_usd_per_h100e_hour", "series",
                              span=frames.span(shocked, 108), events=events, title="t",
                              unit="USD per H100e-hour", filename="f",
                              reference=frames.prices(ref)).to_dict()
    marks = [layer["mark"] for layer in chart["layer"]]
    assert {"type": "line", "strokeWidth": 1.6, "opacity": charts.GHOST_OPACITY} in marks
    assert any(m["type"] == "rule" for m in marks) and any(m["type"] == "text" for m in marks)
    assert chart["width"] == "container"
    assert chart["usermeta"]["embedOptions"]["actions"]["export"] is True
    legend = chart["layer"][-4]["encoding"]["color"]["legend"]     # line, rules, 2 labels
    assert legend["orient"] == "bottom"


def test_the_network_places_nodes_by_role_and_sizes_flows_in_h100e(shocked):
    nodes, edges = frames.network(shocked)
    xs = nodes.groupby("role")["x"].agg(["min", "max"])
    assert xs.loc["vendor", "max"] < xs.loc["nation", "min"]
    assert xs.loc["nation", "max"] < xs.loc["cloud", "min"]
    shipped = sum(h for s, _, _, _, h in shocked.records["vendor_flows"]
                  if s > shocked.step_index - 12)
    chips = edges[edges["flow"].isin(["chips", "chips diverted"])]["h100e"].sum()
    same_nation = sum(h for s, _, v, n, h in shocked.records["vendor_flows"]
                      if s > shocked.step_index - 12 and v == n)
    assert chips == pytest.approx(shipped - same_nation)
    assert set(edges[edges["leakage"]]["flow"]) <= {"chips diverted", "rented abroad"}
    assert edges["h100e"].is_monotonic_decreasing


def test_run_to_end_and_back_in_time():
    model = MarketApp("baseline", months=30)
    model.run_to(10_000)
    assert model.finished and model.status() == "finished: 2024-06, 30 of 30 months"
    assert not model.running
    model.step()
    assert model.steps == model.step_index == 30                # no month past the end
    assert (model.month_index("2024-06"), model.month_index("2022-01")) == (30, 1)
    assert model.month_index("2024-07") is None and model.month_index("June") is None
    stop = threading.Event()
    again = MarketApp("baseline", months=30)
    stop.set()
    again.run_to(20, stop=stop)
    assert again.step_index == 0


def test_a_closed_session_stops_its_run(capsys):
    gone = threading.Event()
    model = MarketApp("baseline", session=gone)
    model.step()
    gone.set()                                          # the page's cleanup does this
    model.step()
    assert (model.steps, model.step_index, model.running) == (1, 1, False)
    assert capsys.readouterr().err == (
        "gpumarket viz: a browser session closed; its run stopped at 1 of 108 months\n")


def test_key_figures_mark_a_price_on_an_input_and_nothing_else():
    """Prices set by trade carry no marker; a price that sits on an input of the scenario
    (here the US spot moved onto the reference price of potential demand this month and
    last) is marked `*`; one that is there this month only is passing through."""
    model = MarketApp("baseline")
    model.run_to(24)
    assert frames.price_marks(model) == {}
    reference = model.scenario.market.reference_price_usd_per_h100e_hour
    step = model.step_index

    def move_us_spot(steps):
        model.records["price_index"] = [
            (s, r, t, i, reference if s in steps and (r, i) == ("US", "spot") else p)
            for s, r, t, i, p in model.records["price_index"]]

    move_us_spot({step})
    assert frames.price_marks(model) == {}
    move_us_spot({step - 1, step})
    assert frames.price_marks(model) == {"price US neocloud spot [USD/H100e-h]": "*"}


def test_the_csv_of_a_chart_holds_both_runs():
    live = pd.DataFrame({"date": [1], "x": [1.0]})
    both = frames.with_reference(live, live.assign(x=2.0))
    assert list(both["run"]) == [frames.THIS_RUN, frames.REFERENCE]


def test_review_findings_stay_fixed():
    """A seed of non-ASCII digits, the diffusion lever on a scenario that keeps the rule, the
    Huawei ramp's first month, one chart kept per layer set and file name."""
    assert MarketApp("baseline", seed="²").error.startswith("Seed: expected a whole number")
    kept = MarketApp("diffusion-rule-kept", export_regime="diffusion rule kept (May 2025)")
    assert kept.error is None
    points = {"2022-01": 100.0, "2023-06": 200.0, "2024-12": 400.0}
    ramp = levers.ramped(points, 0.0, 2.0)
    assert ramp["2023-06"] == 200.0 and ramp["2024-12"] == 800.0
    assert ramp["2024-01"] == pytest.approx(2 * ramp["2023-12"] * (400 / 200) ** (1 / 18))
    base = levers.scenario_data("baseline")
    _, written = levers.apply(base, {**levers.defaults("baseline"),
                                     "export_regime": "Oct 2022 rule only"})
    # the 2022 rules, as in oct2022-only: the Aug letter and the Oct rule, both the lever's
    assert list(written.values()) == ["Export-control regime"] * 2
    # two charts alike but for their layers (a ghost vs events) or file name are two charts
    model = MarketApp("baseline", months=12)
    model.run_to(3)
    live, span = frames.prices(model), frames.span(model, 12)
    kw = dict(title="t", unit="u", span=span)
    with_ghost = charts.time_chart(live, "price_usd_per_h100e_hour", "series", filename="a",
                                   reference=live, **kw).to_dict()
    with_events = charts.time_chart(live, "price_usd_per_h100e_hour", "series", filename="a",
                                    events=frames.events(model, 12), **kw).to_dict()
    assert [layer["mark"]["type"] for layer in with_events["layer"]] == [
        "line", "rule", "text", "text"]
    assert with_events["layer"][0]["mark"].get("point") is False      # 3 months: a line
    model.run_to(3)
    one = MarketApp("baseline", months=12)
    one.step()
    first = charts.time_chart(frames.prices(one), "price_usd_per_h100e_hour", "series",
                              filename="a", **kw).to_dict()
    assert first["layer"][0]["mark"]["point"] is True                 # 1 month: points
    assert len(with_ghost["layer"]) == 2
    other = charts.time_chart(live, "price_usd_per_h100e_hour", "series", filename="b",
                              events=frames.events(model, 12), **kw).to_dict()
    assert other["usermeta"]["embedOptions"]["downloadFileName"] == "b"
    nodes, edges = frames.network(model)
    assert set(edges["measure"]) <= set(frames.MEASURES.values())


def test_readme_trial_findings_stay_fixed(shocked):
    """A nation with nothing installed has no point on the log chart (vega drew nothing at
    all); close event markers write their labels on either side; the CSV of a chart with
    bands carries them; the reference note names levers by their labels."""
    comp = frames.compute(shocked)
    comp.loc[comp.index[:3], "installed_h100e"] = 0.0
    spec = charts.time_chart(comp, "installed_h100e", "nation", title="t", unit="u",
                             span=frames.span(shocked, 108), filename="f", log=True).to_dict()
    values = [row["value"] for rows in spec["datasets"].values() for row in rows
              if "value" in row]
    assert values.count(None) == 3 and all(v is None or v > 0 for v in values)
    events = frames.events(shocked, 108)
    close = events["date"].diff().dt.days < frames.LABEL_GAP_DAYS
    assert (events["lane"][close] != events["lane"].shift()[close]).all()
    bands = pd.DataFrame({"date": events["date"][:2], "p5": 1.0, "p25": 2.0, "p50": 3.0,
                          "p75": 4.0, "p95": 5.0})
    shown = frames.with_bands(frames.prices(shocked), bands)
    assert {"ensemble_p5", "ensemble_p95"} <= set(shown.columns)
    assert views._note_levers(shocked) == (
        "dashed: the same scenario and seed without Foundry shock start, Shock: CoWoS output "
        "multiplier, Shock length")
