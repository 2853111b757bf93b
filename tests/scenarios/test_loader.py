"""Scenario loading: built-ins, inheritance, overrides, and one clear line per problem."""

from pathlib import Path

import pytest

from market.errors import ScenarioError, UnknownNameError
from scenarios.loader import builtin_names, describe_builtins, load_scenario, validate_data

FIXTURES = Path(__file__).parent.parent / "fixtures" / "scenarios"


def test_baseline_loads_with_the_required_world():
    s = load_scenario("baseline").scenario
    assert (s.start, s.end, s.months) == ("2022-01", "2030-12", 108)
    assert {"nvidia", "amd", "huawei", "google", "others"} <= set(s.vendors)
    assert {"tsmc-cowos", "smic"} <= set(s.foundries)
    assert {"aws", "azure", "gcp", "oracle", "coreweave", "alibaba-cloud", "tencent-cloud",
            "huawei-cloud", "g42", "eu-sovereign"} <= set(s.clouds)
    assert {"openai", "google-deepmind", "meta", "anthropic", "xai", "mistral", "deepseek",
            "alibaba-qwen", "bytedance"} <= set(s.labs)
    assert set(s.nations) == {"US", "China", "EU", "UK", "Gulf", "JKT", "India", "RoW"}
    assert s.long_tail.count == 100
    assert {c.tier for c in s.clouds.values()} == {"hyperscaler", "neocloud"}


def test_every_builtin_loads_and_has_a_description():
    assert "baseline" in builtin_names()
    for name, description in describe_builtins():
        assert description, name
        load_scenario(name)


def test_extends_merges_tables_and_appends_events():
    base = load_scenario("baseline").scenario
    child = load_scenario(str(FIXTURES / "valid_child.toml")).scenario
    assert child.name == "valid-child" and child.end == "2024-12"
    assert child.long_tail.count == 20
    assert child.long_tail.demand_h100e_by_nation == base.long_tail.demand_h100e_by_nation
    # inherited events dated after the child's end (2024-12) do not apply to it
    inherited = [e for e in base.events if e.date <= "2024-12"]
    assert 0 < len(inherited) < len(base.events)
    assert child.events[:-1] == inherited
    assert child.events[-1].kind == "foundry_shock"


def test_set_overrides_any_field_with_toml_values():
    s = load_scenario("baseline", ["market.mfu=0.4", "long_tail.count=7",
                                   "clouds.aws.fleet.h100-sxm=1000",
                                   'market.rationing="first_come"']).scenario
    assert s.market.mfu == 0.4 and s.long_tail.count == 7
    assert s.clouds["aws"].fleet["h100-sxm"] == 1000
    assert s.market.rationing == "first_come"


def test_resolved_hash_changes_with_an_override():
    assert load_scenario("baseline").sha256 != load_scenario("baseline", ["market.mfu=0.4"]).sha256
    assert load_scenario("baseline").sha256 == load_scenario("baseline").sha256


@pytest.mark.parametrize("fixture, expected", [
    ("syntax_error.toml", "TOML syntax error"),
    ("unknown_field.toml", "field market.mfu2: unknown field (found 0.3)"),
    ("wrong_type.toml", "field market.mfu: Input should be a valid number"),
    ("out_of_range.toml", "field market.mfu: Input should be less than or equal to 1 (found 1.5)"),
    # an event the file declares is named by its place in the file, then the merged index
    ("unknown_foundry_event.toml", "field events[0].foundry of this file (events[8] of the "
                                   "merged scenario): unknown foundry 'intel-fab-52'; "
                                   "known: smic, tsmc-cowos"),
    ("unknown_nation.toml", "field clouds.atlantis-cloud.nation: unknown nation 'Atlantis'; known:"),
    ("date_outside_run.toml", "date 2035-01 is outside the run (2022-01 to 2030-12)"),
    ("bad_distribution.toml", "low (0.5) must not exceed high (0.3)"),
    ("unknown_uncertain_path.toml", "field uncertain.market.demand_growth: path does not name "
                                    "a settable input"),
    ("calibrate_data_path.toml", "field calibrate.market.mfu: Market.mfu is data or an input"),
    ("calibrate_chip_spec.toml", "field calibrate.vendors.nvidia.products.0.unit_cost_usd: "
                                 "Product.unit_cost_usd is data or an input"),
    ("calibrate_event.toml", "field calibrate.events.3.date: a dated event"),
    ("uncertain_inherited_event.toml", "field uncertain.events.7.date: events[7] is declared "
                                       "in the scenarios it extends; a path may name only an "
                                       "event of its own file"),
    ("calibrate_choice.toml", "field calibrate.market.serving_elasticity: a calibrated "
                              "parameter needs a continuous prior"),
    ("calibrate_out_of_bounds.toml", "field calibrate.market.serving_elasticity: value 9.0 is "
                                     "not a valid setting"),
    ("circular_a.toml", "circular inheritance"),
    ("unknown_rule_event.toml", "field events[0].rule of this file (events[8] of the merged "
                                "scenario): unknown export-control rule 'oct2027'"),
    ("lift_not_in_force.toml", "cannot lift 'diffusion2025' on 2027-01: it is not in force"),
    ("rule_unknown_group.toml", "field rules.tier4.actions[0].destinations: unknown destination "
                                "group 'Tier4'; expected one of US, allied, D4, other, D5"),
    ("rule_wrong_unit.toml", "memory_bandwidth_gbps_min = 3.5: expected memory bandwidth in "
                             "GB/s, between 10 and 1e+06 (is it in another unit?)"),
    ("rule_dates_out_of_order.toml", "field rules.late: announced 2027-06 is after effective "
                                     "2027-01"),
    ("adaptive_unknown_rule.toml", "field nations.US.adaptive[0].impose: unknown export-control "
                                   "rule 'total-ban'"),
    ("not_a_scenario.toml", "not_a_scenario.toml: not a scenario file: it has none of a "
                            "scenario's fields"),
    ("extends_not_a_scenario.toml", "not a scenario file: it has none of a scenario's fields "
                                    "(name, extends, nations, market, ...) (reached by extends "
                                    "from extends_not_a_scenario.toml)"),
    ("extends_escape.toml", "field extends: '../../scenarios_outside.toml' leaves the directory "
                            "of extends_escape.toml, refused"),
    ("extends_absolute.toml", "field extends: '/etc/gpumarket/secret.toml' is an absolute path, "
                              "refused"),
    ("bool_as_number.toml", "field market.mfu: Input should be a valid number (found True)"),
    ("drop_events_not_a_list.toml", "field drop_events: expected a list of event kinds (found "
                                    "'export_control')"),
])
def test_bad_scenarios_name_file_field_and_expectation(fixture, expected):
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(FIXTURES / fixture))
    message = str(info.value)
    assert expected in message
    assert fixture in message or "circular" in message
    assert "hunter2" not in message


@pytest.mark.parametrize("override, expected", [
    ("clouds.nowhere.power_mw=5", "--set clouds.nowhere.power_mw: no table 'nowhere' in clouds; known: "),
    ("market.mfu", "expected path=value"),
    ("market.typo=3", "--set market.typo: field market.typo: unknown field"),
    ("market.mfu=-1", "--set market.mfu: field market.mfu: Input should be greater than or equal to 0"),
    ('events.0.date="2022-13"', "--set events.0.date: field events[0].date: expected a month "
                                "YYYY-MM (found '2022-13')"),
    ("clouds.aws.power_growth_per_year=0.5", "field clouds.aws.power_growth_per_year: unknown "
                                             "field: removed in 0.10.0"),
    ('clouds.aws.power_projects_mw={"2035-01"=500}', "power_projects_mw.2035-01: a project "
                                                     "online in 2035-01 is outside the run"),
    ("market.mfu=true", "--set market.mfu: field market.mfu: Input should be a valid number "
                        "(found True)"),
    ("long_tail.count=1.5e3", "--set long_tail.count: field long_tail.count: Input should be a "
                              "valid integer (found 1500.0)"),
    ("vendors.nvidia.opening_orders_units={h100-sxm=1000}",
     "field vendors.nvidia.opening_orders_units.h100-sxm: not one of its products on sale at "
     "the start (2022-01); expected one of ['a100']"),
    ("vendors.kunlun.opening_orders_units={kunlun-r200=10}",
     "field vendors.kunlun.opening_orders_units.kunlun-r200: no cloud or lab has a starting "
     "fleet of it to share the orders by"),
    ("events.6.banned_buyers=[\"openai\"]", "field events[6].banned_buyers: 'openai' is "
                                              "not a cloud or lab of China; expected one of "),
    ("events.6.banned_chips=[\"h21\"]", "field events[6].banned_chips: unknown chip 'h21'"),
    ("events.6.banned_buyers=[\"alibaba-qwen\"]", "field events[6].banned_buyers: lab "
                                                  "'alibaba-qwen' buys no chips"),
])
def test_bad_overrides(override, expected):
    with pytest.raises(ScenarioError) as info:
        load_scenario("baseline", [override])
    assert expected in str(info.value)


def test_unknown_scenario_lists_builtins():
    with pytest.raises(UnknownNameError, match="known: .*baseline"):
        load_scenario("baselin")
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario("does/not/exist.toml")


def test_a_scenario_may_define_its_own_rule():
    from market.catalog import load_catalog
    from market.controls import classify, load_rules
    from market.model import ComputeMarket
    from market.outputs import release

    s = load_scenario(str(FIXTURES / "own_rule.toml")).scenario
    book = load_rules().with_rules(dict(s.rules))
    chips = load_catalog()
    assert classify(chips["b200"], "D4", ("hbm-rich-2027",), book).treatment == "licence"
    assert not classify(chips["h100-sxm"], "D4", ("hbm-rich-2027",), book).controlled
    model = ComputeMarket(s, 0)
    try:
        model.run(61)
        assert "hbm-rich-2027" in model.nations["US"].regime
    finally:
        release(model)


def test_error_lines_quote_long_values_cut_and_on_one_line():
    with pytest.raises(ScenarioError) as info:
        load_scenario("baseline", ["market.mfu=" + '"' + "x" * 5000 + '"'])
    (line,) = str(info.value).splitlines()
    assert "(found 'xxxxxxxx" in line and "...)" in line and len(line) < 400
    with pytest.raises(ScenarioError) as info:
        load_scenario("baseline", ['name="two\nlines"'])
    (line,) = str(info.value).splitlines()
    assert "field name: a name is one line of printable characters" in line


def test_a_set_value_is_one_toml_value():
    with pytest.raises(ScenarioError, match="expected one TOML value"):
        load_scenario("baseline", ["market.mfu=0.4\nmarket.typo = 1"])
    with pytest.raises(ScenarioError, match="more digits than 4,300"):
        load_scenario("baseline", ["market.mfu=" + "9" * 5000])


def test_unknown_clearing_rules_are_refused_on_load():
    with pytest.raises(ScenarioError, match="unknown rationing rule 'lottery'; known: "
                                            "first_come, pro_rata"):
        load_scenario("baseline", ['market.rationing="lottery"'])


def test_unknown_hyperscaler_pricing_is_refused_on_load_with_the_known_rules():
    with pytest.raises(ScenarioError, match="market.hyperscaler_pricing.*'gouging'.*known: "
                                            "market_share_margin, posted_price, "
                                            "utilization_margin"):
        load_scenario("baseline", ['market.hyperscaler_pricing="gouging"'])


def test_a_world_without_any_cloud_fleet_is_refused():
    data = load_scenario("baseline").scenario.model_dump(mode="json", exclude_none=True)
    for cloud in data["clouds"].values():
        cloud["fleet"] = {}
    with pytest.raises(ScenarioError, match="field clouds: no cloud has a starting fleet"):
        validate_data(data, "no-fleets")


def test_the_serving_workload_is_settable_and_an_unservable_one_is_refused():
    """`[market.serving]` is a table of the baseline, so `--set` reaches its fields; a workload
    no H100 server can hold is refused with the field and the reason."""
    s = load_scenario("baseline", ["market.serving.context_tokens=8192"]).scenario
    assert s.market.serving.context_tokens == 8192
    with pytest.raises(ScenarioError, match="market.serving: an H100 SXM server cannot serve"):
        load_scenario("baseline", ["market.serving.context_tokens=32768",
                                   "market.serving.kv_bytes_per_token=1e8"])


def test_a_calibrate_block_names_behavioural_parameters_with_priors(tmp_path):
    from scenarios.behavioural import behavioural_paths, classify_path

    path = tmp_path / "cal.toml"
    path.write_text('name = "cal"\ndescription = "x"\nextends = "baseline"\n'
                    '[calibrate."market.serving_elasticity"]\ndist = "uniform"\nlow = 0.5\n'
                    'high = 2.0\nrationale = "test"\n'
                    '[calibrate."vendors.nvidia.floor_margin"]\ndist = "lognormal"\n'
                    'mean = 0.5\nsigma = 0.5\nlow = 0.2\nhigh = 2.0\nrationale = "test"\n',
                    encoding="utf-8")
    loaded = load_scenario(str(path)).scenario
    assert set(loaded.calibrate) == {"market.serving_elasticity", "vendors.nvidia.floor_margin"}
    paths = behavioural_paths(loaded)
    assert "foundries.tsmc-cowos.expansion_response" in paths
    assert all(classify_path(p) is None for p in paths)
    # what the world hands the agents is never behavioural
    for data in ("market.demand_index.growth_after_per_year", "labs.openai.financing_usd_per_year",
                 "foundries.tsmc-cowos.capacity_wafers_per_month.points.2024-12",
                 "foundries.tsmc-cowos.expansion_lag_months", "market.chip_lead_time_months",
                 "start", "rules.x.threshold", "leakage.enforcement"):
        assert classify_path(data) is not None, data
